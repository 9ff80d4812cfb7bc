"""`failover-sim` (and `python -m sim`): the command line.

This module only lists the commands and dispatches to them; each lives in
its own module of sim/commands/, in the form described there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sim._version import __version__
from sim.commands import (
    advise,
    audit,
    baseline,
    bench,
    check,
    compare,
    fit,
    report,
    run,
    serve,
    strategies,
    sweep,
    validate,
)
from sim.commands._common import EXIT_OK, EXIT_USAGE

# In the order `failover-sim --help` lists them.
COMMANDS = (validate, run, check, baseline, report, compare, sweep, advise, fit, strategies, audit, serve, bench)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="failover-sim",
        description="How long are users down when a load balancer fails? "
        "Simulate CNAME repointing against static-address remapping.",
        epilog="example:\n  failover-sim run scenarios/elb-blowup.yaml\n  failover-sim validate --show scenarios/*.yaml",
    )
    parser.add_argument("--version", action="version", version=f"failover-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="`failover-sim COMMAND --help` for its options")
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION, epilog=command.EPILOG)
        command.add_arguments(p)
        p.set_defaults(main=command.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # serve and bench hand everything after their name to their own parsers,
    # their --help included.
    for command in COMMANDS:
        forwarded = getattr(command, "forwarded", None)
        if argv[:1] == [command.NAME] and forwarded is not None:
            args = forwarded(argv[1:])
            if args is not None:
                return _guarded(command.main, args)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "main", None):
        parser.print_help()
        return EXIT_USAGE
    return _guarded(args.main, args)


def _guarded(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return int(command(args))
    except KeyboardInterrupt:
        print("interrupted; no results were written under the final name", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
