"""`failover-sim report DIR`: report.html and report.md for a results folder or a sweep (`sim.write_report`)."""

from __future__ import annotations

import argparse
import sys

import sim
from sim.commands._common import EXIT_OK, EXIT_USAGE

NAME = "report"
HELP = "an HTML page and a Markdown summary of a results or sweep folder"
DESCRIPTION = (
    "Write report.html (self-contained: figures embedded) and report.md (figures beside it, "
    "under report-figures/) for a results folder written by `failover-sim run`, or a sweep folder "
    "(sweep.parquet, summary.parquet). Exit 2 when the folder is not one of those."
)
EPILOG = (
    "examples:\n  failover-sim report results/elb-blowup/latest\n"
    "  failover-sim report /tmp/r --out /tmp/r-report"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="a results folder or a sweep folder")
    parser.add_argument("--out", help="where to write report.html and report.md (default: DIR)")


def main(args: argparse.Namespace) -> int:
    try:
        html_path, md_path = sim.write_report(args.folder, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"failover-sim report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"html:     {html_path}")
    print(f"markdown: {md_path}")
    return EXIT_OK
