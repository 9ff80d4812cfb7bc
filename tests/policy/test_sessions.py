"""sim.policy.sessions: session counts, the implied rate, and where a run starts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policy.sampling import Constant, Exponential
from sim.policy.sessions import Sessions, counts, expected_count
from tests.policy.conftest import UniformNoBias

Z = 4.5


def test_counts_round_up_and_are_at_least_one() -> None:
    assert list(counts(np.array([0.0, 0.2, 1.0, 1.5, 3.0]))) == [1, 1, 1, 2, 3]


@pytest.mark.parametrize("requests", [Constant(2.5), Exponential(4.0), UniformNoBias(0.0, 6.0)])
def test_expected_count_is_the_mean_of_the_counts(requests: object, rng: np.random.Generator) -> None:
    draws = counts(requests.sample(rng, 400_000))  # type: ignore[attr-defined]
    assert abs(expected_count(requests) - draws.mean()) <= Z * draws.std() / math.sqrt(draws.size) + 1e-3  # type: ignore[arg-type]


def test_the_rate_is_renewal_reward() -> None:
    s = Sessions(Constant(3.0), Constant(20.0), Exponential(120.0))
    assert s.cycle == 2 * 20.0 + 120.0
    assert s.rate == 3 / 160.0


def test_a_random_moment_is_in_a_gap_with_its_share_of_the_cycle(rng: np.random.Generator) -> None:
    """P(gap) = E[gap] / E[cycle]; in a gap the wait is the equilibrium residual (exponential:
    the same exponential); in a think of a 3-request session, 0 or 1 requests follow the next."""
    s = Sessions(Constant(3.0), Exponential(20.0), Exponential(120.0))
    starts = [s.start(rng) for _ in range(40_000)]
    waits = np.array([w for w, _ in starts])
    left = np.array([k for _, k in starts])
    p_gap = 120.0 / 160.0
    assert abs(np.mean(left == -1) - p_gap) <= Z * math.sqrt(p_gap * (1 - p_gap) / len(left))
    assert set(left.tolist()) == {-1, 0, 1}
    assert abs(np.mean(left == 0) - np.mean(left == 1)) <= Z * math.sqrt(0.25 / len(left))  # either think, equally
    gap_waits = waits[left == -1]
    assert abs(gap_waits.mean() - 120.0) <= Z * 120.0 / math.sqrt(gap_waits.size)


def test_one_request_sessions_never_think(rng: np.random.Generator) -> None:
    s = Sessions(Constant(1.0), Constant(5.0), Constant(60.0))
    assert s.rate == 1 / 60.0
    assert all(k == -1 for _, k in (s.start(rng) for _ in range(200)))


def test_a_gap_of_zero_mean_is_refused() -> None:
    with pytest.raises(ValueError, match="gap"):
        Sessions(Constant(2.0), Constant(1.0), Constant(0.0))
