"""Shared helpers for the policy tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class FakeHost:
    name: str
    healthy: bool = True
    draining: bool = False
    outstanding: int = 0


class UniformNoBias:
    """Uniform on [a, b] without a ``length_biased`` method: forces the resampling path."""

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b

    @property
    def mean(self) -> float:
        return (self.a + self.b) / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.a, self.b, n)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)
