"""Poisson clients behind a resolver farm in the fast engine: their requests drawn one by one
(sim.fast.sessions.poisson) and followed with every cache (sim.fast.lookups), against closed
forms and against the model.

The closed forms (random picks, no stub cache, one client a resolver, TTL L honoured, the
change made and propagated at c): each of the N caches gets a Poisson 1/N of the client's
requests at rate r, so at c it holds the old answer with probability p = L / (L + N / r),
for a time left R uniform on (0, L), independently of the others; a request at c + t goes
to a cache drawn uniformly and gets the old answer iff that cache's R > t (a cache that
turned stays turned). Hence

- a first attempt at c + t goes to the previous target with probability p (1 - t / L);
- the client's requests to the old answer after c + t are Poisson of intensity
  (r / N) #{caches still old}: none with probability prod over caches of
  E[exp(-(r / N) (R - t)+)] = [1 - p + p (t / L + (1 - exp(-a (L - t))) / (a L))]^N,
  a = r / N; one minus that is the share of clients still sending to the old one;
- its requests to the new answer by c + t: none with probability
  [(1 - p) exp(-a t) + p E[exp(-a (t - R)+)]]^N, whose integral over t is the mean drain.
With N = 1 these are tests/fast/test_targets.py's single-cache forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis.drain import drain_times, replication_drain, stale_names
from sim.fast import simulate, unsupported
from sim.fast.intensity import Intensity
from sim.fast.sessions import poisson
from sim.model import simulate as des
from tests.fast.test_agreement import assert_agree
from tests.model.scenarios import scenario

Z = 3.9  # two-sided 1e-4, as tests/fast/test_targets.py


def _farm(**more: object):  # type: ignore[no-untyped-def]
    return scenario(**{"clients.0.count": 300, "duration": "3m", "dns.resolvers.0.count": 10,
                       "dns.resolvers.0.caches": 4, **more})


def test_poisson_requests_have_the_traffic_shape_the_engine_applies() -> None:
    """A client's count over the run is Poisson of mean rate x G(end): a surge of factor 3 for
    30 s adds 2 x 30 s of requests, and its share of the requests falls in the surge."""
    sc = scenario(**{"duration": "2m", "faults": [
        {"at": "10s", "kind": "balancer_down", "target": "blue"},
        {"at": "30s", "kind": "traffic", "factor": 3, "for": "30s"}]})
    shape = Intensity(sc)
    rate, n = 0.5, 20_000
    drawn = poisson(rate, n, sc.end, shape, np.random.default_rng(3))
    counts = np.array([len(x) for x in drawn])
    mean = rate * (120.0 + 2 * 30.0)
    assert abs(counts.mean() - mean) <= Z * math.sqrt(mean / n), counts.mean()
    assert abs(counts.var() / mean - 1.0) < 0.05  # Poisson: variance = mean
    times = np.concatenate(drawn)
    assert times.min() >= 0.0 and times.max() < sc.end
    assert all((np.diff(x) >= 0).all() for x in drawn[:100])
    inside = float(np.mean((times >= 30.0) & (times < 60.0)))
    assert abs(inside - 90.0 / 180.0) <= Z * math.sqrt(0.25 / len(times)), inside


def _closed_forms(p: float, ttl: float, rate: float, n: int, after: float) -> tuple[float, float, float]:
    """(stale requests at c + after, stale clients at c + after, mean drain): module doc."""
    a = rate / n
    stale_requests = p * (1.0 - after / ttl)
    none_after = 1.0 - p + p * (after / ttl + (1.0 - math.exp(-a * (ttl - after))) / (a * ttl))
    stale_clients = 1.0 - none_after ** n
    t = np.linspace(0.0, 200.0 * ttl, 400_001)
    low = np.minimum(t, ttl)
    present = (np.exp(-a * (t - low)) - np.exp(-a * t)) / a / ttl + np.maximum(ttl - t, 0.0) / ttl
    survive = ((1.0 - p) * np.exp(-a * t) + p * present) ** n
    drain = float(np.sum((survive[1:] + survive[:-1]) / 2.0 * np.diff(t)))
    return stale_requests, stale_clients, drain


def test_a_farm_turns_poisson_clients_as_independent_caches_do() -> None:
    """Module doc: four caches, random picks, 0.1 requests/s, TTL 120 s, the change propagated
    at once (c = 32 s: fault at 10, detection 20 s, change 2 s); 5 replications of 1500 clients."""
    ttl, rate, n, after = 120.0, 0.1, 4, 60.0
    clients = 1500
    sc = scenario(**{"clients.0.count": clients, "clients.0.rate": f"{rate}/s", "dns.resolvers.0.count": clients,
                     "dns.resolvers.0.caches": n, "dns.service_ttl": f"{ttl}s", "dns.balancer_ttl": f"{ttl}s",
                     "dns.propagation": "0s", "duration": "5m", "strategies": ["cname_repoint"]})
    assert not unsupported(sc)
    drains, shares, stale = [], [], []
    for k in range(5):
        out = simulate(sc, "cname_repoint", np.random.SeedSequence([11, k]))
        changed = out.metrics["changed_at"]
        assert changed == 32.0
        drains.append(drain_times(out.clients, changed))
        metrics = replication_drain(out.clients, out.targets, changed, [after])
        shares.append(metrics[stale_names(after)[0]])
        stale.append(metrics[stale_names(after)[1]])
    drain = np.concatenate(drains)
    p = ttl / (ttl + n / rate)
    want_requests, want_clients, want_drain = _closed_forms(p, ttl, rate, n, after)
    assert np.isfinite(drain).mean() > 0.999
    drain = drain[np.isfinite(drain)]
    assert abs(drain.mean() - want_drain) <= Z * drain.std(ddof=1) / math.sqrt(len(drain)), (drain.mean(), want_drain)
    for got, want in ((np.array(shares), want_requests), (np.array(stale), want_clients)):
        assert abs(got.mean() - want) <= Z * got.std(ddof=1) / math.sqrt(len(got)) + 1e-9, (got, want)


def _drain_metrics(engine, sc, strategy: str, reps: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Per replication: the drain metrics, and the share of clients that went back to the old
    answer after reaching the new one (their last request to it after their switch)."""
    rows = []
    for k in range(reps):
        out = engine(sc, strategy, np.random.SeedSequence([11, k]), k)
        changed = out.metrics["changed_at"]
        row = replication_drain(out.clients, out.targets, changed, [20.0, 40.0])
        switched = out.clients["switched_at"].to_numpy(dtype=float)
        last = out.clients["last_previous_at"].to_numpy(dtype=float)
        row["went_back"] = float(np.mean(last > switched))
        row["switched_at.mean"] = float(np.nanmean(switched))
        rows.append(row)
    return {key: np.array([r[key] for r in rows], dtype=float) for key in rows[0]}


def assert_drain_agrees(sc, strategy: str, reps: int = 6) -> None:  # type: ignore[no-untyped-def]
    model, quick = _drain_metrics(des, sc, strategy, reps), _drain_metrics(simulate, sc, strategy, reps)
    problems = []
    for key, a in model.items():
        b = quick[key]
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            # a drain mean over clients some of whom never switched is unbounded: both or neither
            if np.isfinite(a).all() or np.isfinite(b).all():
                problems.append(f"{key}: model {a}, fast {b}")
            continue
        ma, mb = float(np.mean(a)), float(np.mean(b))
        se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
        if not abs(ma - mb) <= 4.0 * se + 1e-9:
            problems.append(f"{key}: model {ma:.4g}, fast {mb:.4g}, allowed difference {4.0 * se:.3g}")
    assert not problems, f"{strategy}: " + "; ".join(problems)


# 30 clients a resolver at 1/s: each cache holds the old answer at the change, and turns when
# its own answer runs out, so a client meets old and new answers until the last cache turns.
FARMS = {
    "four caches, random picks": {},
    "four caches, 75% sticky": {"dns.resolvers.0.sticky": 0.75},
    # one request in 10 s: a client meets few of the caches, so not every one goes back
    "four caches, 75% sticky, 0.1 requests/s, 3 clients a resolver": {
        "dns.resolvers.0.sticky": 0.75, "clients.0.rate": "0.1/s", "dns.resolvers.0.count": 100},
    # a grace period: the request after expiry served from the old answer, refreshed behind it
    "four caches, random picks, 0.2 requests/s, fixed 20 s stub with 60 s of grace": {
        "clients.0.rate": "0.2/s", "dns.resolvers.0.count": 100,
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s"},
    # the same, 90% sticky: the refresh behind an answer in grace goes to the client's own
    # cache in both engines (the model sent it to cache 0 before the fix)
    "four caches, 90% sticky, 0.2 requests/s, fixed 20 s stub with 60 s of grace": {
        "dns.resolvers.0.sticky": 0.9, "clients.0.rate": "0.2/s", "dns.resolvers.0.count": 100,
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s"},
    # the traffic shape on drawn Poisson requests (sim.fast.sessions.poisson)
    "four caches, 50% sticky, 0.2 requests/s, a surge (x3, 30 s) and a drop (x0.3, 60 s)": {
        "dns.resolvers.0.sticky": 0.5, "clients.0.rate": "0.2/s", "dns.resolvers.0.count": 100, "faults": [
            {"at": "10s", "kind": "balancer_down", "target": "blue"},
            {"at": "20s", "kind": "traffic", "factor": 3, "for": "30s"},
            {"at": "60s", "kind": "traffic", "factor": 0.3, "for": "60s"}]},
    # Poisson and session clients on one farm, each resolver followed with both
    "four caches, 50% sticky, Poisson clients and Chrome-like browsing sessions": {
        "dns.resolvers.0.sticky": 0.5, "dns.resolvers.0.count": 20, "clients": [
            {"name": "api", "count": 150, "rate": "0.2/s", "stub_cache": {"kind": "none"},
             "retry": {"attempts": 1, "timeout": "10s"}},
            {"name": "web", "count": 300, "sessions": {"requests": {"exp": 10}, "think": {"exp": "5s"}, "gap": {"exp": "60s"}},
             "stub_cache": {"kind": "floor", "min_ttl": "60s"}, "retry": {"attempts": 1, "timeout": "10s"}}]},
    # the cohort spread over the farm and a plain group: both followed one by one
    "a farm and a plain group, honor stubs": {
        "dns.resolvers": [{"name": "public", "count": 5, "share": 0.4, "caches": 8},
                          {"name": "isp", "count": 5, "share": 0.6}],
        "clients.0.stub_cache": {"kind": "honor"}},
    "four caches, 90% sticky, TTL 120 s, JVM stub (fixed 30 s), idle sockets 60 s": {
        "dns.resolvers.0.sticky": 0.9, "dns.service_ttl": "120s",
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}, "clients.0.keepalive": "60s"},
}


# The discriminating case (a quarter of the clients go back to the old answer) is small
# enough for CI under both strategies; the others are `slow`.
QUICK = "four caches, 75% sticky, 0.1 requests/s, 3 clients a resolver"
PAIRS = [(case, "cname_repoint") for case in FARMS] + [(QUICK, "alias_apex"), ("four caches, random picks", "alias_apex")]


@pytest.mark.parametrize(("case", "strategy"), [
    pytest.param(c, s, marks=() if c == QUICK else pytest.mark.slow, id=f"{c}-{s}") for c, s in PAIRS])
def test_fast_agrees_with_the_model_on_poisson_clients_behind_a_farm(case: str, strategy: str) -> None:
    sc = _farm(**FARMS[case])
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6)
    assert_drain_agrees(sc, strategy)


# unbound's prefetch and serve-expired (client timeout 0) on each cache of a farm, followed as the
# model's caches do (sim.fast.lookups._Resolvers). Each case's mechanism moves what it is measured
# on by several standard errors (test_prefetch_and_serve_expired_act_behind_a_farm).
SERVED_AT_ONCE = {"client_timeout": "0s", "reply_ttl": "30s", "ttl": "1d"}
FEW = {"dns.resolvers.0.sticky": 0.75, "clients.0.rate": "0.1/s", "dns.resolvers.0.count": 100}
MECHANISMS = {
    # a cache gets few queries: prefetch refreshes only some answers, serve-expired answers the
    # first query after expiry with the old record (a client goes back to it more often)
    "prefetch and serve-expired at once, 75% sticky, 0.1 requests/s, 3 clients a resolver": {
        **FEW, "dns.resolvers.0.prefetch": True, "dns.resolvers.0.serve_expired": SERVED_AT_ONCE},
    "prefetch, 75% sticky, 0.1 requests/s, 3 clients a resolver": {**FEW, "dns.resolvers.0.prefetch": True},
    "serve-expired at once, 75% sticky, 0.1 requests/s, 3 clients a resolver": {
        **FEW, "dns.resolvers.0.serve_expired": SERVED_AT_ONCE},
    # 7.5 queries/s a cache: every answer is prefetched, one fetch per 54 s instead of 60 s
    "prefetch, random picks": {"dns.resolvers.0.prefetch": True},
    "serve-expired at once, 50% sticky, honor stubs (kept for the 30 s reply TTL)": {
        "dns.resolvers.0.sticky": 0.5, "clients.0.stub_cache": {"kind": "honor"},
        "dns.resolvers.0.serve_expired": SERVED_AT_ONCE},
    "prefetch and serve-expired at once, 90% sticky, 0.2 requests/s, fixed 20 s stub with 60 s of grace": {
        "dns.resolvers.0.sticky": 0.9, "clients.0.rate": "0.2/s", "dns.resolvers.0.count": 100,
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s",
        "dns.resolvers.0.prefetch": True, "dns.resolvers.0.serve_expired": SERVED_AT_ONCE},
    # the plain group is followed with the farm (followed_groups), so its stubs may keep answers
    "a farm with prefetch, a plain group with prefetch and serve-expired at once, fixed 30 s stubs": {
        "dns.resolvers": [{"name": "public", "count": 5, "share": 0.4, "caches": 8, "prefetch": True},
                          {"name": "isp", "count": 5, "share": 0.6, "prefetch": True, "serve_expired": SERVED_AT_ONCE}],
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}},
    # unbound's default client timeout (1.8 s) tries upstream first: nothing changes while it answers
    "prefetch and serve-expired by unbound's defaults, 90% sticky, TTL 120 s, JVM stub, idle sockets 60 s": {
        "dns.resolvers.0.sticky": 0.9, "dns.service_ttl": "120s", "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
        "clients.0.keepalive": "60s", "dns.resolvers.0.prefetch": True, "dns.resolvers.0.serve_expired": {}},
}
QUICK_MECHANISMS = "prefetch and serve-expired at once, 75% sticky, 0.1 requests/s, 3 clients a resolver"
MECHANISM_PAIRS = [(case, "cname_repoint") for case in MECHANISMS] + [
    ("prefetch, 75% sticky, 0.1 requests/s, 3 clients a resolver", "alias_apex"),
    ("serve-expired at once, 75% sticky, 0.1 requests/s, 3 clients a resolver", "eip_remap")]


@pytest.mark.parametrize(("case", "strategy"), [
    pytest.param(c, s, marks=() if (c, s) == (QUICK_MECHANISMS, "cname_repoint") else pytest.mark.slow, id=f"{c}-{s}")
    for c, s in MECHANISM_PAIRS])
def test_fast_agrees_with_the_model_on_prefetch_and_serve_expired_behind_a_farm(case: str, strategy: str) -> None:
    sc = _farm(**MECHANISMS[case])
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6)
    assert_drain_agrees(sc, strategy)


# multi_a on a farm: the old answer lists both balancers' addresses, rotated by each client's
# count of answers kept (sim.fast.lookups._Clients), and a cache that turned answers the standby's
# alone. Half the picks sticky, 3 clients a resolver at 0.2/s (FARM_MULTI_A), through the active's
# fault (the failover deletes its address).
FARM_MULTI_A = {"dns.resolvers.0.count": 100, "dns.resolvers.0.sticky": 0.5, "clients.0.rate": "0.2/s"}
MULTI_A = {
    "first address, no retry": {},
    # the retry goes to the answer's other address
    "a retry": {"clients.0.retry": {"attempts": 2, "timeout": "5s"}},
    "JVM stub (fixed 30 s)": {"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}},
    # a refused connect goes on to the next address at once: no failure
    "next address": {"clients.0.address_mode": "next"},
    # a primed pooled connection leads to the address the client's rotation starts at: half fail once
    "next address, idle sockets 60 s": {"clients.0.address_mode": "next", "clients.0.keepalive": "60s"},
    # the active back after 60 s: clients whose caches still hold both addresses reach it again
    "the active back after 60 s": {"faults.0.for": "60s"},
    "random picks, 1/s, 30 clients a resolver, answers in a fixed order": {
        "dns.resolvers.0.sticky": 0.0, "clients.0.rate": "1/s", "dns.resolvers.0.count": 10,
        "failover.multi_a": {"order": "fixed"}},
}
QUICK_MULTI_A = "next address, idle sockets 60 s"


@pytest.mark.parametrize("case", [c if c == QUICK_MULTI_A else pytest.param(c, marks=pytest.mark.slow) for c in MULTI_A])
def test_fast_agrees_with_the_model_on_multi_a_behind_a_farm(case: str) -> None:
    sc = _farm(**{**FARM_MULTI_A, **MULTI_A[case]}, strategies=["multi_a"])
    assert not unsupported(sc, ["multi_a"])
    assert_agree(sc, "multi_a", reps=6, also=("refused",))


def _late_fault(**more: object):  # type: ignore[no-untyped-def]
    return _farm(**{"dns.resolvers.0.count": 100, "dns.resolvers.0.sticky": 0.5, "clients.0.rate": "0.2/s",
                    "duration": "12m", "faults.0.at": "8m", **more})


def test_the_follower_follows_only_around_the_faults() -> None:
    """A fault 8 min into a 12 min run: the farm's clients are followed one by one from four
    lifetimes of the record (the caches' honoured 60 s, none for a client without a stub cache,
    at least a minute) before it, primed there as a random moment of steady state finds them,
    until every stub, connection and cache holds the new answer (checked from the change's
    propagation on, ever further apart: here within four lifetimes); the other requests reach
    the old balancer before and the new one after, and get through (sim.fast.lookups.follow)."""
    from sim.fast.engine import _Replication
    from sim.replication import streams
    from sim.scenario import build

    run = _Replication(build.compile(_late_fault(), "cname_repoint"), streams(np.random.SeedSequence(3)))
    out = run.run()
    lo, hi = run.session_window
    propagated = 480.0 + 20.0 + 2.0 + 8.0  # detection, change, propagation
    assert lo == 480.0 - 4 * 60.0, lo
    assert propagated < hi <= propagated + 4 * 60.0, hi
    req, outcome = run.session_requests, run.session_outcome
    assert req is not None and outcome is not None
    before, after = req.times < lo, req.times >= hi
    assert before.any() and after.any()
    assert not outcome.failed[before | after].any()
    assert outcome.first_old[before].all() and not outcome.any_old[after].any()
    # the failures are all in the window, and every client met the dead balancer there
    assert out.metrics["clients_affected"] == 300
    # with prefetch the caches' fetches are followed the whole run (the renewals outside are a plain cache's)
    run = _Replication(build.compile(_late_fault(**{"dns.resolvers.0.prefetch": True}), "cname_repoint"),
                       streams(np.random.SeedSequence(3)))
    run.run()
    assert run.session_window == (0.0, math.inf)


@pytest.mark.slow
def test_fast_agrees_with_the_model_when_following_only_around_the_faults() -> None:
    """The run above, against the model (about 30 s)."""
    sc = _late_fault()
    assert_agree(sc, "cname_repoint", reps=6)
    assert_drain_agrees(sc, "cname_repoint")


def _means(engine, sc, key: str, reps: int = 6) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Per replication, a drain metric (`_drain_metrics`) or a summary metric."""
    if key.startswith(("drain", "stale")):
        return _drain_metrics(engine, sc, "cname_repoint", reps)[key]
    return np.array([engine(sc, "cname_repoint", np.random.SeedSequence([11, k]), k).metrics[key]
                     for k in range(reps)], dtype=float)


@pytest.mark.slow
@pytest.mark.parametrize(("mechanism", "key"), [
    # prefetch: a cache refetches from 54 s on when queried, so our servers see more queries
    pytest.param({"dns.resolvers.0.prefetch": True}, "dns_queries", id="prefetch-dns_queries"),
    # serve-expired: each cache's first query after its old answer ran out gets it once more
    pytest.param({"dns.resolvers.0.serve_expired": SERVED_AT_ONCE}, "drain_s.mean", id="serve_expired-drain"),
])
def test_prefetch_and_serve_expired_act_behind_a_farm(mechanism: dict, key: str) -> None:
    """The agreement above means something only if the mechanism acts: on a farm of four caches
    with few queries each (FEW), in both engines, it raises `key` by more than 4 standard errors."""
    for engine in (des, simulate):
        plain, acting = _means(engine, _farm(**FEW), key), _means(engine, _farm(**FEW, **mechanism), key)
        se = math.sqrt(plain.var(ddof=1) / len(plain) + acting.var(ddof=1) / len(acting))
        assert acting.mean() - plain.mean() > 4.0 * se, (engine.__module__, key, plain, acting)


def test_what_is_not_followed_behind_a_farm_is_named() -> None:
    assert not unsupported(_farm())
    assert not unsupported(_farm(**{"faults.0.mode": "blackhole"}))
    assert not unsupported(_farm(faults=[{"at": "10s", "kind": "dns_change"}], strategies=["cname_repoint"]))
    # every client of a farm is followed, so a dns_down meets each of its lookups
    assert not unsupported(_farm(faults=[{"at": "10s", "kind": "dns_down", "for": "30s"}]))
    # one address per balancer: a farm's Poisson clients are followed with their rotation
    assert not unsupported(_farm(strategies=["multi_a"]))
    # a sticky farm under stubs with grace is followed (the model's refresh now asks the own cache too)
    assert not unsupported(_farm(**{"dns.resolvers.0.sticky": 0.9, "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"},
                                    "clients.0.stub_grace": "60s"}))
    # prefetch and serve-expired are followed per cache, whatever the stubs, a dns_down too
    assert not unsupported(_farm(**MECHANISMS[QUICK_MECHANISMS]))
    assert not unsupported(_farm(**MECHANISMS["prefetch and serve-expired at once, 90% sticky, 0.2 requests/s, fixed 20 s "
                                              "stub with 60 s of grace"]))
    outage = [{"at": "10s", "kind": "dns_down", "for": "30s"}]
    assert not unsupported(_farm(**{"dns.resolvers.0.prefetch": True, "dns.resolvers.0.serve_expired": SERVED_AT_ONCE,
                                    "faults": outage}))


def test_every_resolver_a_farms_clients_share_is_followed_whole() -> None:
    """A cohort spread over a farm and plain groups is followed one by one on all of them, so
    every cohort on those groups is followed too (a resolver is followed exactly only when all
    its clients are); a group no farm cohort reaches stays on the Poisson path."""
    from sim.fast.population import followed_groups, on_farm, population
    from sim.scenario import build

    c = {"count": 30, "rate": "1/s", "stub_cache": {"kind": "none"}, "retry": {"attempts": 1, "timeout": "10s"}}
    groups = [{"name": "farm", "count": 2, "share": 0.5, "caches": 4}, {"name": "isp", "count": 3, "share": 0.3},
              {"name": "own", "count": 2, "share": 0.2}]
    apart = [{**c, "name": name, "resolver_group": name} for name in ("farm", "isp", "own")]
    sc = scenario(**{"dns.resolvers": groups, "clients": apart})
    assert followed_groups(sc) == {"farm"}
    assert [on_farm(sc, spec) for spec in sc.clients] == [True, False, False]
    sc = scenario(**{"dns.resolvers": groups, "clients": [*apart, {**c, "name": "spread"}]})
    assert followed_groups(sc) == {"farm", "isp", "own"}
    pop = population(build.compile(sc, "cname_repoint"), np.random.default_rng(1))
    assert [cohort.followed for cohort in pop.cohorts] == [True, True, True, True]
    assert not unsupported(sc)
