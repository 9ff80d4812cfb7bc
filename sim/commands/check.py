"""`failover-sim check`: run scenarios and decide their `expect:` blocks (a CI gate).

The deciding is `sim.analysis.expect`: on each metric's 95% interval across
replications, PASS, FAIL or UNDECIDED.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim
from sim.analysis.expect import ExpectationError, Verdict, format_verdicts, junit_xml, verdicts
from sim.analysis.intervals import known_metrics
from sim.commands._common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    print_problems,
    run_with_progress,
)

NAME = "check"
HELP = "run scenarios and evaluate their expect: blocks (a CI gate)"
DESCRIPTION = (
    "Run each scenario and decide each expectation of its expect: block on the metric's "
    "95% confidence interval: PASS (the whole interval meets the bound), FAIL (it misses it), "
    "UNDECIDED (it straddles it: raise --replications). Exit 0 when all pass, 1 when any fails or is "
    "undecided, 2 on input that cannot run."
)
EPILOG = (
    "examples:\n  failover-sim check scenarios/elb-blowup.yaml\n"
    "  failover-sim check scenarios/*.yaml --junit results/check.xml --replications 20"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO", help="scenario files (YAML)")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML for the CI system to display")
    parser.add_argument("--engine", default="des", choices=["des", "fast"],
                        help="des: the SimPy model (reference); fast: the numpy engine (default: %(default)s)")
    parser.add_argument("--replications", type=int, help="override each scenario's replications")
    parser.add_argument("--baselines", default="results/baselines", help="folder of stored baselines (for vs_baseline)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    loaded = []
    for path in args.scenarios:
        scenario = _checkable(path)
        if scenario is None:
            return EXIT_USAGE
        loaded.append(scenario)
    found: list[Verdict] = []
    for scenario in loaded:
        try:
            found += _check(scenario, args)
        except (sim.RunError, FileNotFoundError, ExpectationError) as exc:
            print(f"{scenario.name}: cannot check: {exc}", file=sys.stderr)
            return EXIT_USAGE
    print(format_verdicts(found))
    if args.junit:
        from sim.results.writer import write_bytes_atomic

        write_bytes_atomic(args.junit, junit_xml(found))
    failed = [v for v in found if v.status != "pass"]
    if failed:
        undecided = sum(v.status == "undecided" for v in failed)
        print(f"\n{len(failed)} of {len(found)} expectations not met ({undecided} undecided)")
        return EXIT_INVALID
    print(f"\nall {len(found)} expectations met")
    return EXIT_OK


def _checkable(path: str) -> sim.Scenario | None:
    """The scenario at `path` if it can be checked; else None, having said why."""
    try:
        scenario = sim.load(path)
    except sim.ScenarioError as exc:
        print_problems(f"{path}: cannot check: the scenario is invalid", exc.problems)
        return None
    if not scenario.expect:
        print(f"{path}: cannot check: the scenario has no expect: block", file=sys.stderr)
        return None
    known = known_metrics(scenario.report.stale_at)
    for i, e in enumerate(scenario.expect):
        if e.metric not in known:
            print(f"{path}: expect[{i}].metric: unknown metric {e.metric!r}; expected one of {', '.join(known)}", file=sys.stderr)
            return None
    return scenario


def _check(scenario: sim.Scenario, args: argparse.Namespace) -> list[Verdict]:
    """Run the strategies the expectations name, then decide each expectation."""
    from sim.results.baselines import read_baseline

    strategies = sorted({e.strategy for e in scenario.expect}, key=scenario.strategies.index)
    results = run_with_progress(scenario, args.engine, args.replications, strategies, quiet=args.quiet,
                                label=f"check {scenario.name} ({args.engine})")
    stored = None
    if any(e.vs_baseline for e in scenario.expect):
        stored = read_baseline(Path(args.baselines), scenario.name)
    return verdicts(scenario.name, scenario.expect, results, stored)
