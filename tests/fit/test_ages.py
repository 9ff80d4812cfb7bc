"""sim.fit.ages: a pool's maximum connection age from connections replaced while still alive.

The requests are drawn as the model reuses a connection (sim.policy.attempts:
reused while idle under the keep-alive and younger than the age), so the
truth is the scenario field the fit writes."""

from __future__ import annotations

import math

import numpy as np

from sim.fit.ages import AgeTally, fit_ages
from sim.fit.connections import ConnectionTally, fit_reuse

SPAN = 1800.0


def _tallies(family: str, clients: int, rate: float, keepalive: float, age: float,
             rng: np.random.Generator) -> tuple[ConnectionTally, AgeTally]:
    conns, ages = ConnectionTally(), AgeTally()
    for c in range(clients):
        serial, opened, last = 0, -math.inf, -math.inf
        for t in np.sort(rng.uniform(0, SPAN, rng.poisson(rate * SPAN))):
            if not (t - last < keepalive and t - opened < age):
                serial, opened = serial + 1, t
            last = t
            conn = f"{c}-{serial}"
            ages.add(t, f"10.0.0.{c}", conn, family, conns.add(t, conn, family))
    return conns, ages


def test_the_age_is_recovered_within_its_interval() -> None:
    conns, ages = _tallies("jvm", 20, 0.5, 30.0, 120.0, np.random.default_rng(41))
    age = fit_ages(ages, fit_reuse(conns, {"jvm": 20}))["jvm"]
    assert age.value is not None and age.aged >= 200
    assert age.value.low <= 120.0 <= age.value.high and age.value.high - age.value.low < 2.0, age


def test_connections_closed_by_idleness_give_no_age() -> None:
    conns, ages = _tallies("runtime", 20, 0.1, 5.0, math.inf, np.random.default_rng(42))
    age = fit_ages(ages, fit_reuse(conns, {"runtime": 20}))["runtime"]
    assert age.value is None and age.aged == 0 and age.handovers > 100


def test_clients_holding_several_connections_are_not_fitted() -> None:
    conns, ages = ConnectionTally(), AgeTally()
    for i in range(200):  # one client alternating between connections, a new pair every 20 requests
        conn = f"c{i // 20}-{i % 2}"
        ages.add(float(i), "10.0.0.1", conn, "browser", conns.add(float(i), conn, "browser"))
    age = fit_ages(ages, fit_reuse(conns, {"browser": 1}))["browser"]
    assert age.value is None and "several at once" in age.why


def test_connections_reset_at_random_give_no_age() -> None:
    """Resets (a balancer restarting, a client redeploying) replace connections at any age."""
    conns, ages = ConnectionTally(), AgeTally()
    rng = np.random.default_rng(43)
    for c in range(20):
        serial, t, reset = 0, 0.0, rng.exponential(300.0)
        while t < SPAN:
            t += rng.exponential(2.0)
            if t > reset:
                serial, reset = serial + 1, t + rng.exponential(300.0)
            conn = f"{c}-{serial}"
            ages.add(t, f"10.0.0.{c}", conn, "jvm", conns.add(t, conn, "jvm"))
    age = fit_ages(ages, fit_reuse(conns, {"jvm": 20}))["jvm"]
    assert age.value is None and age.aged >= 50 and "not one age" in age.why, age
