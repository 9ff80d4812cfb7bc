"""Balancing policies, Envoy style: which hosts may be picked is kept apart from
which one is picked.

:func:`eligible` filters; a policy's ``pick`` chooses among what is left. A host is
any object with ``healthy: bool``, ``draining: bool`` and ``outstanding: int``
(requests in flight), so the SimPy model, the numpy engine and the real balancer
pass their own host objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import numpy as np

__all__ = [
    "BALANCING_POLICIES",
    "BalancingPolicy",
    "Host",
    "LeastOutstanding",
    "PowerOfTwoChoices",
    "Random",
    "RoundRobin",
    "eligible",
    "make_balancing_policy",
]


class Host(Protocol):
    healthy: bool
    draining: bool
    outstanding: int


H = TypeVar("H", bound=Host)


def eligible(hosts: Sequence[H]) -> list[H]:
    """Hosts that may take a new request: healthy and not draining."""
    return [h for h in hosts if h.healthy and not h.draining]


def _index(rng: np.random.Generator, n: int) -> int:
    # rng.random() is several times cheaper than rng.integers() per call; the
    # product can round up to n for some n, hence the clamp.
    i = int(rng.random() * n)
    return i if i < n else n - 1


class BalancingPolicy(Protocol):
    name: str

    def pick(self, candidates: Sequence[H], rng: np.random.Generator) -> H: ...


class RoundRobin:
    """Each candidate in turn, from a cursor of its own.

    The cursor counts picks, not hosts, so when the candidate set changes the
    rotation continues at the same position modulo the new size (as HAProxy's
    and Envoy's unweighted round robin do, near enough). HAProxy's default up
    to 3.2 (docs/references.md). ``rng`` is unused.
    """

    __slots__ = ("_cursor",)
    name = "round_robin"

    def __init__(self, start: int = 0) -> None:
        self._cursor = start

    def pick(self, candidates: Sequence[H], rng: np.random.Generator) -> H:
        i = self._cursor
        self._cursor = i + 1
        return candidates[i % len(candidates)]


class Random:
    """A candidate uniformly at random."""

    __slots__ = ()
    name = "random"

    def pick(self, candidates: Sequence[H], rng: np.random.Generator) -> H:
        return candidates[_index(rng, len(candidates))]


class LeastOutstanding:
    """A candidate with the fewest requests in flight; ties broken uniformly at random.

    This is the full scan. Envoy's ``LEAST_REQUEST`` with equal weights is really
    power of two choices (see :class:`PowerOfTwoChoices`).
    """

    __slots__ = ()
    name = "least_outstanding"

    def pick(self, candidates: Sequence[H], rng: np.random.Generator) -> H:
        best = candidates[0]
        low = best.outstanding
        ties = 1
        for h in candidates[1:]:
            o = h.outstanding
            if o < low:
                best, low, ties = h, o, 1
            elif o == low:
                ties += 1
        if ties == 1:
            return best
        k = _index(rng, ties)
        for h in candidates:
            if h.outstanding == low:
                if k == 0:
                    return h
                k -= 1
        raise AssertionError("unreachable: tie count changed during pick")


class PowerOfTwoChoices:
    """Of two candidates drawn at random, the one with fewer requests in flight.

    The two draws are distinct whenever there are at least two candidates (a
    draw without replacement), so a lone busy host is never compared with
    itself. Envoy's least-request policy draws its two hosts *with* replacement
    (docs/references.md); with n hosts that makes the pair the same host with
    probability 1/n, which matters only for small n. Ties go to the first draw,
    which is itself uniform, so no extra randomness is spent. HAProxy's
    ``random(2)`` (its default from 3.3) is the same idea.
    """

    __slots__ = ()
    name = "p2c"

    def pick(self, candidates: Sequence[H], rng: np.random.Generator) -> H:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        i = _index(rng, n)
        j = _index(rng, n - 1)
        if j >= i:
            j += 1
        a = candidates[i]
        b = candidates[j]
        return b if b.outstanding < a.outstanding else a


_POLICIES: dict[str, type] = {
    "round_robin": RoundRobin,
    "random": Random,
    "least_outstanding": LeastOutstanding,
    "p2c": PowerOfTwoChoices,
}
BALANCING_POLICIES: tuple[str, ...] = tuple(_POLICIES)


def make_balancing_policy(name: str) -> RoundRobin | Random | LeastOutstanding | PowerOfTwoChoices:
    """A fresh policy for ``name`` (round_robin | random | least_outstanding | p2c).

    Each call returns a new object, so two balancers never share a round-robin cursor.
    """
    try:
        cls = _POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown balancing policy {name!r}; known: {', '.join(BALANCING_POLICIES)}"
        ) from None
    return cls()
