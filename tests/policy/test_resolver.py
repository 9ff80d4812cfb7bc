"""sim.policy.resolver: farms, unbound's prefetch point, serve-expired, and the prefetch steady state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policy.resolver import (
    Farm,
    ResolverSetup,
    ServeExpired,
    prefetch_from,
    steady_age,
    steady_cycles,
)


def test_prefetch_point_is_unbounds_integer_rule() -> None:
    # PREFETCH_TTL_CALC(ttl) = ttl - ttl/10 in C integer arithmetic, for every whole TTL
    for ttl in range(0, 5000):
        assert prefetch_from(float(ttl)) == ttl - ttl // 10
    assert prefetch_from(300.0) == 270.0
    assert prefetch_from(9.0) == 9.0  # under 10 s: the point is the expiry, so never prefetched
    assert prefetch_from(math.inf) == math.inf


@pytest.mark.parametrize(("caches", "sticky"), [(4, 0.0), (4, 0.5), (7, 0.9), (3, 1.0)])
def test_farm_picks_home_with_the_derived_probability(caches: int, sticky: float) -> None:
    farm = Farm(caches, sticky)
    rng = np.random.default_rng(1)
    n = 40_000
    picks = np.array([farm.pick(2, rng) for _ in range(n)])
    assert picks.min() >= 0 and picks.max() < caches
    # home with sticky + (1 - sticky) / caches, each other cache with (1 - sticky) / caches
    for k in range(caches):
        p = sticky + (1 - sticky) / caches if k == 2 else (1 - sticky) / caches
        se = math.sqrt(p * (1 - p) / n)
        assert abs(np.mean(picks == k) - p) <= 4 * se + 1e-12


@pytest.mark.parametrize(("caches", "sticky"), [(4, 0.0), (4, 0.5), (10, 0.8)])
def test_same_cache_probability_matches_pairs_of_picks(caches: int, sticky: float) -> None:
    farm = Farm(caches, sticky)
    rng = np.random.default_rng(2)
    n = 30_000
    same = np.array([farm.pick(1, rng) == farm.pick(1, rng) for _ in range(n)])
    p = farm.same_cache()
    # derived by hand for sticky 0: 1 / caches
    if sticky == 0.0:
        assert p == pytest.approx(1 / caches)
    assert abs(same.mean() - p) <= 4 * math.sqrt(p * (1 - p) / n)


def test_single_cache_draws_nothing() -> None:
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    assert Farm().pick(5, rng) == 0
    assert rng.bit_generator.state == state


def test_farm_and_serve_expired_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="caches"):
        Farm(0)
    with pytest.raises(ValueError, match="sticky"):
        Farm(2, 1.5)
    with pytest.raises(ValueError, match="reply_ttl"):
        ServeExpired(reply_ttl=-1.0)


def test_serve_expired_reply_is_capped_by_the_records_ttl() -> None:
    served = ServeExpired(client_timeout=0.0, reply_ttl=30.0, ttl=math.inf)
    assert served.immediate
    assert served.reply(300.0) == 30.0
    assert served.reply(10.0) == 10.0
    assert not ServeExpired().immediate  # unbound's default client timeout is 1.8 s
    assert ResolverSetup().expired_window == 0.0
    assert ResolverSetup(serve_expired=served).expired_window == math.inf


@pytest.mark.parametrize(("life", "rate"), [(300.0, 0.01), (60.0, 0.2), (100.0, 0.05)])
def test_steady_state_presence_matches_the_renewal_cycle(life: float, rate: float) -> None:
    # Cycle from a fetch: A + X, X ~ Exp(rate), A the prefetch point; the entry is
    # present for A + min(X, L - A). Renewal-reward: present a share
    # (A + (1 - exp(-rate (L - A))) / rate) / (A + 1 / rate) of the time.
    a = prefetch_from(life)
    w = life - a
    expected = (a + (1 - math.exp(-rate * w)) / rate) / (a + 1 / rate)
    rng = np.random.default_rng(4)
    n = 40_000
    ages = [steady_age(life, rate, rng) for _ in range(n)]
    present = np.array([x is not None for x in ages])
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(present.mean() - expected) <= 4 * se
    held = np.array([x for x in ages if x is not None])
    assert held.min() >= 0 and held.max() < life


def test_steady_state_by_simulating_the_cache() -> None:
    # The same share measured on a cache run forward query by query (no formula).
    life, rate = 50.0, 0.1
    a = prefetch_from(life)
    rng = np.random.default_rng(5)
    t, fetched, present_time, horizon = 0.0, 0.0, 0.0, 2_000_000.0
    while t < horizon:
        t_next = t + rng.exponential(1 / rate)
        if t_next - fetched >= a:  # a prefetch (fresh, in the window) or a miss: a fetch either way
            present_time += min(t_next - fetched, life)
            fetched = t_next
        t = t_next
    simulated = present_time / t
    rng = np.random.default_rng(6)
    n = 40_000
    drawn = np.mean([steady_age(life, rate, rng) is not None for _ in range(n)])
    assert abs(drawn - simulated) <= 4 * math.sqrt(simulated * (1 - simulated) / n) + 0.005


def test_steady_age_edges() -> None:
    rng = np.random.default_rng(7)
    assert steady_age(math.inf, 1.0, rng) == 0.0
    assert steady_age(60.0, 0.0, rng) is None


def test_vectorised_steady_cycles_follow_the_same_law() -> None:
    # presence share, as in the scalar test, and each age inside its own cycle
    life, rate = 60.0, 0.2
    a = prefetch_from(life)
    expected = (a + (1 - math.exp(-rate * (life - a))) / rate) / (a + 1 / rate)
    rng = np.random.default_rng(8)
    n = 40_000
    age, cycle = steady_cycles(np.full(n, life), np.full(n, rate), rng)
    assert np.all((age >= 0) & (age < cycle)) and np.all(cycle >= a)
    share = float(np.mean(age < life))
    assert abs(share - expected) <= 4 * math.sqrt(expected * (1 - expected) / n)
    # mean cycle seen at a random moment: E[C^2] / E[C] for C = A + Exp(rate)
    m1, m2 = a + 1 / rate, a * a + 2 * a / rate + 2 / rate**2
    assert abs(cycle.mean() - m2 / m1) <= 4 * cycle.std() / math.sqrt(n)
    idle, _ = steady_cycles(np.array([life, math.inf]), np.array([0.0, 1.0]), rng)
    assert idle[0] == math.inf and idle[1] == 0.0


def test_a_farms_caches_draw_from_streams_of_their_own_and_a_single_cache_from_the_resolvers() -> None:
    """The lab runs each cache of a farm as its own process: each must have a seed of its own,
    the same on every call (the model and the lab derive it apart); one cache keeps the
    resolver's seed, so a resolver that is not a farm draws as before farms."""
    assert Farm(1).cache_seed(12345, 0) == 12345
    farm = Farm(4, 0.5)
    seeds = [farm.cache_seed(12345, i) for i in range(4)]
    assert len(set(seeds)) == 4 and 12345 not in seeds
    assert seeds == [Farm(4).cache_seed(12345, i) for i in range(4)]
    assert all(0 <= s < 2**63 for s in seeds)
    assert farm.cache_seed(12346, 0) != seeds[0]
