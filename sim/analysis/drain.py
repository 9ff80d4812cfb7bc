"""Drain after a DNS change or address move: how long clients keep going to the old target.

Read from a run's tables (docs/scenario.md, "Drain"):

- `drain_s`: per client, `switched_at` minus the replication's `changed_at`
  (when the change was made). A client that never reached the new target by
  the end of the run has an unbounded drain (infinite here, as a recovery that
  never came), so a mean or a percentile that falls among them is unbounded.
- `stale_requests@<t>`: of the first attempts issued within `STALE_WINDOW_S`
  either side of `changed_at + t`, the share sent to the previous target.
- `stale_clients@<t>`: of all clients, the share whose last request to the
  previous target came later than `changed_at + t`.

Only replications in which a change was made count; a strategy whose engine
does not track targets (no targets rows) has no drain metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.scenario.units import format_duration

__all__ = ["DRAIN_PERCENTILES", "STALE_WINDOW_S", "drain_times", "replication_drain", "stale_names", "stale_trials"]

# The window around changed_at + t over which stale_requests@t is counted: 5 s
# either side, so a handful of requests per second still gives a share.
STALE_WINDOW_S = 5.0
DRAIN_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}


def stale_names(after: float) -> tuple[str, str]:
    """The metric names for a `report.stale_at` time: (`stale_requests@1m`, `stale_clients@1m`)."""
    label = format_duration(after)
    return f"stale_requests@{label}", f"stale_clients@{label}"


def drain_times(clients: pd.DataFrame, changed_at: float) -> np.ndarray:
    """Each client's drain (seconds), infinite for one that never switched."""
    switched = clients["switched_at"].to_numpy(dtype=float)
    return np.where(np.isnan(switched), math.inf, switched - changed_at)


def _window(targets: pd.DataFrame, changed_at: float, after: float) -> tuple[float, float]:
    """First attempts to the previous target, and all first attempts, around changed_at + after."""
    centre = changed_at + after
    t = targets["t"].to_numpy()
    window = (t >= centre - STALE_WINDOW_S) & (t < centre + STALE_WINDOW_S)
    previous = float(targets["to_previous"].to_numpy()[window].sum())
    return previous, previous + float(targets["to_current"].to_numpy()[window].sum())


def _stale_requests(targets: pd.DataFrame, changed_at: float, after: float) -> float:
    previous, total = _window(targets, changed_at, after)
    return previous / total if total > 0 else math.nan


def stale_trials(
    clients: pd.DataFrame, targets: pd.DataFrame, changed_at: float, stale_at: Sequence[float]
) -> dict[str, float]:
    """What each stale share of a replication is counted over (its Wilson interval's
    trials): the first attempts in the window, or all clients."""
    out = {}
    for after in stale_at:
        requests, stale_clients = stale_names(after)
        out[requests] = _window(targets, changed_at, after)[1]
        out[stale_clients] = float(len(clients))
    return out


def replication_drain(
    clients: pd.DataFrame, targets: pd.DataFrame, changed_at: float, stale_at: Sequence[float]
) -> dict[str, float]:
    """One replication's drain metrics (flat names), from its clients and targets rows."""
    if math.isnan(changed_at):
        return {}
    drains = drain_times(clients, changed_at)
    out = {"drain_s.mean": float(drains.mean()) if drains.size else math.nan}
    last = clients["last_previous_at"].to_numpy(dtype=float)
    horizon = float(targets["t"].max()) + 1.0 if len(targets) else math.nan  # the end of the run
    for after in stale_at:
        requests, stale_clients = stale_names(after)
        if not changed_at + after + STALE_WINDOW_S <= horizon:
            out[requests] = out[stale_clients] = math.nan  # after the end of the run: not measured
            continue
        out[requests] = _stale_requests(targets, changed_at, after)
        with np.errstate(invalid="ignore"):
            out[stale_clients] = float(np.mean(last > changed_at + after)) if last.size else math.nan
    return out


def pooled_percentile(values: np.ndarray, q: float) -> float:
    """A percentile of drains pooled over replications; infinite when it falls among
    clients that never switched (numpy's "higher" rule: an actual client's value)."""
    if values.size == 0:
        return math.nan
    return float(np.percentile(values, q, method="higher"))
