"""sim.policy.sessions: session counts, the implied rate, and where a run starts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.policy.sampling import Constant, Exponential
from sim.policy.sessions import Sessions, counts, expected_count, session_requests
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


def test_session_requests_come_in_time_order_at_the_rate_the_sessions_imply() -> None:
    """From a random moment of steady state the expected count over T is members * rate * T
    (renewal-reward, stationary start); over 60 independent cohorts, within 4 standard errors.
    A factor of 1/2 keeps half of them (a binomial thinning)."""
    sessions = Sessions(Exponential(4.0), Exponential(5.0), Exponential(60.0))
    members, end = 20, 300.0
    totals, halves = [], []
    for k in range(60):
        got = list(session_requests(sessions, members, np.random.default_rng(k), end))
        times = [t for t, _ in got]
        assert times == sorted(times) and all(0 <= t < end for t in times)
        assert {i for _, i in got} <= set(range(members))
        totals.append(len(got))
        halves.append(len(list(session_requests(sessions, members, np.random.default_rng(k), end, lambda t: 0.5))))
    expected = members * sessions.rate * end
    se = np.std(totals, ddof=1) / math.sqrt(len(totals))
    assert abs(np.mean(totals) - expected) <= 4 * se, (np.mean(totals), expected, se)
    se = np.std(halves, ddof=1) / math.sqrt(len(halves))
    assert abs(np.mean(halves) - expected / 2) <= 4 * se, (np.mean(halves), expected / 2, se)
