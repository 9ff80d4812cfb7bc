"""Statistics and the table against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis import format_table, mean_ci95, summarize, t_quantile_975
from sim.analysis.figures import figure_png, plot_recovery_cdf, plot_success_rate


def test_student_t_interval_by_hand() -> None:
    mean, low, high = mean_ci95([1, 2, 3, 4, 5])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3 and low == pytest.approx(3 - half) and high == pytest.approx(3 + half)
    assert t_quantile_975(10_000) == pytest.approx(1.96, abs=1e-3)
    m, lo, hi = mean_ci95([4.0])
    assert m == 4.0 and math.isnan(lo) and math.isnan(hi)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    reps = pd.DataFrame(
        {"strategy": ["a", "a"], "replication": [0, 1], "requests": [100, 200], "failed": [10, 10],
         "clients_affected": [2, 2], "stragglers_5m": [0.5, 0.0], "latency_ms_p50": [10.0, 12.0],
         "latency_ms_p99": [50.0, 70.0], "dns_queries": [5, 7], "dropped": [0, 2]}
    )
    clients = pd.DataFrame(
        {"strategy": "a", "replication": [0, 0, 1, 1], "client": [1, 2, 1, 3], "cohort": "c", "resolver_group": "g",
         "recovery_s": [10.0, np.nan, 20.0, 30.0], "failed": 1, "fault_at": 0.0}
    )
    return reps, clients


def test_summary_by_hand() -> None:
    reps, clients = frames()
    s = summarize(reps, clients, scenario="t", engine="des", seed=1, version="0")["strategies"]["a"]
    assert s["availability"] == pytest.approx((0.9 + 0.95) / 2)  # mean of per-replication availability
    assert s["failed"] == 10 and s["dropped"] == 1
    assert s["recovery_s"]["mean"] == pytest.approx(20.0)  # recovered clients, pooled
    # the never-recovered client is unbounded: 10, 20, 30, > run; p50 is the observed 30 s
    assert s["recovery_s"]["p50"] == 30.0
    assert s["recovery_s"]["p99"] == s["recovery_s"]["max"] == "> run"
    assert s["recovery_s"]["unrecovered"] == pytest.approx(0.25)
    assert s["ci95"]["latency_ms.p50"][0] < 11.0 < s["ci95"]["latency_ms.p50"][1]


def test_table_shows_each_strategy_with_intervals() -> None:
    reps, clients = frames()
    text = format_table(summarize(reps, clients, scenario="t", engine="des", seed=1, version="0"))
    assert "availability (%)" in text and "recovery p99 (s)" in text and "[" in text


def test_figures_render() -> None:
    reps, clients = frames()
    timeline = pd.DataFrame({"strategy": "a", "replication": 0, "t": np.arange(100), "requests": 10, "ok": 9})
    for fig in (plot_success_rate(timeline, scenario="t", fault_times=[30.0]),
                plot_recovery_cdf(clients, scenario="t"), plot_recovery_cdf(clients, scenario="t", by="cohort")):
        axis = fig.axes[0]
        assert "(" in axis.get_xlabel() and axis.get_ylabel()  # units in the labels
        assert figure_png(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        plot_recovery_cdf(clients, scenario="t", by="colour")
