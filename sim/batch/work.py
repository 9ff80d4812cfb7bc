"""One unit of a sweep, as a plain function: what a local process or a Dask worker runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.analysis.table import recovery_percentile
from sim.results.schema import affected_clients
from sim.scenario import Scenario


def run_unit(scenario: Scenario, engine: str, strategy: str, seed: np.random.SeedSequence, replication: int,
             cell: int, values: dict[str, Any]) -> dict[str, Any]:
    """One replication of one strategy in one cell: a row of the sweep table."""
    from sim.analysis.planning import per_replication, planning_inputs
    from sim.runner import replicate

    out = replicate(scenario, engine, strategy, seed, replication)
    m = out.metrics
    recovery = affected_clients(out.clients)["recovery_s"].to_numpy(dtype=float)  # the model lists every client
    row: dict[str, Any] = {"cell": cell, **{path: _cell_value(v) for path, v in values.items()},
                           "strategy": strategy, "replication": replication}
    row.update({k: float(v) for k, v in m.items()})
    row["availability"] = 1.0 - m["failed"] / m["requests"] if m["requests"] else math.nan
    row["recovery_mean"] = float(np.nanmean(recovery)) if np.isfinite(recovery).any() else math.nan
    # Never recovered within the run counts as unbounded for percentiles (inf), as `check` does.
    row["recovery_p50"] = recovery_percentile(recovery, 50.0)
    row["recovery_p99"] = recovery_percentile(recovery, 99.0)
    row["never_recovered"] = float(np.mean(np.isnan(recovery))) if len(recovery) else 0.0
    # Planning metrics, `monthly.availability` as `monthly_availability`: a dotted column is a swept path.
    planned = per_replication(planning_inputs(scenario), strategy, float(m["failed"]), float(m["requests"]),
                              float(m["dns_queries"]))
    row.update({name.replace(".", "_"): value for name, value in planned.items()})
    return row


def _cell_value(value: Any) -> Any:
    # Parquet columns need one type: durations and rates stay as written ("30s"), numbers as numbers.
    return value if isinstance(value, int | float | str | bool) else str(value)
