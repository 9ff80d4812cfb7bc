"""Answers in a planner's units: a run's incident turned into a month (docs/scenario.md, "Planning metrics").

A run measures one incident. With how often it happens (`incidents:`), the
objective (`slo:`) and what an outage costs (`cost:`), each replication's
failed share becomes an expected monthly availability, error-budget burn and
cost. Every value is an affine function of one replication's `failed`,
`requests` and `dns_queries`, so it is computed per replication and its
interval comes from the replications like any other metric's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.stats import positive_ci95
from sim.analysis.strategies import HOURS_PER_MONTH, PRICES, PROPERTIES, Price, monthly_fixed
from sim.scenario import Scenario

__all__ = ["PLANNING_METRICS", "Planning", "add_planning", "per_replication", "planning_inputs", "prices_for"]

MONTH_S = HOURS_PER_MONTH * 3600.0  # the month prices are quoted for
DEFAULT_WINDOW_S = 30 * 86400.0  # as slo.window's default (docs/references.md, "Planning inputs")
PLANNING_METRICS = (
    "incident.downtime_s", "incident.budget_burn", "monthly.availability", "monthly.downtime_s",
    "monthly.budget_burn", "cost.infrastructure", "cost.dns", "cost.outage", "cost.total",
)  # fmt: skip


@dataclass(frozen=True)
class Planning:
    """The planning inputs of one scenario, in seconds and USD; None where not given."""

    kind: str | None  # the fault kind of the incident (the earliest fault)
    rate: float | None  # incidents per second
    slo: float | None
    window_s: float
    run_s: float
    per_failed_request: float | None
    per_minute_down: float | None
    prices: dict[str, Price]
    notes: tuple[str, ...] = field(default=())


def prices_for(scenario: Scenario) -> dict[str, Price]:
    """`failover-sim strategies`' prices with the scenario's `cost.prices`; ValueError on an unknown key."""
    prices = dict(PRICES)
    for key, usd in scenario.cost.prices.items():
        if key not in prices:
            raise ValueError(f"cost.prices.{key}: unknown price; expected one of {', '.join(PRICES)}")
        prices[key] = Price(usd, prices[key].unit, "[given]")
    return prices


def planning_inputs(scenario: Scenario) -> Planning:
    faults = sorted(scenario.faults, key=lambda f: f.at)
    kind = faults[0].kind if faults else None
    rate = scenario.incidents.get(kind) if kind else None
    notes = []
    if kind is None:
        notes.append("the scenario has no fault: no incident to count per month")
    elif rate is None:
        notes.append(f"monthly.* and cost.outage need incidents: {{{kind}: RATE}} (docs/scenario.md, Planning)")
    if scenario.slo is None:
        notes.append("budget_burn needs slo: {availability: ...} (docs/scenario.md, Planning)")
    outage = (scenario.cost.per_failed_request, scenario.cost.per_minute_down)
    if outage == (None, None):
        notes.append("cost.outage needs cost: {per_failed_request: ..., per_minute_down: ...}; counted as 0 in cost.total")
    return Planning(
        kind, rate, scenario.slo.availability if scenario.slo else None,
        scenario.slo.window if scenario.slo else DEFAULT_WINDOW_S, scenario.duration,
        outage[0], outage[1], prices_for(scenario), tuple(notes),
    )  # fmt: skip


def per_replication(plan: Planning, strategy: str, failed: float, requests: float, dns_queries: float) -> dict[str, float]:
    """The planning metrics of one replication of one strategy (NaN where an input is missing)."""
    nan = math.nan
    share = failed / requests if requests else nan
    down = share * plan.run_s
    budget = (1.0 - plan.slo) * plan.window_s if plan.slo is not None else nan
    rate = plan.rate if plan.rate is not None else nan
    per_query = plan.prices[PROPERTIES[strategy].per_query].usd
    dns = dns_queries / plan.run_s * MONTH_S / 1e6 * per_query
    if plan.per_failed_request is None and plan.per_minute_down is None:
        outage = nan
    else:
        each = failed * (plan.per_failed_request or 0.0) + down / 60.0 * (plan.per_minute_down or 0.0)
        outage = rate * MONTH_S * each
    infra = monthly_fixed(strategy, plan.prices)
    return {
        "incident.downtime_s": down,
        "incident.budget_burn": down / budget,
        "monthly.availability": 1.0 - rate * down,
        "monthly.downtime_s": rate * plan.window_s * down,
        "monthly.budget_burn": rate * plan.window_s * down / budget,
        "cost.infrastructure": infra,
        "cost.dns": dns,
        "cost.outage": outage,
        "cost.total": infra + dns + (0.0 if math.isnan(outage) else outage),
    }


def planning_frame(plan: Planning, replications: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, replication): the planning metrics, from a run's replications table."""
    rows = [
        {"strategy": r.strategy, "replication": r.replication,
         **per_replication(plan, str(r.strategy), float(r.failed), float(r.requests), float(r.dns_queries))}
        for r in replications.itertuples(index=False)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def planning_ci95(name: str, values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) of a planning metric across replications. Every one is a
    non-negative quantity (downtime, burn, cost) on the log scale
    (sim.analysis.stats.positive_ci95), except an availability, taken as one
    minus its unavailability's interval: never below 0 nor above 1."""
    if name.endswith("availability"):
        mean, low, high = positive_ci95(np.clip(1.0 - values, 0.0, None))
        return 1.0 - mean, 1.0 - high, 1.0 - low
    return positive_ci95(np.clip(values, 0.0, None))


def add_planning(summary: dict[str, Any], replications: pd.DataFrame, scenario: Scenario) -> dict[str, Any]:
    """The summary with each strategy's planning metrics (nested, with ci95) and a `planning` block."""
    plan = planning_inputs(scenario)
    frame = planning_frame(plan, replications)
    for strategy, metrics in summary["strategies"].items():
        mine = frame[frame["strategy"] == strategy]
        for name in PLANNING_METRICS:
            mean, low, high = planning_ci95(name, mine[name].to_numpy(dtype=float))
            group, key = name.split(".")
            metrics.setdefault(group, {})[key] = _json(mean)
            metrics.setdefault("ci95", {})[name] = [_json(low), _json(high)]
    summary["planning"] = {
        "incident": plan.kind,
        "rate_per_year": None if plan.rate is None else plan.rate * 8760 * 3600.0,
        "window_s": plan.window_s,
        "slo": plan.slo,
        "notes": list(plan.notes),
    }
    return summary


def _json(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
