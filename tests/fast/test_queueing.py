"""sim.fast.queueing against the M/M/C/N birth-death chain solved by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fast.queueing import Queue, erlang_b, mean_in_system


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
