from __future__ import annotations

import numpy as np
import pytest

from sim.policy.sampling import Constant, Exponential, Sampler, draw


def test_constant_is_a_sampler_and_uses_no_randomness(rng: np.random.Generator) -> None:
    c = Constant(3.5)
    assert isinstance(c, Sampler)
    state = rng.bit_generator.state
    assert c.mean == 3.5
    assert np.all(c.sample(rng, 4) == 3.5)
    assert draw(c, rng) == 3.5
    assert rng.bit_generator.state == state


def test_exponential_mean_and_length_biased_mean(rng: np.random.Generator) -> None:
    e = Exponential(10.0)
    n = 200_000
    x = e.sample(rng, n)
    # 4 standard errors; the sd of an exponential is its mean
    assert abs(x.mean() - 10.0) < 4 * 10.0 / np.sqrt(n)
    # length-biased mean is E[X^2] / E[X] = 2 m for an exponential, sd sqrt(2) m
    y = e.length_biased(rng, n)
    assert abs(y.mean() - 20.0) < 4 * np.sqrt(2) * 10.0 / np.sqrt(n)


@pytest.mark.parametrize("cls", [Constant, Exponential])
def test_negative_rejected(cls: type) -> None:
    with pytest.raises(ValueError):
        cls(-1.0)


def test_length_biased_draws_have_mean_e_x2_over_mean(rng: np.random.Generator) -> None:
    """The length-biased mean is E[X^2] / E[X]: exact forms (uniform, lognormal in the
    scenario's units), the sampler's own (exponential), and resampling otherwise."""
    from sim.policy.sampling import length_biased
    from sim.scenario.units import LogNormal, Uniform
    from tests.policy.conftest import UniformNoBias

    n = 200_000
    cases = [
        (Uniform(10.0, 50.0), (10.0**2 + 10.0 * 50.0 + 50.0**2) / 3 / 30.0, 0.0),
        (Exponential(10.0), 20.0, 0.0),
        (LogNormal(10.0, 0.5), 10.0 * np.exp(1.5 * 0.25), 0.0),
        (UniformNoBias(10.0, 50.0), (10.0**2 + 10.0 * 50.0 + 50.0**2) / 3 / 30.0, 0.02),
    ]
    for sampler, expected, bias in cases:
        x = length_biased(sampler, rng, n)
        assert abs(x.mean() - expected) <= 4.5 * x.std() / np.sqrt(n) + bias * expected, (sampler, x.mean(), expected)
