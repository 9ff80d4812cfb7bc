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
    clients = pd.DataFrame(
        {
            "client": np.array([c.id for c in affected], dtype=np.int64),
            "cohort": [c.cohort.name for c in affected],
            "resolver_group": [c.resolver.group for c in affected],
            "recovery_s": recovery,
            "failed": np.array([c.failed for c in affected], dtype=np.int64),
            "fault_at": np.array([c.fault_at for c in affected], dtype=float),
        }
    )
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
    }
    return ReplicationOutput(metrics, clients, timeline)
