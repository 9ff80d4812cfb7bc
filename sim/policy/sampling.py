"""Random durations as the policies see them: anything with ``sample`` and ``mean``.

The scenario's distributions (exp, uniform, lognormal, empirical) implement this
protocol; the two small samplers here are for defaults and tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Constant", "Exponential", "Sampler", "draw"]


@runtime_checkable
class Sampler(Protocol):
    """A distribution of non-negative durations in seconds.

    A sampler may also offer ``length_biased(rng, n) -> np.ndarray``: draws with
    density x f(x) / mean. Cache priming uses it when present (exact), and
    resamples plain draws otherwise (see :func:`sim.policy.cache.equilibrium_residual`).
    Closed forms: exponential(m) -> gamma(2, m); uniform[a, b] ->
    sqrt(a^2 + U (b^2 - a^2)); lognormal(mu, s) -> lognormal(mu + s^2, s);
    constant c -> c.
    """

    @property
    def mean(self) -> float: ...

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray: ...


def draw(sampler: Sampler, rng: np.random.Generator) -> float:
    """One value from ``sampler`` as a Python float."""
    return float(sampler.sample(rng, 1)[0])


class Constant:
    """Always ``value``; consumes no randomness."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        self.value = float(value)

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def length_biased(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"


class Exponential:
    """Exponential with the given mean (the scenario's ``{exp: MEAN}``)."""

    __slots__ = ("_mean",)

    def __init__(self, mean: float) -> None:
        if mean < 0:
            raise ValueError(f"a mean duration cannot be negative, got {mean!r}")
        self._mean = float(mean)

    @property
    def mean(self) -> float:
        return self._mean

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self._mean, n)

    def length_biased(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # x e^{-x/m} / m^2 is the gamma density of shape 2, scale m
        return rng.gamma(2.0, self._mean, n)

    def __repr__(self) -> str:
        return f"Exponential({self._mean!r})"


def arrival_blocks(
    rng: np.random.Generator, rate: float, members: int, block: int = 1024
) -> Iterator[tuple[list[float], list[int], list[float]]]:
    """A cohort's Poisson arrivals, in blocks: the gaps (seconds), which member
    sends each request, and a uniform coin per arrival (kept when the coin is
    below a traffic factor under 1). The model and the lab's clients both draw
    from this, so one seed gives both the same arrivals (sim.model.trace)."""
    while True:
        yield (rng.exponential(1.0 / rate, block).tolist(), rng.integers(0, members, block).tolist(),
               rng.random(block).tolist())
