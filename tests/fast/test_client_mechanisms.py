"""The fast engine against the model on client restarts, idle socket reuse and a stub
grace period, and what it refuses by name.

Restarts: a `forever` stub that restarts switches at its first request after
the first restart that follows the change (sim.fast.dns); a stub that holds
answers past its resolver's (floor, fixed, extend) holds each one until its
lifetime ends or the next restart comes; a stub that never outlives its
resolver's answer is not changed by restarts. A grace period
serves the request that refreshes an expired stub from the old answer, so a
client whose first request after its resolver turned comes within the grace
period fails once more (sim.fast.dns). Sessions are not Poisson streams: the
fast engine draws and follows their requests one by one (tests/fast/test_sessions.py)
and names what it does not follow with them, such as a dns_down on resolvers they share
with Poisson clients.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.fast import unsupported
from sim.fast.dns import switch_times
from sim.fast.intensity import Intensity
from sim.fast.population import population, resolver_query_rate
from sim.scenario import build
from tests.fast.test_agreement import SMALL, _metrics, assert_agree, des, fast
from tests.model.scenarios import scenario

RESTARTS = {
    "forever stub, uniform restarts": {"clients.0.stub_cache": {"kind": "forever"},
                                       "clients.0.restart": {"every": {"uniform": ["30s", "3m"]}}},
    "forever stub, exponential restarts, TTL 300 s": {
        "clients.0.stub_cache": {"kind": "forever"}, "clients.0.restart": {"every": {"exp": "2m"}},
        "dns.service_ttl": "300s", "dns.balancer_ttl": "300s"},
    "no stub cache, restarts": {"clients.0.restart": {"every": {"exp": "1m"}}},
    # A stub that outlives the run ends with the restarts alone: followed fetch by fetch
    # (one client per resolver, sim.fast.coupled).
    "fixed 10 min stub, exponential restarts": {
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "10m"}, "clients.0.restart": {"every": {"exp": "1m"}},
        "clients.0.rate": "6/min"},
    # 150 clients per resolver: resolver caches drawn from steady state (sim.fast.dns).
    "floor 5 min stub, uniform restarts, shared resolvers": {
        "clients.0.stub_cache": {"kind": "floor", "min_ttl": "5m"},
        "clients.0.restart": {"every": {"uniform": ["30s", "2m"]}}, "clients.0.rate": "6/min",
        "clients.0.count": 1200, "dns.resolvers.0.count": 8},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RESTARTS))
def test_fast_agrees_with_the_model_on_restarts(case: str) -> None:
    assert_agree(scenario(**{**SMALL, **RESTARTS[case]}), "cname_repoint")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_fast_agrees_with_the_model_on_idle_socket_reuse(strategy: str) -> None:
    """A browser's idle socket kept 300 s (Chromium's used idle socket timeout,
    docs/references.md, "Browsers") behind a Chrome-like stub that floors at 60 s."""
    browser = {"clients.0.keepalive": "300s", "clients.0.rate": "0.1/s",
               "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"}}
    assert_agree(scenario(**{**SMALL, **browser}), strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_fast_agrees_with_the_model_on_restarts_that_close_idle_sockets(strategy: str) -> None:
    """As above, with restarts every 2 min on average: each closes the pooled connection
    (fewer reused at the address move, more lookups) and empties the stub."""
    browser = {"clients.0.keepalive": "300s", "clients.0.rate": "0.1/s",
               "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"},
               "clients.0.restart": {"every": {"exp": "2m"}}}
    assert_agree(scenario(**{**SMALL, **browser}), strategy, reps=6)


# Firefox's host cache: 60 s, and 60 s of grace (docs/references.md, "Caches"), at one request
# every 30 s, so the first request after an expiry falls in grace about as often as not.
FIREFOX = {"clients.0.stub_cache": {"kind": "fixed", "ttl": "60s"}, "clients.0.stub_grace": "60s",
           "clients.0.rate": "2/min"}
GRACE = {
    # one client per resolver: followed fetch by fetch (sim.fast.coupled)
    "Firefox, a resolver each": FIREFOX,
    # 150 clients per resolver: resolver caches drawn from steady state, stubs followed from the fault
    "Firefox, shared resolvers": {**FIREFOX, "clients.0.count": 1200, "dns.resolvers.0.count": 8},
    "honouring stub with 30 s of grace, shared resolvers": {
        "clients.0.stub_cache": {"kind": "honor"}, "clients.0.stub_grace": "30s", "clients.0.rate": "2/min",
        "clients.0.count": 1200, "dns.resolvers.0.count": 8},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(GRACE))
def test_fast_agrees_with_the_model_on_a_stub_grace_period(case: str) -> None:
    assert_agree(scenario(**{**SMALL, **GRACE[case]}), "cname_repoint", reps=6)


@pytest.mark.slow
def test_a_grace_period_costs_what_the_model_says() -> None:
    """The grace period's own effect (availability without it minus with it) is the same in
    both engines. Each replication runs both variants on one seed, so the per-seed differences
    carry the standard error; allowed: four of them."""
    base = {**SMALL, **FIREFOX, "clients.0.count": 1200, "dns.resolvers.0.count": 8}
    without = {**base, "clients.0.stub_grace": "0s"}
    mean, var = [], []
    for engine in (des, fast):
        with_grace = _metrics(engine, scenario(**base), "cname_repoint", 6)["availability"]
        effect = _metrics(engine, scenario(**without), "cname_repoint", 6)["availability"] - with_grace
        mean.append(float(np.mean(effect)))
        var.append(float(np.var(effect, ddof=1) / len(effect)))
    assert mean[0] > 4.0 * math.sqrt(var[0]), f"the model shows no cost of grace: {mean[0]:.3g}"
    assert abs(mean[0] - mean[1]) <= 4.0 * math.sqrt(sum(var)), f"model {mean[0]:.3g}, fast {mean[1]:.3g}"


def test_what_the_fast_engine_does_not_follow_is_named() -> None:
    sessions = {"clients.0": {"name": "c", "count": 10, "sessions": {"requests": 3, "think": "5s", "gap": "1m"}},
                "faults.0.mode": "blackhole"}
    assert not unsupported(scenario(**sessions), ["cname_repoint", "eip_remap"])
    assert not unsupported(scenario(**sessions, **{"clients.0.keepalive": "60s"}), ["eip_remap"])
    grace = {"clients.0.stub_grace": "60s"}
    assert not unsupported(scenario(**grace))
    dns_down = {"faults": [{"at": "10s", "kind": "dns_down", "for": "30s"}]}
    assert any("clients[0].stub_grace with a dns_down" in r for r in unsupported(scenario(**grace, **dns_down)))
    assert any("multi_a" in r and "clients[0].stub_grace" in r
               for r in unsupported(scenario(**grace, **{"strategies": ["multi_a"]})))
    restart = {"clients.0.restart": {"every": {"exp": "7d"}}}
    assert not unsupported(scenario(**restart, **{"clients.0.keepalive": "60s"}))
    fixed = {"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}}
    assert not unsupported(scenario(**restart, **fixed))
    assert any("clients[0].restart with stub_grace" in r
               for r in unsupported(scenario(**restart, **fixed, **{"clients.0.stub_grace": "60s"})))
    assert any("multi_a" in r and "clients[0].restart" in r
               for r in unsupported(scenario(**restart, **{"strategies": ["multi_a"]})))
    forever = {"clients.0.stub_cache": {"kind": "forever"}}
    assert not unsupported(scenario(**restart, **forever))
    assert not unsupported(scenario(**restart))


@pytest.mark.parametrize(("per_resolver", "before"), [(1, 0.0), (1, 100.0), (200, 0.0), (200, 100.0)])
def test_a_grace_period_delays_the_switch_by_its_closed_form(per_resolver: int, before: float) -> None:
    """sim.fast.dns.switch_times against the closed form of tests/model/test_lifecycle.py
    (test_a_stub_grace_period_delays_the_switch_by_one_request): a fixed stub of L = 60 s
    over a 10 ms record (the resolver's copy has expired whenever a stub asks), Poisson
    requests at r, grace g; at the change c the stub holds the old answer with probability
    p = L / (L + 1/r), R ~ U(0, L) left, or expired A ~ exp(r) ago. X, Y ~ exp(r):
    E[D] = p (L/2 + 1/r + (1 - e^(-rg)) / r) + (1 - p) (1/r + (1 - e^(-rg)(1 + rg)) / r).
    One client per resolver (followed fetch by fetch) and 200 (resolvers drawn apart),
    with the fault at c or `before` seconds earlier (stubs then followed from the fault)."""
    rate, life, grace, n, c = 0.1, 60.0, 60.0, 2000, 300.0
    sc = scenario(**{"duration": "1h", "clients.0.count": n, "clients.0.rate": f"{rate}/s",
                     "clients.0.stub_cache": {"kind": "fixed", "ttl": f"{life}s"}, "clients.0.stub_grace": f"{grace}s",
                     "dns.service_ttl": "10ms", "dns.balancer_ttl": "10ms", "dns.resolvers.0.count": n // per_resolver})
    rng = np.random.default_rng([per_resolver, int(before)])
    pop = population(build.compile(sc, "cname_repoint"), rng)
    q = resolver_query_rate(pop, 0.01, rng)
    switch, _, _, _, _ = switch_times(sc, pop, Intensity(sc), c, q, (c - before, sc.end), rng)
    drains = switch - c
    assert np.isfinite(drains).all()
    p = life / (life + 1 / rate)
    rg = rate * grace
    expected = (p * (life / 2 + 1 / rate + (1 - math.exp(-rg)) / rate)
                + (1 - p) * (1 / rate + (1 - math.exp(-rg) * (1 + rg)) / rate))
    without = p * life / 2 + 1 / rate  # no grace: the grace must show
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected) <= 4.0 * se, (drains.mean(), expected, se)
    assert abs(drains.mean() - without) > 4.0 * se
