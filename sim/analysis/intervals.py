"""A metric of one strategy of a run, with its 95% interval across replications.

Shared by the expectations (`failover-sim check`), the baselines and the
comparison of two runs. Everything here reads a run's tables only: anything
with `.summary` (the summary.json dict), `.clients` and `.replications`
(DataFrames), such as `sim.run`'s results or a folder read with
`sim.open_results`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim.analysis.drain import DRAIN_PERCENTILES, drain_times, pooled_percentile, stale_names
from sim.analysis.stats import UNBOUNDED, positive_ci95, recovery_percentile
from sim.results.schema import affected_clients

__all__ = [
    "DRAIN_METRICS", "HIGHER_IS_BETTER", "METRICS", "NEUTRAL", "Interval", "RunTables", "interval_frame", "known_metrics",
    "metric_interval", "number", "stored_number",
]

# The metric names of docs/scenario.md's summary, and which way is better.
HIGHER_IS_BETTER = {"availability", "monthly.availability"}
NEUTRAL = {"requests", "dns_queries", "cost.infrastructure"}
METRICS = (
    "requests", "failed", "availability", "clients_affected",
    "recovery_s.mean", "recovery_s.p50", "recovery_s.p90", "recovery_s.p99", "recovery_s.max",
    "recovery_s.unrecovered", "stragglers_5m", "latency_ms.p50", "latency_ms.p99", "dns_queries", "dropped",
    # planning (sim.analysis.planning.PLANNING_METRICS; docs/scenario.md, "Planning metrics")
    "incident.downtime_s", "incident.budget_burn", "monthly.availability", "monthly.downtime_s",
    "monthly.budget_burn", "cost.infrastructure", "cost.dns", "cost.outage", "cost.total",
)  # fmt: skip
# After a planned change or a failover (sim.analysis.drain); the stale shares are named per scenario.
DRAIN_METRICS = ("drain_s.mean", "drain_s.p50", "drain_s.p90", "drain_s.p99", "drain_s.max", "drain_s.never")
STALE_PREFIXES = ("stale_requests@", "stale_clients@")
_PERCENTILES = {"recovery_s.p50": 50.0, "recovery_s.p90": 90.0, "recovery_s.p99": 99.0, "recovery_s.max": 100.0}


class RunTables(Protocol):
    """The tables of one run, as `sim.run` returns them and `sim.open_results` reads them back."""

    @property
    def summary(self) -> dict[str, Any]: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def clients(self) -> pd.DataFrame: ...

    @property
    def replications(self) -> pd.DataFrame: ...


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
        text = number(self.value)
        return text + (f" [{number(self.low)}, {number(self.high)}]" if self.known else " (no interval)")


def number(x: float) -> str:
    """A metric's value for people: six significant digits, "> run" for an unbounded recovery."""
    if math.isinf(x):
        return UNBOUNDED if x > 0 else "-inf"
    return f"{x:.6g}"


def known_metrics(stale_at: Sequence[float] = ()) -> tuple[str, ...]:
    """The metric names a scenario's `expect:` may use: the summary's, the drain's,
    and the stale shares at the scenario's `report.stale_at` times."""
    stale = tuple(name for after in stale_at for name in stale_names(after))
    return METRICS + DRAIN_METRICS + stale


def stored_number(value: Any) -> float:
    """A value as summary.json or a baseline stores it, as a float: null is NaN, "> run" infinity."""
    if value is None:
        return math.nan
    if value == UNBOUNDED:
        return math.inf
    return float(value)


def metric_interval(tables: RunTables, strategy: str, metric: str) -> Interval:
    """The metric for one strategy of a run, with its 95% CI.

    Recovery percentiles are pooled in the summary and have no interval there;
    here each replication's percentile is taken and the interval is across
    replications (log scale: sim.analysis.stats.positive_ci95). Clients that
    never recovered count as an infinitely long recovery
    (sim.analysis.stats.recovery_percentile): a bound on p99 recovery cannot
    hold when more than 1% never come back.
    """
    if metric not in METRICS and metric not in DRAIN_METRICS and not metric.startswith(STALE_PREFIXES):
        raise KeyError(metric)
    if metric in DRAIN_METRICS[1:5]:
        return _drain_percentile(tables, strategy, metric)
    if metric in _PERCENTILES:
        clients = affected_clients(tables.clients[tables.clients["strategy"] == strategy])
        q = _PERCENTILES[metric]
        pooled = recovery_percentile(clients["recovery_s"].to_numpy(dtype=float), q)
        reps = tables.replications[tables.replications["strategy"] == strategy]["replication"]
        per_rep = [recovery_percentile(clients.loc[clients["replication"] == k, "recovery_s"].to_numpy(dtype=float), q)
                   for k in reps]
        values = [v for v in per_rep if not math.isnan(v)]
        if len(values) < 2:
            return Interval(pooled, math.nan, math.nan)
        # a replication that never reached the percentile makes the interval unbounded above
        _, low, high = positive_ci95(values)
        return Interval(pooled, low, high)
    metrics = tables.summary["strategies"][strategy]
    node: Any = metrics
    for part in metric.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    value = stored_number(node)
    ci = metrics.get("ci95", {}).get(metric)
    if ci and ci[0] is not None and ci[1] is not None:
        return Interval(value, stored_number(ci[0]), stored_number(ci[1]))
    return Interval(value, math.nan, math.nan)


def _drain_percentile(tables: RunTables, strategy: str, metric: str) -> Interval:
    """A drain percentile with its interval across replications; a replication in
    which it falls among clients who never switched makes it unbounded above."""
    q = DRAIN_PERCENTILES[metric.split(".")[1]]
    clients = tables.clients[tables.clients["strategy"] == strategy]
    reps = tables.replications[tables.replications["strategy"] == strategy]
    per_rep, pooled = [], []
    for k, changed_at in zip(reps["replication"], reps["changed_at"].to_numpy(dtype=float), strict=True):
        if not math.isnan(changed_at):
            drains = drain_times(clients[clients["replication"] == k], changed_at)
            pooled.append(drains)
            per_rep.append(pooled_percentile(drains, q))
    if not per_rep:
        return Interval(math.nan, math.nan, math.nan)
    value = pooled_percentile(np.concatenate(pooled), q)
    if any(math.isinf(v) for v in per_rep):
        return Interval(value, min(per_rep), math.inf)
    _, low, high = positive_ci95(per_rep) if len(per_rep) > 1 else (value, math.nan, math.nan)
    return Interval(value, low, high)


def interval_frame(tables: RunTables) -> pd.DataFrame:
    """Every metric of every strategy with its interval: strategy, metric, value, low, high."""
    rows = []
    for strategy, measured in tables.summary["strategies"].items():
        # the drain's, where the run measured it (a change was made and the engine tracks targets)
        drain = [*DRAIN_METRICS, *(m for m in measured if m.startswith(STALE_PREFIXES))] if "drain_s" in measured else []
        for metric in (*METRICS, *drain):
            iv = metric_interval(tables, strategy, metric)
            rows.append({"strategy": strategy, "metric": metric, "value": iv.value, "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows)
