from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.cache import (
    CACHE_KINDS,
    Cache,
    Cap,
    Extend,
    Fixed,
    Floor,
    Forever,
    Honor,
    NoCache,
    ServeStale,
    equilibrium_residual,
    make_cache_policy,
    primed_entry,
)
from sim.policy.resolver import ResolverSetup, ServeExpired
from sim.policy.sampling import Constant, Exponential
from tests.policy.conftest import UniformNoBias

ttls = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_RNG = np.random.default_rng(0)


@given(ttl=ttls, p=ttls)
def test_fixed_lifetime_rules(ttl: float, p: float) -> None:
    assert Honor().lifetime(ttl, _RNG) == ttl
    assert NoCache().lifetime(ttl, _RNG) == 0.0
    assert Floor(p).lifetime(ttl, _RNG) == max(ttl, p)
    assert Cap(p).lifetime(ttl, _RNG) == min(ttl, p)
    assert Fixed(p).lifetime(ttl, _RNG) == p
    assert Forever().lifetime(ttl, _RNG) == math.inf
    assert ServeStale(p).lifetime(ttl, _RNG) == ttl


def test_only_serve_stale_has_a_stale_window() -> None:
    assert ServeStale(3600.0).stale_window == 3600.0
    for p in (Honor(), NoCache(), Floor(60), Cap(60), Fixed(30), Forever(), Extend(Constant(5))):
        assert p.stale_window == 0.0


def test_extend_adds_a_fresh_draw_each_time(rng: np.random.Generator) -> None:
    p = Extend(Exponential(100.0))
    lives = [p.lifetime(60.0, rng) for _ in range(50)]
    assert all(life >= 60.0 for life in lives)
    assert len(set(lives)) == 50
    assert Extend(Constant(5.0)).lifetime(60.0, rng) == 65.0


@pytest.mark.parametrize(
    ("kind", "params", "cls"),
    [
        ("honor", {}, Honor),
        ("none", {}, NoCache),
        ("floor", {"min_ttl": 60}, Floor),
        ("cap", {"max_ttl": 7200}, Cap),
        ("fixed", {"ttl": 30}, Fixed),
        ("forever", {}, Forever),
        ("extend", {"extra": Constant(10)}, Extend),
        ("serve_stale", {"max_stale": 86400}, ServeStale),
    ],
)
def test_factory(kind: str, params: dict, cls: type) -> None:
    p = make_cache_policy(kind, **params)
    assert isinstance(p, cls)
    assert p.kind == kind
    assert kind in CACHE_KINDS


def test_factory_errors() -> None:
    with pytest.raises(ValueError, match="unknown cache policy kind 'stretch'.*honor"):
        make_cache_policy("stretch")
    with pytest.raises(ValueError, match="floor"):
        make_cache_policy("floor", max_ttl=3)
    with pytest.raises(ValueError):
        make_cache_policy("fixed", ttl=-1)
    with pytest.raises(ValueError):
        make_cache_policy("extend", extra=5.0)


def test_policies_compare_by_value() -> None:
    assert Floor(60) == Floor(60.0)
    assert Floor(60) != Floor(30)
    assert Floor(60) != Cap(60)
    assert len({Honor(), Honor()}) == 1
    assert repr(Floor(60)) == "Floor(min_ttl=60.0)"


# --- equilibrium residuals --------------------------------------------------


def _check_mean(x: np.ndarray, expected: float, rel_bias: float = 0.0) -> None:
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert abs(x.mean() - expected) < 4 * se + rel_bias * expected, (x.mean(), expected, se)


@pytest.mark.parametrize(
    ("policy", "ttl", "life"),
    [
        (Honor(), 300.0, 300.0),
        (Floor(60), 20.0, 60.0),
        (Cap(100), 300.0, 100.0),
        (Fixed(30), 5.0, 30.0),
    ],
)
def test_residual_uniform_for_fixed_lifetime(policy, ttl: float, life: float) -> None:
    rng = np.random.default_rng(1)
    n = 40_000
    r = np.array([equilibrium_residual(policy, ttl, rng) for _ in range(n)])
    assert r.min() >= 0 and r.max() <= life
    _check_mean(r, life / 2)
    # the empirical CDF against the uniform one: Kolmogorov-Smirnov at ~1e-4 level
    u = np.sort(r) / life
    d = np.max(np.abs(u - np.arange(1, n + 1) / n))
    assert d < 2.0 / math.sqrt(n)


def test_residual_limits(rng: np.random.Generator) -> None:
    assert equilibrium_residual(Forever(), 60.0, rng) == math.inf
    assert equilibrium_residual(NoCache(), 60.0, rng) == 0.0
    assert equilibrium_residual(Extend(Constant(0.0)), 0.0, rng) == 0.0
    assert equilibrium_residual(Extend(Exponential(math.inf)), 60.0, rng) == math.inf


def _length_biased_residual_mean(ttl: float, m: float, ex2: float) -> float:
    # E[L^2] / (2 E[L]) with L = ttl + X
    return (ttl * ttl + 2 * ttl * m + ex2) / (2 * (ttl + m))


@pytest.mark.parametrize(("ttl", "m"), [(60.0, 60.0), (60.0, 1200.0), (0.0, 30.0)])
def test_residual_extend_exponential_exact(ttl: float, m: float) -> None:
    rng = np.random.default_rng(2)
    r = np.array([equilibrium_residual(Extend(Exponential(m)), ttl, rng) for _ in range(40_000)])
    _check_mean(r, _length_biased_residual_mean(ttl, m, 2 * m * m))


@pytest.mark.parametrize(("ttl", "m"), [(60.0, 60.0), (60.0, 1200.0), (0.0, 30.0)])
def test_vectorised_extend_residuals_have_the_closed_form_mean(ttl: float, m: float) -> None:
    r = Extend(Exponential(m)).residuals(ttl, np.random.default_rng(5), 40_000)
    _check_mean(r, _length_biased_residual_mean(ttl, m, 2 * m * m))


def test_residual_extend_resampled_path() -> None:
    # a sampler without length_biased: importance resampling, biased O(1/64)
    rng = np.random.default_rng(3)
    ttl, a, b = 30.0, 0.0, 60.0
    policy = Extend(UniformNoBias(a, b))
    r = np.array([equilibrium_residual(policy, ttl, rng) for _ in range(40_000)])
    m, ex2 = 30.0, b * b / 3
    _check_mean(r, _length_biased_residual_mean(ttl, m, ex2), rel_bias=0.01)


def test_residual_matches_an_inspected_renewal_process() -> None:
    # Back-to-back cached answers with lifetimes ttl + Exp(m), observed at random
    # times: the observed residual has the mean equilibrium_residual produces.
    rng = np.random.default_rng(4)
    ttl, m = 60.0, 120.0
    policy = Extend(Exponential(m))
    ends = np.cumsum(policy.lifetimes(ttl, rng, 400_000))
    looks = rng.uniform(0, ends[-1] * 0.99, 40_000)
    observed = ends[np.searchsorted(ends, looks, side="right")] - looks
    primed = np.array([equilibrium_residual(policy, ttl, rng) for _ in range(40_000)])
    se = math.hypot(observed.std() / 200, primed.std() / 200)
    assert abs(observed.mean() - primed.mean()) < 4 * se


# --- the cache ----------------------------------------------------------------


@given(ttl=st.floats(0, 1e5), now=st.floats(0, 1e6), dt=st.floats(0, 2e5))
def test_fresh_iff_within_lifetime(ttl: float, now: float, dt: float) -> None:
    c = Cache(Honor())
    exp = c.store("www", "1.2.3.4", ttl, now, _RNG)
    assert exp == now + ttl
    assert c.expires_at("www") == exp
    assert (c.lookup("www", now + dt) == "1.2.3.4") == (now + dt < exp)


def test_lookup_boundaries(rng: np.random.Generator) -> None:
    c = Cache(Floor(60.0))
    assert c.lookup("www", 0.0) is None
    assert c.expires_at("www") is None
    assert c.store("www", "a", 5.0, 100.0, rng) == 160.0
    assert c.lookup("www", 159.999) == "a"
    assert c.lookup("www", 160.0) is None
    assert c.lookup_stale("www", 160.0) is None
    assert "www" not in c  # dropped once past its (empty) stale window


def test_no_cache_never_fresh(rng: np.random.Generator) -> None:
    c = Cache(NoCache())
    c.store("www", "a", 300.0, 10.0, rng)
    assert c.lookup("www", 10.0) is None


def test_forever_never_expires(rng: np.random.Generator) -> None:
    c = Cache(Forever())
    assert c.store("www", "a", 1.0, 0.0, rng) == math.inf
    assert c.lookup("www", 1e12) == "a"
    assert c.prime("x", "b", 1.0, 0.0, rng) == math.inf


def test_serve_stale_window(rng: np.random.Generator) -> None:
    c = Cache(ServeStale(max_stale=100.0))
    c.store("www", "a", 60.0, 0.0, rng)
    assert c.lookup("www", 30.0) == "a"
    assert c.lookup_stale("www", 30.0) == "a"  # fresh values are servable too
    assert c.lookup("www", 60.0) is None
    assert c.lookup_stale("www", 60.0) == "a"
    assert c.lookup_stale("www", 159.9) == "a"
    assert c.lookup("www", 159.9) is None
    assert c.lookup_stale("www", 160.0) is None
    assert len(c) == 0


def test_restore_replaces(rng: np.random.Generator) -> None:
    c = Cache(Honor())
    c.store("www", "old", 60.0, 0.0, rng)
    c.store("www", "new", 60.0, 30.0, rng)
    assert c.lookup("www", 70.0) == "new"
    c.invalidate("www")
    assert c.lookup("www", 70.0) is None
    c.store("a", 1, 60.0, 0.0, rng)
    c.clear()
    assert len(c) == 0


def test_prime_uses_equilibrium_residual() -> None:
    rng = np.random.default_rng(5)
    c = Cache(Honor())
    exps = np.array([c.prime(i, "a", 60.0, 1000.0, rng) for i in range(20_000)]) - 1000.0
    assert exps.min() >= 0 and exps.max() <= 60.0
    _check_mean(exps, 30.0)
    assert len(c) == 20_000


@pytest.mark.parametrize(
    "policy",
    [Honor(), NoCache(), Floor(60), Cap(30), Fixed(30), Forever(), ServeStale(), Extend(Constant(7.0))],
    ids=lambda p: p.kind,
)
def test_vectorised_lifetimes_follow_the_scalar_rule(policy: Honor) -> None:
    ttls = np.array([0.0, 1.0, 29.0, 45.0, 300.0])
    got = policy.lifetimes_for(ttls, np.random.default_rng(0))
    want = [policy.lifetime(t, np.random.default_rng(0)) for t in ttls]
    assert got.tolist() == want


def test_vectorised_residuals_are_uniform_on_a_fixed_lifetime() -> None:
    r = Fixed(30).residuals(300, np.random.default_rng(1), 20000)
    assert r.min() >= 0 and r.max() <= 30
    assert abs(r.mean() - 15) < 0.3  # SE 30/sqrt(12 n) = 0.06


def test_in_grace_only_after_expiry_and_within_the_period() -> None:
    from sim.policy.cache import in_grace

    assert not in_grace(9.9, 10.0, 60.0)  # still fresh
    assert in_grace(10.0, 10.0, 60.0) and in_grace(69.9, 10.0, 60.0)
    assert not in_grace(70.0, 10.0, 60.0)
    assert not in_grace(10.0, 10.0, 0.0)  # no grace period
def test_prefetch_point_of_a_stored_answer(rng: np.random.Generator) -> None:
    # unbound: a hit from ttl - ttl/10 (integer division) after the fetch refreshes it
    c = Cache(Honor(), prefetch=True)
    c.store("www", "a", 300.0, 100.0, rng)
    assert not c.due("www", 369.999)
    assert c.due("www", 370.0)
    assert c.lookup("www", 399.9) == "a"
    assert not c.due("other", 1e9)
    plain = Cache(Honor())
    plain.store("www", "a", 300.0, 100.0, rng)
    assert not plain.due("www", 399.9)  # no prefetch: never due


def test_fetched_sets_expiry_and_prefetch_from_the_fetch_time() -> None:
    c = Cache(Honor(), prefetch=True)
    assert c.fetched("www", "a", -50.0, 60.0) == 10.0
    assert c.due("www", 4.0) and not c.due("www", 3.9)  # 60 - 6 = 54 s after the fetch


def test_keep_expired_widens_the_stale_window(rng: np.random.Generator) -> None:
    c = Cache(Honor(), keep_expired=100.0)
    c.store("www", "a", 60.0, 0.0, rng)
    assert c.lookup("www", 60.0) is None  # expired: not fresh
    assert c.lookup_stale("www", 159.9) == "a"  # but still servable expired
    assert c.lookup_stale("www", 160.0) is None
    # a policy's own stale window and keep_expired: the longer one counts
    assert Cache(ServeStale(500.0), keep_expired=100.0).put_until("x", "b", 0.0) == 0.0
    wide = Cache(ServeStale(500.0), keep_expired=100.0)
    wide.put_until("x", "b", 0.0)
    assert wide.lookup_stale("x", 499.0) == "b"
    with pytest.raises(ValueError, match="keep_expired"):
        Cache(Honor(), keep_expired=-1.0)


def test_primed_entry_is_present_the_share_of_time_a_refetching_cache_holds_it() -> None:
    """Closed form: a 60 s answer refetched at the first query after expiry, queries at
    0.1/s, is held 60 / (60 + 10) of the time, with the time left uniform on [0, 60]; an
    absent one under serve-expired (limit 5 s) expired Exp(0.1) ago, kept with chance
    1 - exp(-0.5)."""
    rng = np.random.default_rng(7)
    n = 40_000
    plain = [primed_entry(Honor(), ResolverSetup(), 60.0, 0.1, rng) for _ in range(n)]
    present = np.array([p.at for p in plain if p is not None])
    share = len(present) / n
    assert abs(share - 60 / 70) <= 4 * math.sqrt(share * (1 - share) / n)
    assert all(p is None or p.lifetime is None for p in plain)
    _check_mean(present, 30.0)
    served = ResolverSetup(serve_expired=ServeExpired(client_timeout=0.0, ttl=5.0))
    stale = [p.at for p in (primed_entry(Honor(), served, 60.0, 0.1, rng) for _ in range(n)) if p is not None and p.at < 0]
    expect = (10 / 70) * (1 - math.exp(-0.5))
    assert abs(len(stale) / n - expect) <= 4 * math.sqrt(expect * (1 - expect) / n)
    assert min(stale) > -5.0
