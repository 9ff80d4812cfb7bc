"""sim.policy.restarts: where a random moment finds a client in its restart cycle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policy.restarts import Restarts
from sim.policy.sampling import Constant, Exponential
from tests.policy.conftest import UniformNoBias

N = 200_000
Z = 4.5


def test_an_exponential_gap_is_memoryless_at_a_random_moment(rng: np.random.Generator) -> None:
    """Residual and age of an exponential gap of mean m are both exponential of mean m."""
    since, until = Restarts(Exponential(100.0)).equilibrium(rng, N)
    for x in (since, until):
        assert abs(x.mean() - 100.0) <= Z * 100.0 / math.sqrt(N)
        assert abs(np.mean(x > 150.0) - math.exp(-1.5)) <= Z * 0.5 / math.sqrt(N)


def test_a_constant_gap_leaves_a_uniform_residual(rng: np.random.Generator) -> None:
    since, until = Restarts(Constant(60.0)).equilibrium(rng, N)
    assert np.allclose(since + until, 60.0)
    assert abs(until.mean() - 30.0) <= Z * 60.0 / math.sqrt(12 * N)


@pytest.mark.parametrize("gap", [UniformNoBias(10.0, 50.0)])
def test_the_residual_has_the_equilibrium_density(gap: UniformNoBias, rng: np.random.Generator) -> None:
    """Residual density S(x) / m: for uniform [a, b], E[R] = E[X^2] / (2 m) = (a^2 + ab + b^2) / (6 m),
    and P(R > a) = integral_a^b (b - x) / (b - a) dx / m = (b - a) / (2 m)."""
    a, b = gap.a, gap.b
    m = (a + b) / 2
    _, until = Restarts(gap).equilibrium(rng, 20_000)  # resampled from 64 candidates: O(1/64) bias
    assert abs(until.mean() - (a * a + a * b + b * b) / (6 * m)) <= 0.03 * m
    assert abs(np.mean(until > a) - (b - a) / (2 * m)) <= 0.03


def test_after_moves_past_the_given_time(rng: np.random.Generator) -> None:
    r = Restarts(Constant(10.0))
    out = r.after(np.array([5.0, 50.0, 5.0]), np.array([33.0, 1.0, 5.0]), rng)
    assert list(out) == [35.0, 50.0, 15.0]


@pytest.mark.parametrize("every", [Constant(0.0), "7d", Exponential(math.inf)])
def test_bad_gaps_are_refused(every: object) -> None:
    with pytest.raises(ValueError):
        Restarts(every)  # type: ignore[arg-type]
