"""`failover-sim check`: a scenario's `expect:` block as a CI gate.

Each expectation is decided on the metric's 95% confidence interval across
replications, not on its mean alone: pass when the whole interval meets the
bound, fail when the whole interval misses it, undecided when the interval
straddles it (noise decides; more replications settle it). An undecided
expectation does not pass: the bound is not shown to hold.
"""

from __future__ import annotations

import argparse
import math
import operator
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.stats import mean_ci95
from sim.runner import Results, RunError, run
from sim.scenario import Scenario, ScenarioError, load_file
from sim.scenario.models import Expectation

# The metric names of scenario-v1's summary, and which way is better.
HIGHER_IS_BETTER = {"availability"}
NEUTRAL = {"requests", "dns_queries"}
METRICS = (
    "requests", "failed", "availability", "clients_affected",
    "recovery_s.mean", "recovery_s.p50", "recovery_s.p90", "recovery_s.p99", "recovery_s.max",
    "recovery_s.unrecovered", "stragglers_5m", "latency_ms.p50", "latency_ms.p99", "dns_queries", "dropped",
)  # fmt: skip
_PERCENTILES = {"recovery_s.p50": 50.0, "recovery_s.p90": 90.0, "recovery_s.p99": 99.0, "recovery_s.max": 100.0}
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}  # fmt: skip


@dataclass(frozen=True)
class Interval:
    """A metric's value and 95% CI across replications (NaN bounds: no interval)."""

    value: float
    low: float
    high: float

    @property
    def known(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))

    def __str__(self) -> str:
        text = _num(self.value)
        return text + (f" [{_num(self.low)}, {_num(self.high)}]" if self.known else " (no CI: one replication)")


def _num(x: float) -> str:
    if math.isinf(x):
        return "never" if x > 0 else "-inf"
    return f"{x:.6g}"


def metric_interval(results: Results, strategy: str, metric: str) -> Interval:
    """The metric for one strategy of a run, with its 95% CI.

    Recovery percentiles are pooled in the summary and have no interval there;
    here each replication's percentile is taken and the interval is across
    replications. Clients that never recovered count as an infinitely long
    recovery: a bound on p99 recovery cannot hold when more than 1% never
    come back.
    """
    if metric not in METRICS:
        raise KeyError(metric)
    if metric in _PERCENTILES:
        clients = results.clients[results.clients["strategy"] == strategy]
        q = _PERCENTILES[metric]
        pooled = _percentile(clients["recovery_s"].to_numpy(dtype=float), q)
        reps = results.replications[results.replications["strategy"] == strategy]["replication"]
        per_rep = [_percentile(clients.loc[clients["replication"] == k, "recovery_s"].to_numpy(dtype=float), q) for k in reps]
        values = [v for v in per_rep if not math.isnan(v)]
        if any(math.isinf(v) for v in values):
            # some replication never reached the percentile: unbounded above
            return Interval(pooled, min(values), math.inf)
        _, low, high = mean_ci95(values) if len(values) > 1 else (pooled, math.nan, math.nan)
        return Interval(pooled, low, high)
    metrics = results.summary["strategies"][strategy]
    node = metrics
    for part in metric.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    value = math.nan if node is None else float(node)
    ci = metrics.get("ci95", {}).get(metric)
    if ci and ci[0] is not None and ci[1] is not None:
        return Interval(value, float(ci[0]), float(ci[1]))
    return Interval(value, math.nan, math.nan)


def _percentile(values: np.ndarray, q: float) -> float:
    if values.size == 0:
        return math.nan
    return float(np.percentile(np.where(np.isnan(values), np.inf, values), q, method="higher"))


@dataclass(frozen=True)
class Verdict:
    scenario: str
    expectation: Expectation
    bound: float
    measured: Interval
    status: str  # pass | fail | undecided

    @property
    def name(self) -> str:
        e = self.expectation
        return f"{e.strategy} {e.metric} {e.op} {_num(self.bound)}"

    @property
    def message(self) -> str:
        e = self.expectation
        text = f"{e.strategy} {e.metric}: expected {e.op} {_num(self.bound)}, measured {self.measured}"
        if self.status == "undecided":
            text += "; the interval straddles the bound: raise --replications to settle it"
        return text


def decide(op: str, bound: float, measured: Interval) -> str:
    test = _OPS[op]
    if not measured.known:
        return "pass" if test(measured.value, bound) else "fail"
    low_ok, high_ok = test(measured.low, bound), test(measured.high, bound)
    if op == "==":
        if measured.low == measured.high == bound:
            return "pass"
        return "undecided" if measured.low <= bound <= measured.high else "fail"
    if low_ok and high_ok:
        return "pass"
    if not low_ok and not high_ok:
        return "fail"
    return "undecided"


def baseline_bound(expectation: Expectation, stored: dict) -> float:
    """The bound an expectation `vs_baseline` compares with: the stored value,
    moved by the tolerance in the direction the operator allows."""
    try:
        base = float(stored["strategies"][expectation.strategy][expectation.metric]["value"])
    except KeyError:
        raise RunError(
            f"the baseline has no {expectation.metric} for {expectation.strategy}; record it again"
        ) from None
    tol = expectation.vs_baseline.tolerance if expectation.vs_baseline else 0.0
    slack = tol * abs(base)
    return base - slack if expectation.op in (">=", ">") else base + slack


def check_scenario(
    scenario: Scenario, results: Results, baselines: Path | None = None
) -> list[Verdict]:
    stored = None
    if any(e.vs_baseline for e in scenario.expect):
        from sim.baseline import load_baseline

        stored = load_baseline(baselines or Path("results/baselines"), scenario.name)
    verdicts = []
    for e in scenario.expect:
        bound = baseline_bound(e, stored) if e.vs_baseline else float(e.value)  # type: ignore[arg-type]
        measured = metric_interval(results, e.strategy, e.metric)
        verdicts.append(Verdict(scenario.name, e, bound, measured, decide(e.op, bound, measured)))
    return verdicts


def junit_xml(verdicts: Sequence[Verdict]) -> bytes:
    """JUnit XML: one testsuite per scenario, one testcase per expectation."""
    root = ET.Element("testsuites", name="failover-sim check")
    for scenario in dict.fromkeys(v.scenario for v in verdicts):
        mine = [v for v in verdicts if v.scenario == scenario]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(len(mine)),
            failures=str(sum(v.status != "pass" for v in mine)),
        )
        for v in mine:
            case = ET.SubElement(suite, "testcase", classname=scenario, name=v.name)
            if v.status != "pass":
                failure = ET.SubElement(case, "failure", type=v.status, message=v.message)
                failure.text = v.message
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    rows = [("scenario", "strategy", "metric", "expected", "measured [95% CI]", "result")]
    for v in verdicts:
        e = v.expectation
        rows.append((v.scenario, e.strategy, e.metric, f"{e.op} {_num(v.bound)}", str(v.measured), v.status.upper()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


# --- the command --------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="run scenarios and evaluate their expect: blocks (a CI gate)",
        description="Run each scenario and decide each expectation of its expect: block on the metric's "
        "95%% confidence interval: PASS (the whole interval meets the bound), FAIL (it misses it), "
        "UNDECIDED (it straddles it: raise --replications). Exit 0 when all pass, 1 when any fails or is "
        "undecided, 2 on input that cannot run.",
        epilog="examples:\n  failover-sim check scenarios/elb-blowup.yaml\n"
        "  failover-sim check scenarios/*.yaml --junit results/check.xml --replications 20",
    )
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML for the CI system to display")
    p.add_argument("--engine", default="des", choices=["des", "fast"])
    p.add_argument("--replications", type=int, help="override each scenario's replications")
    p.add_argument("--baselines", default="results/baselines", help="folder of stored baselines (for vs_baseline)")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    loaded = []
    for path in args.scenarios:
        try:
            scenario = load_file(path)
        except ScenarioError as exc:
            print(f"{path}: cannot check: the scenario is invalid", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
        if not scenario.expect:
            print(f"{path}: cannot check: the scenario has no expect: block", file=sys.stderr)
            return 2
        for i, e in enumerate(scenario.expect):
            if e.metric not in METRICS:
                print(f"{path}: expect[{i}].metric: unknown metric {e.metric!r}; expected one of {', '.join(METRICS)}", file=sys.stderr)
                return 2
        loaded.append(scenario)
    verdicts: list[Verdict] = []
    for scenario in loaded:
        try:
            strategies = sorted({e.strategy for e in scenario.expect}, key=scenario.strategies.index)
            results = run(scenario, args.engine, args.replications, strategies)
            verdicts += check_scenario(scenario, results, Path(args.baselines))
        except RunError as exc:
            print(f"{scenario.name}: cannot check: {exc}", file=sys.stderr)
            return 2
    print(format_verdicts(verdicts))
    if args.junit:
        from sim.results.writer import write_bytes_atomic

        write_bytes_atomic(args.junit, junit_xml(verdicts))
    failed = [v for v in verdicts if v.status != "pass"]
    if failed:
        undecided = sum(v.status == "undecided" for v in failed)
        print(f"\n{len(failed)} of {len(verdicts)} expectations not met ({undecided} undecided)")
        return 1
    print(f"\nall {len(verdicts)} expectations met")
    return 0


def interval_frame(results: Results) -> pd.DataFrame:
    """Every metric of every strategy with its interval (for baselines)."""
    rows = []
    for strategy in results.summary["strategies"]:
        for metric in METRICS:
            iv = metric_interval(results, strategy, metric)
            rows.append({"strategy": strategy, "metric": metric, "value": iv.value, "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows)
