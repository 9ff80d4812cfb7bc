"""sim.fit.connections: requests per connection, idle gaps, and the keep-alive estimate."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fit import connections
from sim.fit.connections import ConnectionTally, fit_reuse


def test_one_request_per_connection_means_no_keepalive() -> None:
    tally = ConnectionTally()
    for i in range(100):
        tally.add(float(i), f"c{i}", "cli")
    r = fit_reuse(tally)["cli"]
    assert (r.connections, r.per_connection.value, r.keepalive.value) == (100, 1.0, 0.0)


def test_keepalive_is_the_99th_percentile_of_idle_gaps() -> None:
    tally = ConnectionTally()
    gaps = np.linspace(0.1, 10.0, 1000)  # evenly spread below a 10 s keep-alive
    t = 0.0
    tally.add(t, "one", "jvm")
    for g in gaps:
        t += g
        tally.add(t, "one", "jvm")
    r = fit_reuse(tally)["jvm"]
    assert r.per_connection.value == 1001
    assert r.keepalive.value == pytest.approx(np.quantile(gaps, 0.99))
    assert r.keepalive.low <= np.quantile(gaps, 0.99) <= r.keepalive.high


def test_a_connection_that_never_ended_bounds_the_keepalive_from_below() -> None:
    """Each client kept its one connection all log long: no gap ended one, so the keep-alive
    is at least the longest gap, not the 99th percentile (unbounded above)."""
    tally = ConnectionTally()
    gaps = np.random.default_rng(3).exponential(2.0, (4, 300))  # 0.5/s, far below any keep-alive
    for client, row in enumerate(gaps):
        for t in np.cumsum(row):
            tally.add(float(t), f"10.0.0.{client}:4000", "jvm")
    r = fit_reuse(tally, {"jvm": 4})["jvm"]
    assert r.censored and r.keepalive.value == r.keepalive.low == pytest.approx(gaps[:, 1:].max())
    assert r.keepalive.high == np.inf
    # two connections per client: one ended, so the 99th percentile stands
    assert not fit_reuse(tally, {"jvm": 2})["jvm"].censored


def test_the_reservoir_is_a_uniform_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "RESERVOIR", 500)
    tally = ConnectionTally(seed=1)
    t = 0.0
    for i in range(20000):
        t += (i % 100) / 10  # gaps 0 .. 9.9 s, each equally often
        tally.add(t, "one", "jvm")
    sample = np.asarray(tally.gaps["jvm"])
    assert sample.size == 500
    # the mean of 500 draws from a uniform over 0..9.9: within 4 standard errors
    assert abs(sample.mean() - 4.95) <= 4 * 2.87 / np.sqrt(500)


def test_out_of_order_times_make_no_negative_gap() -> None:
    tally = ConnectionTally()
    for t in (10.0, 5.0, 12.0):
        tally.add(t, "one", "jvm")
    assert min(tally.gaps["jvm"]) >= 0
