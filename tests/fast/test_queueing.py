"""sim.fast.queueing against the M/M/C/N birth-death chain solved by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fast.queueing import Queue, erlang_b, mean_in_system, smoothed


def _chain(lam: float, mu: float, servers: int, capacity: int) -> np.ndarray:
    p = [1.0]
    for j in range(1, capacity + 1):
        p.append(p[-1] * lam / (min(j, servers) * mu))
    out = np.array(p)
    return out / out.sum()


@pytest.mark.parametrize(
    ("lam", "servers", "room"),
    [
        (10.0, 4, 32),
        (30.0, 4, 32),
        (39.9, 4, 32),
        (40.0, 4, 32),
        (50.0, 4, 32),
        (300.0, 16, 128),
        (5.0, 4, 0),
    ],
)
def test_blocking_waiting_and_mean_wait_are_the_chains(lam: float, servers: int, room: int) -> None:
    mu = 10.0
    a = lam / mu
    q = Queue(
        np.array([servers]),
        np.array([room]),
        np.array([a / servers]),
        erlang_b(np.array([servers]), np.array([a])),
        mu,
    )
    block, wait = q.probabilities()
    pi = _chain(lam, mu, servers, servers + room)
    assert block[0] == pytest.approx(pi[-1], rel=1e-9, abs=1e-15)
    assert wait[0] == pytest.approx(pi[servers:-1].sum(), rel=1e-9, abs=1e-15)
    # An admitted arrival that meets j >= C waits for j - C + 1 departures at rate C mu.
    admitted = pi[:-1] / pi[:-1].sum()
    expected = sum(
        admitted[j] * (j - servers + 1) / (servers * mu) for j in range(servers, servers + room)
    )
    waits = q.waits(np.zeros(400_000, dtype=np.int64), np.random.default_rng(1))
    assert waits.mean() == pytest.approx(expected, rel=0.04, abs=1e-6)  # 4 SE at a 2% wait chance
    assert mean_in_system(servers, room, a) == pytest.approx(
        float((np.arange(len(pi)) * pi).sum()), rel=1e-9
    )


def test_an_overloaded_second_does_not_overflow() -> None:
    # rho = 50 with a long queue: blocking 1 - 1/rho, no inf or nan.
    q = Queue(
        np.array([96]),
        np.array([6 * 256]),
        np.array([50.0]),
        erlang_b(np.array([96]), np.array([4800.0])),
        1.0,
    )
    block, wait = q.probabilities()
    assert block[0] == pytest.approx(1 - 1 / 50.0, rel=1e-6)
    assert np.isfinite(wait[0])


# -- round robin: every n-th arrival of a Poisson stream, E_n/M/C (GI/M/C) ---------------


def _erlang_chain(n: int, servers: int, rho: float, capacity: int) -> np.ndarray:
    """What an arrival finds in E_n/M/C/N (mu = 1), from the chain over (arrival phase, number
    in system) solved by brute force: the law at the moments the last phase ends."""
    rate = n * rho * servers  # the Poisson stream's rate: n phases of it make one interarrival
    size = n * (capacity + 1)
    q = np.zeros((size, size))
    for phase in range(n):
        for j in range(capacity + 1):
            s = phase * (capacity + 1) + j
            nxt = (phase + 1) * (capacity + 1) + j if phase < n - 1 else min(j + 1, capacity)
            q[s, nxt] += rate
            if j:
                q[s, s - 1] += min(j, servers)
    np.fill_diagonal(q, -q.sum(axis=1))
    # pi Q = 0 with one balance equation replaced by the normalisation
    a = q.T.copy()
    a[-1] = 1.0
    b = np.zeros(size)
    b[-1] = 1.0
    pi = np.linalg.solve(a, b)
    seen = pi[(n - 1) * (capacity + 1):]
    return seen / seen.sum()


def test_round_robin_sigma_and_wait_are_e_n_m_1s_closed_form() -> None:
    # E_2/M/1 at rho = 0.5: sigma = (2 - sigma)^-2, whose root in (0, 1) is (3 - sqrt 5) / 2;
    # the mean time in system 1 / (1 - sigma) = 1.618 (docs/references.md), and for one
    # worker P(wait) = sigma, the wait given waiting exponential at mu (1 - sigma).
    sigma, p_wait = smoothed(np.array([1]), np.array([2]), np.array([0.5]))
    assert sigma[0] == pytest.approx((3 - 5**0.5) / 2, rel=1e-10)
    assert p_wait[0] == pytest.approx(sigma[0], rel=1e-10)
    # E_4/M/1 at rho = 0.7 (four single-worker instances at 70% load), served at mu = 10:
    # sampled waits against P(W > t) = sigma exp(-mu (1 - sigma) t).
    sigma, _ = smoothed(np.array([1]), np.array([4]), np.array([0.7]))
    s = float(sigma[0])
    assert s == pytest.approx((1 + (1 - s) / 2.8) ** -4, rel=1e-12)
    mu = 10.0
    q = Queue(np.array([1]), np.array([10_000]), np.array([0.7]), erlang_b(np.array([1]), np.array([0.7])), mu,
              phases=np.array([4]))
    block, wait = q.probabilities()
    assert wait[0] == pytest.approx(s, rel=1e-9)
    assert block[0] < 1e-100
    waits = q.waits(np.zeros(200_000, dtype=np.int64), np.random.default_rng(2))
    for t in (0.0, 0.1, 0.3, 0.6):
        expected = s * np.exp(-mu * (1 - s) * t)
        se = (expected * (1 - expected) / len(waits)) ** 0.5
        assert abs(np.mean(waits > t) - expected) <= 4 * se, t


@pytest.mark.parametrize(("n", "servers", "rho"), [(4, 2, 0.7), (3, 4, 0.8), (6, 4, 0.5), (10, 8, 0.9)])
def test_round_robin_wait_probability_is_the_erlang_chains(n: int, servers: int, rho: float) -> None:
    # Takacs' boundary formula for several workers against the chain with a queue long
    # enough to be infinite; sigma is the ratio of the chain's tail.
    sigma, p_wait = smoothed(np.array([servers]), np.array([n]), np.array([rho]))
    seen = _erlang_chain(n, servers, rho, servers + 150)
    assert p_wait[0] == pytest.approx(seen[servers:].sum(), rel=1e-8)
    assert sigma[0] == pytest.approx(seen[servers + 1] / seen[servers], rel=1e-8)


def test_poisson_arrivals_keep_the_m_m_c_n_law() -> None:
    args = (np.array([2, 2]), np.array([6, 6]), np.array([0.8, 0.8]), erlang_b(np.array([2, 2]), np.array([1.6, 1.6])))
    np.testing.assert_array_equal(Queue(*args, 1.0).probabilities(),
                                  Queue(*args, 1.0, phases=np.array([1, 1])).probabilities())


@pytest.mark.parametrize(("n", "servers", "rho", "room"),
                         [(4, 2, 0.8, 6), (4, 1, 0.7, 4), (4, 1, 0.95, 8), (2, 4, 0.9, 16), (8, 1, 0.9, 3)])
def test_a_short_queue_cuts_the_gi_m_c_law(n: int, servers: int, rho: float, room: int) -> None:
    # With room for few waiting the GI/M/C law cut at N is an approximation (docs/fast.md):
    # against the E_n/M/C/N chain, its blocking is nearer than M/M/C/N's (1.5x the chain's at
    # worst here, against M/M/C/N's 3x) and its waiting probability within 5%.
    args = (np.array([servers]), np.array([room]), np.array([rho]), erlang_b(np.array([servers]), np.array([rho * servers])))
    mm_block, _ = Queue(*args, 1.0).probabilities()
    block, wait = Queue(*args, 1.0, phases=np.array([n])).probabilities()
    seen = _erlang_chain(n, servers, rho, servers + room)
    assert seen[-1] <= block[0] < mm_block[0]
    assert block[0] <= 1.6 * seen[-1]
    assert wait[0] == pytest.approx(seen[servers:-1].sum(), rel=0.05)
