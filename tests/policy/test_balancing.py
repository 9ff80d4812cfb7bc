from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policy.balancing import (
    BALANCING_POLICIES,
    LeastOutstanding,
    PowerOfTwoChoices,
    Random,
    RoundRobin,
    eligible,
    make_balancing_policy,
)
from tests.policy.conftest import FakeHost

# chi-square critical values at p = 0.001 for df = 1..9
_CHI2_999 = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88]
_RNG = np.random.default_rng(0)


def _chi2(counts: list[int], probs: list[float]) -> float:
    n = sum(counts)
    return sum((c - n * p) ** 2 / (n * p) for c, p in zip(counts, probs, strict=True))


def _hosts(loads: list[int]) -> list[FakeHost]:
    return [FakeHost(f"h{i}", outstanding=o) for i, o in enumerate(loads)]


def test_eligible_excludes_unhealthy_and_draining() -> None:
    hs = [
        FakeHost("ok"),
        FakeHost("sick", healthy=False),
        FakeHost("drain", draining=True),
        FakeHost("both", healthy=False, draining=True),
        FakeHost("ok2"),
    ]
    assert [h.name for h in eligible(hs)] == ["ok", "ok2"]
    assert eligible([]) == []


@given(n=st.integers(1, 9), rounds=st.integers(1, 20), start=st.integers(0, 50))
def test_round_robin_visits_each_equally(n: int, rounds: int, start: int) -> None:
    hs = _hosts([0] * n)
    rr = RoundRobin(start)
    counts = Counter(rr.pick(hs, _RNG).name for _ in range(n * rounds))
    assert set(counts.values()) == {rounds}
    assert len(counts) == n


def test_round_robin_order_and_independent_cursors() -> None:
    hs = _hosts([0, 0, 0])
    a, b = make_balancing_policy("round_robin"), make_balancing_policy("round_robin")
    assert [a.pick(hs, _RNG).name for _ in range(4)] == ["h0", "h1", "h2", "h0"]
    assert b.pick(hs, _RNG).name == "h0"


def test_random_is_uniform() -> None:
    rng = np.random.default_rng(11)
    n, draws = 7, 70_000
    hs = _hosts([0] * n)
    counts = Counter(Random().pick(hs, rng).name for _ in range(draws))
    assert _chi2([counts[h.name] for h in hs], [1 / n] * n) < _CHI2_999[n - 2]


@given(loads=st.lists(st.integers(0, 5), min_size=1, max_size=12), seed=st.integers(0, 2**32))
def test_least_outstanding_picks_a_minimum(loads: list[int], seed: int) -> None:
    hs = _hosts(loads)
    h = LeastOutstanding().pick(hs, np.random.default_rng(seed))
    assert h.outstanding == min(loads)


def test_least_outstanding_breaks_ties_uniformly() -> None:
    rng = np.random.default_rng(12)
    hs = _hosts([3, 1, 4, 1, 5, 1])
    counts = Counter(LeastOutstanding().pick(hs, rng).name for _ in range(30_000))
    assert set(counts) == {"h1", "h3", "h5"}
    assert _chi2([counts[k] for k in ("h1", "h3", "h5")], [1 / 3] * 3) < _CHI2_999[1]


def test_p2c_two_hosts_always_the_less_loaded() -> None:
    rng = np.random.default_rng(13)
    hs = _hosts([7, 2])
    assert all(PowerOfTwoChoices().pick(hs, rng).name == "h1" for _ in range(200))
    assert PowerOfTwoChoices().pick(hs[:1], rng).name == "h0"


@given(loads=st.lists(st.integers(0, 20), min_size=2, max_size=10), seed=st.integers(0, 2**32))
def test_p2c_never_picks_a_unique_maximum(loads: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    hs = _hosts(loads)
    top = max(loads)
    unique_max = loads.count(top) == 1
    for _ in range(20):
        h = PowerOfTwoChoices().pick(hs, rng)
        if unique_max:
            assert h.outstanding < top


def test_p2c_rank_distribution_closed_form() -> None:
    # distinct draws: the host of rank r (0 = least loaded) wins iff its partner
    # ranks higher, so P(r) = (n - 1 - r) / C(n, 2)
    rng = np.random.default_rng(14)
    n, draws = 5, 50_000
    hs = _hosts(list(range(n)))
    counts = Counter(PowerOfTwoChoices().pick(hs, rng).outstanding for _ in range(draws))
    probs = [(n - 1 - r) / comb(n, 2) for r in range(n - 1)]
    assert counts[n - 1] == 0
    assert _chi2([counts[r] for r in range(n - 1)], probs) < _CHI2_999[n - 3]


def test_factory() -> None:
    assert BALANCING_POLICIES == ("round_robin", "random", "least_outstanding", "p2c")
    for name in BALANCING_POLICIES:
        assert make_balancing_policy(name).name == name
    with pytest.raises(ValueError, match="unknown balancing policy 'leastconn'.*p2c"):
        make_balancing_policy("leastconn")
