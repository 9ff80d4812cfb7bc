"""`failover-sim serve CONFIG.yaml`: the real asyncio load balancer (sim.core, docs/core.md).

Everything after `serve` goes to the balancer's own parser (sim.core.cli),
its --help included.
"""

from __future__ import annotations

import argparse

NAME = "serve"
HELP = "run the sim.core load balancer from a config file"
DESCRIPTION = "Run the real asyncio load balancer (see docs/core.md)."
EPILOG = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs=argparse.REMAINDER)


def forwarded(rest: list[str]) -> argparse.Namespace | None:
    """Always: the balancer parses its own arguments."""
    return argparse.Namespace(args=rest)


def main(args: argparse.Namespace) -> int:
    from sim.core.cli import main as serve_main

    return serve_main(list(args.args))
