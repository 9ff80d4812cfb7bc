"""Client restarts, browsing sessions, a stub grace period and idle socket reuse in
the model, against closed forms derived here (docs/scenario.md, `clients[]`).

Every case has one client per honouring resolver, so clients are independent,
and a `dns_change` at c with propagation 0 (as tests/model/test_drain.py).
Tolerances are standard errors measured in the same run times Z (two-sided 1e-4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis.drain import drain_times
from sim.model import simulate
from tests.model.scenarios import scenario

CHANGE_AT = 200.0
Z = 3.9


def _change(n: int, rate: float | None, ttl: float, stub: dict, duration: str = "10m", at: float = CHANGE_AT, **more):  # type: ignore[no-untyped-def]
    cohort = {"clients.0.count": n, "clients.0.stub_cache": stub}
    if rate is not None:
        cohort["clients.0.rate"] = f"{rate}/s"
    return scenario(**{
        "duration": duration, "strategies": ["cname_repoint"], "dns.service_ttl": f"{ttl}s", "dns.balancer_ttl": f"{ttl}s",
        "dns.propagation": "0s", "dns.resolvers.0.count": n, **cohort,
        "faults": [{"kind": "dns_change", "at": f"{at}s"}], **more,
    })


def _drains(sc, reps: int, at: float = CHANGE_AT) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.concatenate([drain_times(simulate(sc, "cname_repoint", np.random.SeedSequence([7, k])).clients, at)
                           for k in range(reps)])


@pytest.mark.slow
def test_a_restart_ends_a_forever_tail_with_the_residual_restart_time() -> None:
    """A `forever` stub holds the old answer until the client's first restart after c,
    then switches at its next request. At c the time R to the next restart has the
    equilibrium density S(x) / m (S the survival of the gap, m its mean), and the
    stub is empty only if no request (rate r) came since the last restart (an age
    A of the same density): P(empty) = E[exp(-r A)]. With X ~ exp(r) the wait for
    the next request: P(D > t) = (1 - P(empty)) P(R + X > t) + P(empty) exp(-r t),
    P(R + X > t) = P(R > t) + integral_0^t f_R(x) exp(-r (t - x)) dx.
    Gaps uniform on [a, b]: a fresh gap (not length-biased) would give a visibly
    different curve, and so would a run that starts at a restart."""
    a, b, rate = 60.0, 240.0, 0.5
    sc = _change(400, rate, 5.0, {"kind": "forever"}, **{"clients.0.restart": {"every": {"uniform": [f"{a}s", f"{b}s"]}}})
    drains = _drains(sc, 4)
    assert np.isfinite(drains).all()
    m = (a + b) / 2
    x = np.linspace(0.0, b, 200_001)
    density = np.where(x < a, 1.0, (b - x) / (b - a)) / m
    empty = np.trapezoid(density * np.exp(-rate * x), x)
    for t in (30.0, 90.0, 150.0, 200.0):
        inside = x <= t
        survival = np.trapezoid(density[~inside], x[~inside]) + np.trapezoid(density[inside] * np.exp(-rate * (t - x[inside])), x[inside])
        expected = (1 - empty) * survival + empty * math.exp(-rate * t)
        share = float(np.mean(drains > t))
        se = math.sqrt(expected * (1 - expected) / drains.size)
        assert abs(share - expected) <= Z * se + 1e-9, (t, share, expected, se)


@pytest.mark.slow
def test_a_restart_clears_pooled_connections() -> None:
    """With keep-alive longer than the run and no stub cache, a client keeps its
    connection to the old balancer until a restart closes it: the same law as a
    forever stub, the connection in place of the answer (mean drain E[R] + 1/r when
    every client has a connection at c, E[R] = E[gap^2] / (2 m))."""
    mean_gap, rate = 120.0, 0.2
    sc = _change(300, rate, 5.0, {"kind": "none"}, duration="30m", **{"clients.0.keepalive": "1h",
                                                      "clients.0.restart": {"every": {"exp": f"{mean_gap}s"}}})
    drains = _drains(sc, 3)
    assert np.isfinite(drains).all()
    # an exponential gap's residual is the same exponential; P(no request since the restart) = 1/(1 + r m)
    open_at_c = 1 - 1 / (1 + rate * mean_gap)
    expected = open_at_c * (mean_gap + 1 / rate) + (1 - open_at_c) / rate
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected) <= Z * se, (drains.mean(), expected, se)


def _session_rate(requests: float, think: float, gap: float, kind: str) -> float:
    """E[N] / ((E[N] - 1) E[think] + E[gap]), N = ceil of the draw: derived here, not read from the code."""
    mean_n = math.ceil(requests) if kind == "constant" else 1 / (1 - math.exp(-1 / requests))
    return mean_n / ((mean_n - 1) * think + gap)


def test_sessions_give_the_request_count_their_distributions_imply() -> None:
    """Sessions of ceil(Exp(5)) requests (geometric, E[N] = 1 / (1 - e^(-1/5))), exp
    think 10 s and uniform gaps 60-300 s: requests per client per second are
    E[N] / E[cycle] over the whole run, and already in its first minute (the run
    starts at a random moment of the cycle, not at a session's start)."""
    spec = {"requests": {"exp": 5}, "think": {"exp": "10s"}, "gap": {"uniform": ["60s", "300s"]}}
    n, reps = 500, 4
    sc = scenario(**{"duration": "20m", "clients.0.count": n, "dns.resolvers.0.count": 100, "faults": [],
                     "clients.0": {"name": "c", "count": n, "sessions": spec, "stub_cache": {"kind": "none"}}})
    expected = _session_rate(5, 10.0, 180.0, "exp")
    assert sc.clients[0].rate == sc.clients[0].sessions.policy().rate
    totals, firsts = [], []
    for k in range(reps):
        timeline = simulate(sc, "cname_repoint", np.random.SeedSequence([3, k])).timeline
        counted = timeline[timeline["t"] < 1190]
        totals.append(counted["requests"].sum() / (n * 1190.0))
        firsts.append(timeline[timeline["t"] < 60]["requests"].sum() / (n * 60.0))
    for name, got, span in (("whole run", totals, 1190.0), ("first minute", firsts, 60.0)):
        # requests of independent clients over a span: the spread of the mean rate is
        # measured across replications, and at least the Poisson floor of the count
        se = max(np.std(got, ddof=1) / math.sqrt(reps), math.sqrt(expected / (n * span * reps)))
        assert abs(np.mean(got) - expected) <= Z * se, (name, np.mean(got), expected, se)


def test_constant_sessions_count_exactly_their_requests() -> None:
    """Three requests 20 s apart, then a gap: E[N] = 3, cycle 2 x 20 s + E[gap]."""
    spec = {"requests": 3, "think": "20s", "gap": {"exp": "2m"}}
    n, reps = 500, 3
    sc = scenario(**{"duration": "20m", "faults": [], "dns.resolvers.0.count": 100,
                     "clients.0": {"name": "c", "count": n, "sessions": spec, "stub_cache": {"kind": "none"}}})
    expected = _session_rate(3, 20.0, 120.0, "constant")
    got = [simulate(sc, "cname_repoint", np.random.SeedSequence([5, k])).timeline.query("t < 1190")["requests"].sum()
           / (n * 1190.0) for k in range(reps)]
    se = max(np.std(got, ddof=1) / math.sqrt(reps), math.sqrt(expected / (n * 1190.0 * reps)))
    assert abs(np.mean(got) - expected) <= Z * se, (np.mean(got), expected, se)


@pytest.mark.parametrize("at", [CHANGE_AT, 1.0])
def test_a_stub_grace_period_delays_the_switch_by_one_request(at: float) -> None:
    """A stub that keeps answers L = 60 s over a 1 s record (so the resolver's copy has
    always expired when the stub asks), Poisson requests at r, grace g. A request
    within g of the stub's expiry gets the old answer and refreshes it behind
    itself; the next request gets the new one. At c the stub holds the old answer
    with probability p = L / (L + 1/r), R ~ U(0, L) left; or it expired A ~ exp(r)
    ago (the age within an exp(r) wait). X, Y ~ exp(r):
    present: D = R + X + [X < g] Y;  empty: D = X + [A + X < g] Y, A + X ~ Gamma(2, r).
    E[D] = p (L/2 + 1/r + (1 - e^(-rg)) / r) + (1 - p) (1/r + (1 - e^(-rg)(1 + rg)) / r).
    A change 1 s after the start finds the stubs as priming left them: the same law
    (an empty stub holds the answer that expired A ago)."""
    rate, life, grace = 0.1, 60.0, 60.0
    # A 1 s record: the resolver's copy has expired whenever the stub asks, also just
    # after the start (the model primes the resolver apart from the stub above it).
    sc = _change(400, rate, 1.0, {"kind": "fixed", "ttl": f"{life}s"}, at=at, **{"clients.0.stub_grace": f"{grace}s"})
    drains = _drains(sc, 4, at)
    assert np.isfinite(drains).all()
    p = life / (life + 1 / rate)
    rg = rate * grace
    expected = (p * (life / 2 + 1 / rate + (1 - math.exp(-rg)) / rate)
                + (1 - p) * (1 / rate + (1 - math.exp(-rg) * (1 + rg)) / rate))
    without = p * life / 2 + 1 / rate  # test_drain's closed form: the grace must show
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected) <= Z * se, (drains.mean(), expected, se)
    assert abs(drains.mean() - without) > Z * se


def test_idle_socket_reuse_keeps_clients_on_the_old_target() -> None:
    """Keep-alive k (a browser's idle socket timeout), no stub cache, a record TTL T < k:
    a new connection always finds the resolver's copy expired (the last lookup was
    at least k ago), so a client switches at its first request after a gap of k or
    more. From a request, requests keep reusing until such a gap: with q = 1 - e^(-rk)
    the short gaps number q / (1 - q) on average, each 1/r - k(1 - q)/q, and the
    closing one k + 1/r: E[S] = e^(rk) / r. At c the last request is A ~ exp(r) old
    and the next X ~ exp(r) away; it reuses iff A + X < k (Gamma(2, r)):
    E[D] = 1/r + (1 - e^(-rk)(1 + rk)) e^(rk) / r."""
    rate, keepalive = 0.05, 20.0
    sc = _change(400, rate, 5.0, {"kind": "none"}, duration="20m", **{"clients.0.keepalive": f"{keepalive}s"})
    drains = _drains(sc, 4)
    assert np.isfinite(drains).all()
    rk = rate * keepalive
    expected = 1 / rate + (1 - math.exp(-rk) * (1 + rk)) * math.exp(rk) / rate
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected) <= Z * se, (drains.mean(), expected, se)


def test_a_grace_refresh_behind_a_fully_sticky_farm_reaches_the_clients_own_cache() -> None:
    """A farm whose every query goes to the client's own cache (sticky 1.0) is, cache by
    cache, a plain resolver serving only that cache's clients (sim.policy.resolver.Farm):
    10 farms of 4 caches with 8 clients each (2 a cache) must send the authoritative as
    many queries as 40 plain resolvers with 2 clients each, the refresh of a stub answer
    served in grace included. Stubs keep an answer 20 s over a 60 s record with 60 s of
    grace, requests at 0.2/s: nearly every lookup is such a refresh (a 60 s wait has
    probability e^-12), so a refresh sent to any cache but the client's own shows at once
    (to cache 0 for every client: about a quarter of the queries). Not one client per
    resolver: the equivalence needs none of the closed forms above."""
    common = {"duration": "5m", "faults": [], "clients.0.count": 80, "clients.0.rate": "0.2/s",
              "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s"}
    farms = scenario(**common, **{"dns.resolvers": [
        {"name": "own", "count": 10, "share": 1.0, "policy": {"kind": "honor"}, "caches": 4, "sticky": 1.0}]})
    plain = scenario(**common, **{"dns.resolvers.0.count": 40})
    reps = 4
    got = {name: np.array([simulate(sc, "cname_repoint", np.random.SeedSequence([11, k])).metrics["dns_queries"]
                           for k in range(reps)], dtype=float)
           for name, sc in (("farms", farms), ("plain", plain))}
    # Each cache refreshes about once a record's life, so the counts vary less than Poisson
    # counts would: 4 replications estimate that spread poorly, and the Poisson one bounds it.
    measured = math.sqrt(sum(v.var(ddof=1) for v in got.values()) / reps)
    se = max(measured, math.sqrt(sum(v.mean() for v in got.values()) / reps))
    assert abs(got["farms"].mean() - got["plain"].mean()) <= Z * se, (got, se)
