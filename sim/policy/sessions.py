"""Browsing sessions: people arrive, send requests in a burst, and leave.

In place of Poisson requests for the whole run, a client alternates sessions
and gaps (docs/scenario.md, ``clients[].sessions``). A session holds N
requests, N the draw x of ``requests`` rounded up (at least 1); between two
requests of a session the user thinks for a draw of ``think``; after the last
one the client is away for a draw of ``gap`` before the next session's first
request. One cycle (a session and the gap after it) lasts (N - 1) thinks plus
one gap and holds N requests, so by the renewal-reward theorem the long-run
request rate is E[N] / ((E[N] - 1) E[think] + E[gap]).

A run starts at a random moment of this cycle. That moment falls in a gap
with probability E[gap] / E[cycle], and in a think otherwise; the interval
that covers it is length-biased and the moment uniform in it. In a think, the
session around it is biased by its number of thinks (N - 1) and the think is
any of its N - 1 with equal chance, which fixes how many requests are left.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator

import numpy as np

from sim.policy.sampling import Sampler, length_biased

__all__ = ["Sessions", "expected_count", "session_requests"]

# Plain draws behind a count's mean when it has no closed form, and behind the
# biased session length at the start of a run (both [choice]: the error is
# O(1/sqrt(n)) and O(1/candidates); docs/scenario.md, "clients[].sessions").
MEAN_DRAWS = 1 << 18
CANDIDATES = 64


def counts(x: np.ndarray) -> np.ndarray:
    """Requests in sessions whose ``requests`` draws are ``x``: x rounded up, at least 1."""
    return np.maximum(1, np.ceil(np.asarray(x, dtype=float) - 1e-9)).astype(np.int64)


def expected_count(requests: Sampler) -> float:
    """E[N] for N = max(1, ceil(X)), X drawn from ``requests``.

    Exact for a constant c (ceil c) and an exponential of mean m (N is then
    geometric: P(N > n) = e^(-n/m), so E[N] = 1 / (1 - e^(-1/m))); otherwise the
    mean of ``MEAN_DRAWS`` draws from a fixed seed (the same on every call).
    """
    kind = getattr(requests, "kind", type(requests).__name__.lower())
    if kind in ("constant",):
        return float(counts(np.array([requests.mean]))[0])
    if kind in ("exp", "exponential"):
        return 1.0 / -math.expm1(-1.0 / float(requests.mean))
    draws = requests.sample(np.random.default_rng(0), MEAN_DRAWS)
    return float(counts(draws).mean())


class Sessions:
    """Session length in requests, think time between them, gap between sessions."""

    __slots__ = ("gap", "mean_requests", "requests", "think")

    def __init__(self, requests: Sampler, think: Sampler, gap: Sampler) -> None:
        for name, d in (("requests", requests), ("think", think), ("gap", gap)):
            if not (hasattr(d, "sample") and hasattr(d, "mean")):
                raise ValueError(f"{name} must be a sampler (sample(rng, n) and mean), got {d!r}")
        if not float(gap.mean) > 0:
            raise ValueError("the gap between sessions must have a mean above 0 s")
        self.requests, self.think, self.gap = requests, think, gap
        self.mean_requests = expected_count(requests)

    @property
    def cycle(self) -> float:
        """Mean seconds from one session's first request to the next session's."""
        return (self.mean_requests - 1.0) * float(self.think.mean) + float(self.gap.mean)

    @property
    def rate(self) -> float:
        """Long-run requests per second of one client (renewal-reward)."""
        return self.mean_requests / self.cycle

    def session_length(self, rng: np.random.Generator) -> int:
        """Requests in a new session."""
        return int(counts(self.requests.sample(rng, 1))[0])

    def think_time(self, rng: np.random.Generator) -> float:
        return float(self.think.sample(rng, 1)[0])

    def gap_time(self, rng: np.random.Generator) -> float:
        return float(self.gap.sample(rng, 1)[0])

    def start(self, rng: np.random.Generator) -> tuple[float, int]:
        """Where a client is at a random moment: (seconds to its next request, requests
        left in its session after that one; -1 when the next request opens a session)."""
        thinking = (self.mean_requests - 1.0) * float(self.think.mean)
        if rng.random() * self.cycle >= thinking:
            return float(rng.random() * length_biased(self.gap, rng, 1)[0]), -1
        wait = float(rng.random() * length_biased(self.think, rng, 1)[0])
        # The session around a random think: N with weight N - 1 (resampled), then
        # which of its N - 1 thinks, uniformly; requests k + 1 .. N are still to come.
        n = counts(self.requests.sample(rng, CANDIDATES)).astype(float)
        weights = n - 1.0
        total = weights.sum()
        if total <= 0:  # every candidate a one-request session: treat as in a gap
            return wait, -1
        size = int(n[min(int(np.searchsorted(np.cumsum(weights), rng.random() * total, side="right")), CANDIDATES - 1)])
        k = int(rng.integers(1, size))  # the think between request k and k + 1
        return wait, size - k - 1

    def __repr__(self) -> str:
        return f"Sessions(requests={self.requests!r}, think={self.think!r}, gap={self.gap!r})"


def session_requests(sessions: Sessions, members: int, rng: np.random.Generator, end: float,
                     factor: Callable[[float], float] = lambda t: 1.0) -> Iterator[tuple[float, int]]:
    """The requests of a cohort's `members` clients with `sessions`, in time order, as
    (time, member), drawn from the cohort's one stream `rng` as the model's events draw
    it (sim.model.lifecycle): each member's start in member order, then request by
    request in time order (ties in the order they were scheduled, as SimPy takes them):
    a session's length where one opens, the thinning coin when `factor` at that time is
    under 1 (the request kept with that share), the think time or the gap after it.
    Requests at `end` or later are not made."""
    queue = []
    for i in range(members):
        wait, left = sessions.start(rng)
        queue.append((wait, i, i, left))
    heapq.heapify(queue)
    scheduled = members
    while queue and queue[0][0] < end:
        t, _, i, left = heapq.heappop(queue)
        if left < 0:  # this request opens a session: the ones after it are left
            left = sessions.session_length(rng) - 1
        f = factor(t)
        if f >= 1.0 or rng.random() < f:
            yield t, i
        step = sessions.think_time(rng) if left > 0 else sessions.gap_time(rng)
        heapq.heappush(queue, (t + step, scheduled, i, left - 1 if left > 0 else -1))
        scheduled += 1

