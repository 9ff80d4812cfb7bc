"""Baselines: a run's metrics with their intervals, and the regressions of a new run against them.

A metric regresses when its new 95% interval lies wholly on the bad side of
the stored one (no overlap): availability lower, or failures, recovery,
latency, stragglers or shedding higher. Request and DNS query counts are
shown but never flagged: more or fewer of them is not worse by itself.
The stored document is read and written by `sim.results.baselines`.
"""

from __future__ import annotations

import math
from typing import Any

from sim.analysis.intervals import HIGHER_IS_BETTER, NEUTRAL, RunTables, interval_frame, number
from sim.results.schema import UNBOUNDED

__all__ = ["baseline_document", "compare", "format_interval", "regression"]


def baseline_document(tables: RunTables) -> dict[str, Any]:
    """What a baseline stores for a run: every metric of every strategy with its interval,
    the summary and the manifest. Named by the run's scenario (`summary["scenario"]`)."""
    frame = interval_frame(tables)
    return {
        "scenario": tables.summary["scenario"],
        "strategies": {
            s: {r.metric: {k: _stored(v) for k, v in (("value", r.value), ("low", r.low), ("high", r.high))}
                for r in g.itertuples()}
            for s, g in frame.groupby("strategy", sort=False)
        },
        "summary": tables.summary,
        "manifest": tables.manifest,
    }


def _stored(x: float) -> float | str:
    # JSON has no infinity: an unbounded percentile is stored as "> run" (read back by read_baseline)
    return UNBOUNDED if x == math.inf else x


def regression(metric: str, old: dict[str, float], new: dict[str, float]) -> bool:
    """True when the new interval lies wholly on the bad side of the old one."""
    if metric in NEUTRAL:
        return False
    old_low, old_high = _bounds(old)
    new_low, new_high = _bounds(new)
    if metric in HIGHER_IS_BETTER:
        return new_high < old_low
    return new_low > old_high


def _bounds(m: dict[str, float]) -> tuple[float, float]:
    # Without an interval (one replication, or an unrecovered share) the value is both bounds.
    low = m["low"] if not math.isnan(m["low"]) else m["value"]
    high = m["high"] if not math.isnan(m["high"]) else m["value"]
    return low, high


def compare(tables: RunTables, stored: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per metric the baseline has: strategy, metric, old, new, regression."""
    rows = []
    for r in interval_frame(tables).itertuples():
        old = stored["strategies"].get(r.strategy, {}).get(r.metric)
        if old is None:
            continue
        new = {"value": r.value, "low": r.low, "high": r.high}
        rows.append({"strategy": r.strategy, "metric": r.metric, "old": old, "new": new, "regression": regression(r.metric, old, new)})
    return rows


def format_interval(m: dict[str, float]) -> str:
    """`value [low, high]`, or the value alone without an interval; "> run" when beyond the run."""
    if math.isnan(m["low"]):
        return number(m["value"])
    return f"{number(m['value'])} [{number(m['low'])}, {number(m['high'])}]"
