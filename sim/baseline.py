"""`failover-sim baseline`: store a run's metrics with their intervals, and flag regressions.

A metric regresses when its new 95% interval lies wholly on the bad side of
the stored one (no overlap): availability lower, or failures, recovery,
latency, stragglers or shedding higher. Request and DNS query counts are
shown but never flagged: more or fewer of them is not worse by itself.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from sim.check import HIGHER_IS_BETTER, METRICS, NEUTRAL, interval_frame
from sim.runner import Results, RunError, run
from sim.scenario import ScenarioError, load_file


def record(results: Results, into: Path) -> Path:
    from sim.results.writer import write_json_atomic

    frame = interval_frame(results)
    doc = {
        "scenario": results.scenario.name,
        "strategies": {
            s: {r.metric: {"value": r.value, "low": r.low, "high": r.high} for r in g.itertuples()}
            for s, g in frame.groupby("strategy", sort=False)
        },
        "summary": results.summary,
        "manifest": results.manifest,
    }
    return write_json_atomic(into / f"{results.scenario.name}.json", doc)


def load_baseline(folder: Path, name: str) -> dict:
    path = folder / f"{name}.json"
    if not path.is_file():
        raise RunError(f"no baseline for {name} in {folder} (record one: failover-sim baseline record SCENARIO --into {folder})")
    doc = json.loads(path.read_text())
    # JSON has no infinity: the writer stores null; null bounds read back as unbounded
    for metrics in doc["strategies"].values():
        for m in metrics.values():
            for key in ("value", "low", "high"):
                m[key] = math.nan if m[key] is None else float(m[key])
    return doc


def regression(metric: str, old: dict, new: dict) -> bool:
    """True when the new interval lies wholly on the bad side of the old one."""
    if metric in NEUTRAL:
        return False
    old_low, old_high = _bounds(old)
    new_low, new_high = _bounds(new)
    if metric in HIGHER_IS_BETTER:
        return new_high < old_low
    return new_low > old_high


def _bounds(m: dict) -> tuple[float, float]:
    # Without an interval (one replication, or an unrecovered share) the value is both bounds.
    low = m["low"] if not math.isnan(m["low"]) else m["value"]
    high = m["high"] if not math.isnan(m["high"]) else m["value"]
    return low, high


def compare(results: Results, stored: dict) -> list[dict]:
    rows = []
    for r in interval_frame(results).itertuples():
        old = stored["strategies"].get(r.strategy, {}).get(r.metric)
        if old is None:
            continue
        new = {"value": r.value, "low": r.low, "high": r.high}
        rows.append({"strategy": r.strategy, "metric": r.metric, "old": old, "new": new, "regression": regression(r.metric, old, new)})
    return rows


def _fmt(m: dict) -> str:
    if math.isnan(m["low"]):
        return f"{m['value']:.6g}"
    return f"{m['value']:.6g} [{m['low']:.6g}, {m['high']:.6g}]"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline",
        help="record a scenario's metrics as a baseline, or compare a new run with it",
        description="record: run each scenario and store every metric with its 95%% CI and the manifest. "
        "compare: run again and flag each metric whose new interval lies wholly on the bad side of the "
        "stored one; exit 1 on a regression, 2 on input that cannot run.",
        epilog="examples:\n  failover-sim baseline record scenarios/elb-blowup.yaml --into results/baselines\n"
        "  failover-sim baseline compare scenarios/elb-blowup.yaml --from results/baselines",
    )
    p.add_argument("action", choices=["record", "compare"])
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    p.add_argument("--into", default="results/baselines", help="record: folder for the baselines")
    p.add_argument("--from", dest="source", default="results/baselines", help="compare: folder of the baselines")
    p.add_argument("--replications", type=int, help="override each scenario's replications")
    p.set_defaults(func=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> int:
    status = 0
    for path in args.scenarios:
        try:
            scenario = load_file(path)
            if args.action == "compare":
                stored = load_baseline(Path(args.source), scenario.name)
            results = run(scenario, replications=args.replications)
        except ScenarioError as exc:
            print(f"{path}: cannot run: the scenario is invalid", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
        except RunError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if args.action == "record":
            print(f"recorded {record(results, Path(args.into))}")
            continue
        rows = compare(results, stored)
        width = max(len(m) for m in METRICS)
        print(f"{scenario.name}: baseline against this run (value [95% CI])")
        for row in rows:
            flag = "REGRESSION" if row["regression"] else ""
            print(f"  {row['strategy']:<14} {row['metric']:<{width}}  {_fmt(row['old']):>36}  {_fmt(row['new']):>36}  {flag}")
        if any(r["regression"] for r in rows):
            status = 1
    return status
