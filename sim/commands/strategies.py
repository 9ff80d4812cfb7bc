"""`failover-sim strategies`: the properties of every failover strategy (`sim.analysis.strategies`)."""

from __future__ import annotations

import argparse
import sys

from sim.commands._common import EXIT_OK, EXIT_USAGE

NAME = "strategies"
HELP = "the properties of every failover strategy: apex, MX, cost, failover time, connections"
DESCRIPTION = (
    "Print, per strategy, whether it works at the zone apex and beside MX, what it costs "
    "(documented prices as parameters), what its failover time is made of, whether it depends on "
    "clients honouring TTLs, and what happens to open connections."
)
EPILOG = (
    "examples:\n  failover-sim strategies\n  failover-sim strategies --markdown\n"
    "  failover-sim strategies --price ipv4_hour=0.0036"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="a markdown table with sources (as in docs/strategies.md)")
    parser.add_argument("--price", action="append", default=[], metavar="KEY=USD", help="override a price (repeatable)")


def main(args: argparse.Namespace) -> int:
    from sim.analysis.strategies import markdown, plain, prices_with

    try:
        prices = prices_with(args.price)
    except ValueError as exc:
        print(f"failover-sim strategies: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(markdown(prices) if args.markdown else plain(prices))
    return EXIT_OK
