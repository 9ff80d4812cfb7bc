"""The side-by-side table of a summary (one row per metric, one column per strategy),
and the per-cohort table of who is down and for how long."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from sim.results.schema import UNBOUNDED

# (label, dotted metric, format of the value, unit); the order a reader scans in.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("availability", "availability", "pct", "%"),
    ("requests", "requests", "int", ""),
    ("failed requests", "failed", "int", ""),
    ("clients affected", "clients_affected", "int", ""),
    ("recovery mean of recovered", "recovery_s.mean", "sec", "s"),
    ("recovery p50", "recovery_s.p50", "sec", "s"),
    ("recovery p90", "recovery_s.p90", "sec", "s"),
    ("recovery p99", "recovery_s.p99", "sec", "s"),
    ("recovery max", "recovery_s.max", "sec", "s"),
    ("never recovered", "recovery_s.unrecovered", "pct", "%"),
    ("stragglers after 5 min", "stragglers_5m", "pct", "%"),
    ("latency p50", "latency_ms.p50", "ms", "ms"),
    ("latency p99", "latency_ms.p99", "ms", "ms"),
    ("DNS queries (authoritative)", "dns_queries", "int", ""),
    ("dropped (shed)", "dropped", "int", ""),
    # planning (docs/scenario.md, "Planning metrics"): "-" where an input is missing
    ("downtime per incident", "incident.downtime_s", "sec", "s"),
    ("monthly availability", "monthly.availability", "pct4", "%"),
    ("monthly downtime", "monthly.downtime_s", "sec", "s"),
    ("budget burn per incident", "incident.budget_burn", "pct1", "%"),
    ("budget burn per month", "monthly.budget_burn", "pct1", "%"),
    ("cost: infrastructure", "cost.infrastructure", "usd", "$/month"),
    ("cost: DNS queries", "cost.dns", "usd", "$/month"),
    ("cost: expected outage", "cost.outage", "usd", "$/month"),
    ("cost: total", "cost.total", "usd", "$/month"),
)


def _get(metrics: dict[str, Any], dotted: str) -> Any:
    node: Any = metrics
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if value == UNBOUNDED or value == math.inf:
        # a recovery percentile whose rank falls among clients not recovered by the end
        return UNBOUNDED
    if kind == "pct":
        return f"{100 * value:.3f}" if value > 0.99 else f"{100 * value:.1f}"
    if kind == "pct4":
        return f"{100 * value:.4f}"
    if kind == "pct1":
        return f"{100 * value:.1f}"
    if kind == "usd":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{value:,.0f}"
    if kind == "ms":
        return f"{value:.1f}"
    return f"{value:.1f}"


def _cell(metrics: dict[str, Any], dotted: str, kind: str) -> str:
    text = _fmt(_get(metrics, dotted), kind)
    ci = metrics.get("ci95", {}).get(dotted)
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{_fmt(ci[0], kind)}, {_fmt(ci[1], kind)}]"
    return text


# After a DNS change or address move (sim.analysis.drain), when a run has one.
DRAIN_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("drain mean", "drain_s.mean", "sec", "s"),
    ("drain p50", "drain_s.p50", "sec", "s"),
    ("drain p90", "drain_s.p90", "sec", "s"),
    ("drain p99", "drain_s.p99", "sec", "s"),
    ("never switched", "drain_s.never", "pct", "%"),
)


def _rows(strategies: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = list(ROWS)
    first = next((m for m in strategies.values() if "drain_s" in m), None)
    if first is not None:
        rows += DRAIN_ROWS
        for name in first:
            if name.startswith(("stale_requests@", "stale_clients@")):
                what, after = name.split("@")
                rows.append((f"{what.replace('_', ' ')} {after} after the change", name, "pct", "%"))
    return rows


def _drain_cell(metrics: dict[str, Any], dotted: str, kind: str) -> str:
    # A drain that falls among clients who never switched is unbounded: "> run".
    if dotted.startswith("drain_s.") and _get(metrics, dotted) is None and (_get(metrics, "drain_s.never") or 0) > 0:
        return "> run"
    return _cell(metrics, dotted, kind)


def summary_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Rows = metrics (with unit), columns = strategies; cells "value [95% CI]"."""
    strategies = summary["strategies"]
    rows = _rows(strategies)
    data = {name: [_drain_cell(m, dotted, kind) for _, dotted, kind, _ in rows] for name, m in strategies.items()}
    index = [f"{label} ({unit})" if unit else label for label, _, _, unit in rows]
    return pd.DataFrame(data, index=index)


def format_table(summary: dict[str, Any]) -> str:
    """The table for a terminal, with a heading naming the scenario and the run."""
    table = summary_table(summary)
    head = (
        f"{summary['scenario']}: {summary['replications']} replications, seed {summary['seed']}, "
        f"engine {summary['engine']}; values are means over replications [95% CI]; "
        f"recovery is per affected client, pooled; {UNBOUNDED}: not reached by the end of the run"
    )
    width = max(len(i) for i in table.index)
    cols = [max(len(c), *(len(v) for v in table[c])) for c in table.columns]
    notes = summary.get("planning", {}).get("notes", [])
    lines = [head, *(f"planning: {note}" for note in notes), "", " " * width + "  " + "  ".join(c.rjust(w) for c, w in zip(table.columns, cols, strict=True))]
    for label, row in table.iterrows():
        lines.append(str(label).ljust(width) + "  " + "  ".join(v.rjust(w) for v, w in zip(row, cols, strict=True)))
    return "\n".join(lines)


_COHORT_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}


def recovery_percentile(recovery_s: np.ndarray, q: float) -> float:
    """The q-th percentile of per-client recovery, a client never recovered counting as unbounded.

    ``recovery_s`` holds NaN for a client that had not recovered by the end of
    the run. The percentile is an observed value (numpy's "higher" method), so
    it is infinite exactly when its rank falls among the never-recovered
    clients: shown as "> run". NaN with no clients. The one definition
    `check`, the summary, the tables, `compare` and the sweeps use.
    """
    values = np.asarray(recovery_s, dtype=float)
    if values.size == 0:
        return math.nan
    return float(np.percentile(np.where(np.isnan(values), np.inf, values), q, method="higher"))


def cohort_table(clients: pd.DataFrame) -> pd.DataFrame:
    """Who is down and for how long: per strategy and cohort, pooled over replications.

    Columns: affected clients (per replication), recovery p50 / p90 / p99 /
    max in seconds, a client never recovered counting as unbounded (inf: the
    percentile is beyond the run, shown as "> run"), and the share never
    recovered within the run (%). `clients` is a run's clients table
    (`Results.clients`).
    """
    columns = ["strategy", "cohort", "affected", "p50_s", "p90_s", "p99_s", "max_s", "never_%"]
    clients = clients[clients["failed"] > 0]  # every client is listed; recovery is the affected ones
    if clients.empty:
        return pd.DataFrame(columns=columns)
    reps = max(1, clients["replication"].nunique())
    rows = []
    for (strategy, cohort), frame in clients.groupby(["strategy", "cohort"], sort=False):
        rec = frame["recovery_s"].to_numpy(dtype=float)
        rows.append(
            {
                "strategy": strategy,
                "cohort": cohort,
                "affected": len(frame) / reps,
                **{f"{name}_s": recovery_percentile(rec, q) for name, q in _COHORT_PERCENTILES.items()},
                "never_%": 100.0 * float(np.isnan(rec).mean()),
            }
        )
    return pd.DataFrame(rows, columns=columns).round(1)
