"""sim.fit.resolvers: classifying gaps against the TTL, and the tally's shares."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fit.records import Query
from sim.fit.resolvers import STRETCH, QueryTally, classify, fit_resolvers, guess_ttl

TTL = 60.0
rng = np.random.default_rng(7)


def _gaps(lifetime: float | np.ndarray, n: int = 50, wait: float = 2.0) -> np.ndarray:
    return lifetime + rng.exponential(wait, n)


@pytest.mark.parametrize(("gaps", "policy", "lifetime"), [
    (_gaps(60.0), "honor", 60.0),
    (_gaps(300.0), "floor", 300.0),
    (_gaps(20.0), "cap", 20.0),
    (_gaps(60.0 + rng.exponential(600.0, 50)), "extend", None),
])
def test_classify(gaps: np.ndarray, policy: str, lifetime: float | None) -> None:
    got, shortest = classify(gaps, TTL)
    assert got == policy
    if lifetime is not None:
        assert lifetime <= shortest <= lifetime + 2.0


def _extend_chance(n: int, mean: float) -> float:
    """The chance that n gaps TTL + X, X exponential of `mean`, are called `extend`, in closed
    form. For exponentials the shortest excess M is exponential of mean `mean`/n, and the
    excesses over it sum to a gamma(n - 1, mean) independent of M (the spacings of an
    exponential sample), so with c = n x STRETCH the chance is
    E_M[P(gamma(n - 1) > c (TTL + M) / mean)], the gamma's tail a Poisson sum."""
    m = np.linspace(0.0, 40.0 * mean / n, 200_001)
    x = n * STRETCH * (TTL + m) / mean
    term, tail = np.exp(-x), np.zeros_like(x)
    for j in range(n - 1):
        tail += term
        term = term * x / (j + 1)
    density = n / mean * np.exp(-n * m / mean)
    return float(np.sum((tail * density)[1:] + (tail * density)[:-1]) / 2 * (m[1] - m[0]))


@pytest.mark.parametrize(("n", "mean"), [(5, 1.5 * TTL), (5, 0.1 * TTL), (8, 0.5 * TTL)])
def test_extend_is_called_as_often_as_its_closed_form(n: int, mean: float) -> None:
    """A stretcher of a few gaps (a short log) is told from one that honours the TTL as
    often as the closed form says; draws: 4,000, held to 4 standard errors."""
    draws = 4000
    gaps = TTL + np.random.default_rng(n).exponential(mean, (draws, n))
    called = np.mean([classify(g, TTL)[0] == "extend" for g in gaps])
    p = _extend_chance(n, mean)
    assert abs(called - p) <= 4 * np.sqrt(max(p * (1 - p), 1e-4) / draws), (called, p)
    if mean >= TTL:
        assert p > 0.9  # a stretch of 1.5 TTL: 5 gaps are enough
    if mean <= 0.1 * TTL:
        assert p < 1e-3  # waits of a tenth of a TTL: not a stretcher


def test_too_few_gaps_and_duplicates() -> None:
    assert classify(np.array([60.0, 61.0]), TTL)[0] is None
    assert classify(np.array([0.01, 0.02, 60.0, 61.0]), TTL)[0] is None  # retransmissions are not gaps


def _tally() -> QueryTally:
    tally = QueryTally()
    for r, (life, n) in enumerate([(60.0, 30), (60.0, 30), (60.0, 30), (300.0, 10)]):
        t = 0.0
        for _ in range(n):
            tally.add(Query(t, f"192.0.2.{r}", "www.example.com", "A", "198.51.100.0/24" if r == 0 else None))
            t += life + 1.0
    tally.add(Query(0.0, "192.0.2.9", "other.example.com", "A", None))
    return tally


def test_shares_by_queries_and_by_resolvers() -> None:
    fit = fit_resolvers(_tally(), "www.example.com", TTL)
    assert fit.count_share["honor"].value == 0.75 and fit.count_share["floor"].value == 0.25
    assert fit.query_share["honor"].value == pytest.approx(90 / 100)
    assert fit.value["floor"].value == pytest.approx(301.0)
    assert (fit.with_subnet, fit.subnets) == (1, 1)
    assert "192.0.2" not in repr(fit.resolvers)


def test_guess_ttl_and_busiest_name() -> None:
    tally = _tally()
    assert tally.busiest_name() == "www.example.com"
    assert guess_ttl(tally, "www.example.com") == pytest.approx(61.0)


def test_a_stretchers_extra_leaves_out_the_wait_for_the_next_lookup() -> None:
    """Each gap is the cache lifetime plus the wait, after expiry, for the next client lookup
    (Exp(1 / lookup rate), memoryless). Resolvers of one lookup rate, 20 honouring the TTL
    and 20 stretching it by Exp(30 s), over 2 hours, with a 10 s wait: the honouring ones'
    mean gap less the TTL reads the wait, and the stretchers' extra, with it taken off, falls
    within its interval of 30 s, where their mean gap less the TTL (40 s) does not."""
    wait, extra, span = 10.0, 30.0, 7200.0
    draw = np.random.default_rng(19)
    tally = QueryTally()
    for r in range(40):
        t = draw.uniform(0.0, TTL)
        while t < span:
            tally.add(Query(t, f"192.0.2.{r}", "www.example.com", "A", None))
            t += TTL + (draw.exponential(extra) if r >= 20 else 0.0) + draw.exponential(wait)
    fit = fit_resolvers(tally, "www.example.com", TTL)
    assert fit.count_share["honor"].value == fit.count_share["extend"].value == 0.5
    assert fit.wait == pytest.approx(wait, rel=0.15), fit.wait
    got = fit.value["extend"]
    assert got.low <= extra <= got.high, got
    assert not got.low <= extra + wait <= got.high, got  # the gap's own mean less the TTL: the wait kept
