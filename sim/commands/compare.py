"""`failover-sim compare DIR_A DIR_B`: two results folders side by side (a lab run and the model, say).

The computing is `sim.analysis.compare`: per strategy and metric, both values
with their intervals, the difference and its resolution, paired differences
when both runs drew the same inputs, and the `--max-diff` bounds broken.
Exit 0 unless `--max-diff` bounds are given and broken (1), or a folder
cannot be read or a bound is malformed (2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim
from sim.analysis.compare import (
    COMPARED,
    broken_bounds,
    comparison,
    is_paired,
    overlay_figures,
    pairable,
    scenario_differences,
    shown_table,
)
from sim.commands._common import EXIT_INVALID, EXIT_OK, EXIT_USAGE

NAME = "compare"
HELP = "two results folders side by side (lab against model, engine against engine)"
DESCRIPTION = (
    "Metric by metric, per strategy: both values with 95% intervals, the difference, its "
    "resolution (the 95% half-width of B - A) and whether they agree; overlay figures. Exit 0 unless "
    "a --max-diff bound is broken (1); a bound finer than the resolution is said to be so. Two runs of "
    "different scenarios are refused (2) unless --different-scenarios says that is the point."
)
EPILOG = (
    "examples:\n  failover-sim compare results/lab-run results/model-run\n"
    "  failover-sim compare A B --max-diff recovery_s.mean=0.15 --max-diff availability=0.005"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="results folder A")
    parser.add_argument("b", help="results folder B")
    parser.add_argument("--labels", default=None, help="names of A and B in the table and figures, e.g. lab,model")
    parser.add_argument("--max-diff", action="append", default=[], metavar="METRIC=BOUND",
                        help="fail (exit 1) when |B - A| exceeds BOUND; relative for recovery and counts "
                        "(0.15 = 15%%), absolute for availability (0.005 = 0.5 points)")
    parser.add_argument("--different-scenarios", action="store_true",
                        help="compare runs of different scenarios (a what-if: TTL 30 s against 300 s); "
                        "nothing is paired and every difference is the scenarios' as much as the engines'")
    parser.add_argument("--out", help="folder for the table (CSV) and overlay figures (default: beside nothing)")


def main(args: argparse.Namespace) -> int:
    runs = []
    for folder in (args.a, args.b):
        try:
            runs.append(sim.open_results(folder))
        except (FileNotFoundError, ValueError) as exc:
            print(f"{folder}: cannot read: {exc}", file=sys.stderr)
            return EXIT_USAGE
    bounds = _bounds(args.max_diff)
    if bounds is None:
        return EXIT_USAGE
    a, b = runs
    if not _same_scenario(args, a, b):
        return EXIT_USAGE
    label_a, label_b = (args.labels.split(",", 1) if args.labels else (f"A ({a.engine})", f"B ({b.engine})"))
    table = comparison(a, b)
    print(f"A: {args.a} ({a.engine})\nB: {args.b} ({b.engine})\n")
    paired = is_paired(a, b, table)
    print(shown_table(table, paired, label_a, label_b))
    print("\nresolution: the 95% half-width of the difference; a smaller difference is within noise.")
    if paired:
        print("paired: the mean of B - A replication by replication over the replications both runs have "
              "(same seed, same scenario: the same random inputs), with its 95% half-width; --max-diff judges it.")
    else:
        print(f"not paired: {pairable(a, b) or 'no replication in common'}.")
    broken = broken_bounds(table, bounds, paired)
    if args.out:
        from sim.results.writer import write_bytes_atomic

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out / "compare.csv", table.to_csv(index=False).encode())
        for name, png in overlay_figures(a, b, label_a, label_b).items():
            write_bytes_atomic(out / f"{name}.png", png)
        print(f"\ntable and figures: {out}")
    if broken:
        print("\nbeyond --max-diff: " + "; ".join(broken))
        return EXIT_INVALID
    return EXIT_OK


def _same_scenario(args: argparse.Namespace, a: object, b: object) -> bool:
    """Say up front when A and B ran different scenarios; False (refused) unless --different-scenarios."""
    differences = scenario_differences(a, b)  # type: ignore[arg-type]
    if not differences:
        return True
    shown = "; ".join(differences[:6]) + (f"; and {len(differences) - 6} more" if len(differences) > 6 else "")
    if args.different_scenarios:
        print(f"A and B are different scenarios, compared as asked (nothing is paired): they differ in {shown}\n")
        return True
    print(f"compare: {args.a} and {args.b} are runs of different scenarios: they differ in {shown}.\n"
          "Their differences would be the scenarios' as much as the engines'. To hold a lab run against the "
          f"model, run the model on the lab's folder (failover-sim run {args.a}); to compare two scenarios "
          "on purpose, add --different-scenarios.", file=sys.stderr)
    return False


def _bounds(items: list[str]) -> dict[str, float] | None:
    """The --max-diff bounds by metric; None, having said why, when one is malformed."""
    bounds = {}
    for item in items:
        metric, _, value = item.partition("=")
        try:
            bounds[metric] = float(value)
        except ValueError:
            print(f"--max-diff {item}: expected METRIC=NUMBER, e.g. recovery_s.mean=0.15", file=sys.stderr)
            return None
        if metric not in COMPARED:
            print(f"--max-diff {item}: unknown metric {metric!r}; expected one of {', '.join(COMPARED)}", file=sys.stderr)
            return None
    return bounds
