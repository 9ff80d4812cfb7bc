"""`failover-sim baseline record|compare`: store a run's metrics with their intervals, and flag regressions.

The metrics and the regression rule are `sim.analysis.baseline`; the stored
files `sim.results.baselines`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim
from sim.analysis.baseline import baseline_document, compare, format_interval
from sim.analysis.intervals import METRICS
from sim.commands._common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    print_problems,
    run_with_progress,
)
from sim.results.baselines import read_baseline, write_baseline

NAME = "baseline"
HELP = "record a scenario's metrics as a baseline, or compare a new run with it"
DESCRIPTION = (
    "record: run each scenario and store every metric with its 95% CI and the manifest. "
    "compare: run again and flag each metric whose new interval lies wholly on the bad side of the "
    "stored one; exit 1 on a regression, 2 on input that cannot run."
)
EPILOG = (
    "examples:\n  failover-sim baseline record scenarios/elb-blowup.yaml --into results/baselines\n"
    "  failover-sim baseline compare scenarios/elb-blowup.yaml --from results/baselines"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["record", "compare"], help="record a baseline, or compare a new run with it")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files (YAML)")
    parser.add_argument("--into", default="results/baselines", help="record: folder for the baselines")
    parser.add_argument("--from", dest="source", default="results/baselines", help="compare: folder of the baselines")
    parser.add_argument("--replications", type=int, help="override each scenario's replications")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.scenarios:
        try:
            scenario = sim.load(path)
            stored = read_baseline(Path(args.source), scenario.name) if args.action == "compare" else None
            results = run_with_progress(scenario, replications=args.replications, quiet=args.quiet,
                                        label=f"baseline {args.action} {scenario.name}")
        except sim.ScenarioError as exc:
            print_problems(f"{path}: cannot run: the scenario is invalid", exc.problems)
            return EXIT_USAGE
        except (sim.RunError, FileNotFoundError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if stored is None:
            print(f"recorded {write_baseline(Path(args.into), baseline_document(results))}")
            continue
        if _print_comparison(scenario.name, stored, compare(results, stored)):
            status = EXIT_INVALID
    return status


def _print_comparison(name: str, stored: dict, rows: list[dict]) -> int:
    """The table under a header naming its columns, and a verdict line; the regressions found."""
    width = max(len(m) for m in METRICS)
    made = stored.get("manifest", {}).get("created") or "an unrecorded date"
    print(f"{name}: the baseline recorded {made} against this run; each value with its 95% interval")
    print(f"  {'strategy':<14} {'metric':<{width}}  {'baseline':>36}  {'this run':>36}  verdict")
    for row in rows:
        flag = "REGRESSION" if row["regression"] else ""
        old, new = format_interval(row["old"]), format_interval(row["new"])
        print(f"  {row['strategy']:<14} {row['metric']:<{width}}  {old:>36}  {new:>36}  {flag}")
    found = [f"{r['strategy']} {r['metric']}" for r in rows if r["regression"]]
    if found:
        print(f"verdict: REGRESSION in {len(found)} of {len(rows)} metrics ({', '.join(found)}): "
              "this run's interval lies wholly on the bad side of the baseline's")
    else:
        print(f"verdict: no regression in {len(rows)} metrics (none has this run's interval wholly "
              "on the bad side of the baseline's)")
    return len(found)
