"""sim.model.dns: the model's resolver with a farm of caches, prefetch and serve-expired,
against closed forms derived here (each on the real Resolver and Authoritative)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model import simulate
from sim.model.dns import SERVICE, Authoritative, Resolver
from sim.policy.cache import Honor
from sim.policy.resolver import Farm, ResolverSetup, ServeExpired
from tests.model.scenarios import scenario


class _Versions:
    """An authoritative whose every answer is a new version, so a served answer shows
    whether it came from the fetch made for it or from an older one."""

    def __init__(self, ttl: float) -> None:
        self.fetches = 0
        self.auth = Authoritative(("v0",), ttl, 60.0, {}, self._count)

    def _count(self, now: float) -> None:
        self.fetches += 1
        self.auth.value = (f"v{self.fetches}",)


def _batch_se(flags: np.ndarray, batches: int = 20) -> float:
    """Standard error of a share from batch means of the same run."""
    means = np.array([b.mean() for b in np.array_split(flags, batches)])
    return float(means.std(ddof=1) / math.sqrt(batches))


@pytest.mark.parametrize(("caches", "sticky"), [(4, 0.0), (4, 0.5), (8, 0.9), (1, 0.0)])
def test_farm_flip_probability(caches: int, sticky: float) -> None:
    # N busy caches primed in steady state: cache k holds the old answer until
    # E_k ~ U(0, L), independently; the record changes at 0. A query at t reaching
    # cache k gets the new answer iff E_k <= t (F(t) = t / L). Two queries at t1 < t2
    # flip (new, then old) only from two different caches: probability
    # (1 - P(same cache)) F(t1) (1 - F(t2)).
    life, t1, t2 = 100.0, 40.0, 60.0
    farm = Farm(caches, sticky)
    expected = (1 - farm.same_cache()) * (t1 / life) * (1 - t2 / life)
    n = 5_000
    rng = np.random.default_rng(10)
    flips = np.zeros(n, dtype=bool)
    for i in range(n):
        auth = Authoritative(("old",), life, 60.0, {}, lambda now: None)
        resolver = Resolver("farm", Honor(), auth, np.random.default_rng(rng.integers(2**63)), ResolverSetup(farm=farm))
        resolver.attach(0)
        resolver.prime(0.0, 1e12, rng)  # busy: every cache holds an answer
        auth.value = ("new",)
        first, second = resolver.resolve(t1, 0), resolver.resolve(t2, 0)
        flips[i] = first[0] == ("new",) and second[0] == ("old",)  # type: ignore[index]
    if caches == 1:
        assert not flips.any()  # one cache: a client only ever moves from old to new
        return
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(flips.mean() - expected) <= 4 * se


def _run(setup: ResolverSetup, ttl: float, rate: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, _Versions]:
    """Poisson queries at `rate` on one resolver: per query, whether the cache held no
    fresh answer (a miss), and whether the answer was older than the newest fetch."""
    rng = np.random.default_rng(seed)
    zone = _Versions(ttl)
    resolver = Resolver("r", Honor(), zone.auth, np.random.default_rng(seed + 1), setup)
    resolver.prime(0.0, rate, rng)
    times = np.cumsum(rng.exponential(1 / rate, n))
    missed = np.zeros(n, dtype=bool)
    older = np.zeros(n, dtype=bool)
    for i, t in enumerate(times):
        missed[i] = resolver.cache.lookup(SERVICE, t) is None
        answer = resolver.resolve(float(t), 0)
        older[i] = answer[0] != zone.auth.value  # type: ignore[index]
    return missed, older, zone


@pytest.mark.parametrize("prefetch", [False, True])
def test_prefetch_miss_share(prefetch: bool) -> None:
    # Fetches form a renewal process of cycle A + X, X ~ Exp(q), A the prefetch
    # point (L - floor(L/10); L without prefetch); a cycle ends in a miss when no
    # query falls in the last w = L - A seconds: probability exp(-q w). Queries per
    # cycle: q A + 1. Share of queries that miss: exp(-q w) / (1 + q A).
    life, q = 100.0, 0.1
    a = life - 10.0 if prefetch else life
    expected = math.exp(-q * (life - a)) / (1 + q * a)
    missed, _, _ = _run(ResolverSetup(prefetch=prefetch), life, q, 200_000, 20)
    assert abs(missed.mean() - expected) <= 4 * _batch_se(missed)


def test_prefetch_keeps_a_busy_name_cached() -> None:
    # q = 2/s, L = 300 s: a cycle ends empty with probability exp(-2 * 30) ~ 1e-26,
    # so over ~180 cycles no query may find the cache empty; without prefetch about
    # one query in 1 + q L = 601 does (the same run shows the check can fail).
    life, q, n = 300.0, 2.0, 100_000
    missed, _, zone = _run(ResolverSetup(prefetch=True), life, q, n, 30)
    assert missed.sum() == 0
    assert zone.fetches >= n / (q * 270.0 + 1) * 0.8  # it did refresh, about once per cycle
    plain, _, _ = _run(ResolverSetup(), life, q, n, 30)
    assert abs(plain.mean() - 1 / (1 + q * life)) <= 4 * _batch_se(plain)


@pytest.mark.parametrize("limit", [100.0, math.inf])
def test_serve_expired_stale_share(limit: float) -> None:
    # Client timeout 0: after an answer expires, the next query (after X ~ Exp(q)) is
    # answered with the expired record if X < S (the limit) and refreshed behind it.
    # Either way the cycle is L + X and holds q L + 1 queries, one of them past expiry:
    # stale share (1 - exp(-q S)) / (1 + q L).
    life, q = 60.0, 0.02
    expected = (1 - math.exp(-q * limit)) / (1 + q * life)
    served = ServeExpired(client_timeout=0.0, reply_ttl=30.0, ttl=limit)
    _, older, _ = _run(ResolverSetup(serve_expired=served), life, q, 100_000, 40)
    assert abs(older.mean() - expected) <= 4 * _batch_se(older)


def test_serve_expired_reply_ttl_and_the_client_timeout() -> None:
    rng = np.random.default_rng(50)
    for timeout, stale_first in [(0.0, True), (1.8, False)]:
        zone = _Versions(300.0)
        setup = ResolverSetup(serve_expired=ServeExpired(client_timeout=timeout, reply_ttl=30.0, ttl=1000.0))
        resolver = Resolver("r", Honor(), zone.auth, rng, setup)
        assert resolver.resolve(0.0, 0) == (("v1",), 300.0)
        answer = resolver.resolve(400.0, 0)  # expired 100 s ago, authoritative answering
        # 0: the expired answer at once with the reply TTL; otherwise the fresh one
        assert answer == ((("v1",), 30.0) if stale_first else (("v2",), 300.0))
        zone.auth.outages = 1
        # the authoritative silent: the answer fetched at 400 s (v2 either way, refreshed
        # behind the expired answer or fetched for it) expired at 700 s, within the limit
        assert resolver.resolve(800.0, 0) == (("v2",), 30.0)
        assert resolver.resolve(2000.0, 0) is None  # past the serve-expired limit


def test_a_farm_in_the_model_lets_clients_flip() -> None:
    # A planned change under farms: some clients reach the new balancer and then the old
    # one again (last request to the old after the first to the new); one cache never.
    flipped = {}
    for caches in (1, 8):
        sc = scenario(**{
            "duration": "8m",
            "strategies": ["cname_repoint"],
            "dns.propagation": "0s",
            "dns.resolvers": [{"name": "own", "count": 5, "share": 1.0, "caches": caches}],
            "clients.0.count": 200,
            "clients.0.rate": "0.2/s",
            "faults": [{"kind": "dns_change", "at": "60s"}],
        })
        out = simulate(sc, "cname_repoint", np.random.SeedSequence([3, caches]))
        c = out.clients
        flipped[caches] = int(np.sum(c["last_previous_at"] > c["switched_at"]))
    assert flipped[1] == 0
    assert flipped[8] > 0
