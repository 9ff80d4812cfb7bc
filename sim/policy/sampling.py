"""Random durations as the policies see them: anything with ``sample`` and ``mean``.

The scenario's distributions (exp, uniform, lognormal, empirical) implement this
protocol; the two small samplers here are for defaults and tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Constant", "Exponential", "Sampler", "draw", "length_biased"]


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


def length_biased(sampler: Sampler, rng: np.random.Generator, n: int, candidates: int = 64) -> np.ndarray:
    """``n`` draws with density x f(x) / mean: the interval that covers a random instant.

    Exact when the sampler offers ``length_biased``, and for the scenario's uniform
    and lognormal forms (the closed forms in :class:`Sampler`); otherwise each draw is
    resampled from ``candidates`` plain draws with weights proportional to x
    (sampling-importance-resampling, biased low by O(1/candidates), as
    sim.policy.cache does for the TTL stretchers).
    """
    exact = getattr(sampler, "length_biased", None)
    if exact is not None:
        return np.asarray(exact(rng, n), dtype=float)
    kind = getattr(sampler, "kind", None)
    if kind == "uniform":
        # density 2x / (b^2 - a^2) on [a, b]: the inverse of its CDF
        a, b = float(sampler.low), float(sampler.high)  # type: ignore[attr-defined]
        return np.sqrt(a * a + rng.random(n) * (b * b - a * a))
    if kind == "lognormal":
        # x times a lognormal(mu, s) density is a lognormal(mu + s^2, s) one
        mu, s = math.log(float(sampler.median)), float(sampler.sigma)  # type: ignore[attr-defined]
        return rng.lognormal(mu + s * s, s, n)
    xs = np.asarray(sampler.sample(rng, n * candidates), dtype=float).reshape(n, candidates)
    totals = xs.sum(axis=1)
    cum = np.cumsum(xs, axis=1)
    picks = (cum < (rng.random(n) * totals)[:, None]).sum(axis=1)
    out = xs[np.arange(n), np.minimum(picks, candidates - 1)]
    return np.where(totals > 0, out, 0.0)
