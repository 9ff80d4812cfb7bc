"""A replication's tables, in the engine contract's columns (sim.replication)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.replication import OUTCOMES, SHED, ReplicationOutput

if TYPE_CHECKING:
    from sim.model.engine import Replication


def tables(rep: Replication) -> ReplicationOutput:
    """Per-second counts, the clients a fault affected, and the summary metrics."""
    start = int(math.floor(rep.warmup))
    seconds = len(rep.dns_counts) - 1
    counts = np.array(rep.counts, dtype=np.int64)[:, :seconds]
    timeline = pd.DataFrame({"t": np.arange(seconds, dtype=np.int64)})
    timeline["requests"] = counts.sum(axis=0)
    for i, name in enumerate(OUTCOMES):
        timeline[name] = counts[i]
    timeline["on_old_target"] = np.array(rep.old_target[:seconds], dtype=np.int64)
    timeline["dns_queries"] = np.array(rep.dns_counts[:seconds], dtype=np.int64)
    measured = counts[:, start:]
    requests = int(measured.sum())
    failed = int(measured[1:].sum())
    affected = [c for c in rep.clients if c.first_fail is not None]
    recovery = np.array(
        [(c.recovered - c.fault_at) if c.recovered is not None else np.nan for c in affected], dtype=float
    )
    clients = _clients(rep)
    targets = _targets(rep, seconds)
    lat = np.array(rep.latencies) * 1000.0
    stragglers = float(np.mean(~(recovery <= 300.0))) if len(affected) else 0.0
    metrics = {
        "requests": requests,
        "failed": failed,
        "clients_affected": len(affected),
        "stragglers_5m": stragglers,
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
        "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
        "dns_queries": int(sum(rep.dns_counts[start:])),
        "dropped": int(measured[SHED].sum()),
        "changed_at": math.nan if rep.changed_at is None else float(rep.changed_at),
    }
    return ReplicationOutput(metrics, clients, timeline, targets)


def _clients(rep: Replication) -> pd.DataFrame:
    """Every client: the affected ones with their recovery, all with when they moved."""
    nan = math.nan
    every = rep.clients
    return pd.DataFrame(
        {
            "client": np.array([c.id for c in every], dtype=np.int64),
            "cohort": [c.cohort.name for c in every],
            "resolver_group": [c.resolver.group for c in every],
            "recovery_s": np.array(
                [(c.recovered - c.fault_at) if c.recovered is not None else nan for c in every], dtype=float
            ),
            "failed": np.array([c.failed for c in every], dtype=np.int64),
            "fault_at": np.array([c.fault_at if c.first_fail is not None else nan for c in every], dtype=float),
            "switched_at": np.array([nan if c.switched_at is None else c.switched_at for c in every], dtype=float),
            "last_previous_at": np.array(
                [nan if c.last_previous_at is None else c.last_previous_at for c in every], dtype=float
            ),
        }
    )


def _targets(rep: Replication, seconds: int) -> pd.DataFrame:
    """Per second and cohort: first attempts to the previous and the current target, and rescued tries."""
    names = [cohort.name for cohort, _ in rep.cohorts]
    n = len(names)
    return pd.DataFrame(
        {
            "t": np.tile(np.arange(seconds, dtype=np.int64), n),
            "cohort": np.repeat(np.array(names, dtype=object), seconds),
            "to_previous": np.array(rep.to_previous, dtype=np.int64)[:, :seconds].reshape(-1),
            "to_current": np.array(rep.to_current, dtype=np.int64)[:, :seconds].reshape(-1),
            "rescued": np.array(rep.rescued, dtype=np.int64)[:, :seconds].reshape(-1),
        }
    )
