"""What a client does besides its requests: browsing sessions, and process restarts.

`Lifecycle` is one part of sim.model.engine.Replication, beside Building,
Requests and Control. Both mechanisms are per client and rare next to
requests, so each is a chain of callbacks on timeout events (`later`), one
event per session request or restart, with no process per client.

Random numbers: a cohort with sessions draws them from its own arrival stream
(in place of the Poisson arrivals it would draw there); restarts from a
generator seeded by the cohort's arrival seed and 1, so a cohort's restarts
do not move any draw of a scenario without them (sim.replication.DRAWS).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model.clients import Client, Cohort
from sim.policy.restarts import Restarts
from sim.policy.sessions import Sessions


class Lifecycle:
    """Sessions in place of Poisson arrivals, and restarts that clear a client's state."""

    env: simpy.Environment
    thinning: dict[int, float]
    later: Callable[[float, Callable[[Timeout], None], object], None]
    _issue: Callable[[Client], None]

    def _start_sessions(self, cohort: Cohort, members: list[Client], rng: np.random.Generator) -> None:
        """Each member where a random moment of its session cycle finds it
        (sim.policy.sessions.Sessions.start), then request by request."""
        sessions = cohort.sessions
        assert sessions is not None
        for client in members:
            wait, left = sessions.start(rng)
            self.later(wait, self._session_request, (client, left, sessions, rng))

    def _session_request(self, event: Timeout) -> None:
        client, left, sessions, rng = event.value
        if left < 0:  # this request opens a session: the ones after it are left
            left = sessions.session_length(rng) - 1
        factor = self.thinning.get(client.cohort.index, 1.0)
        # A traffic factor keeps each request with its share, as for Poisson arrivals.
        if factor >= 1.0 or rng.random() < factor:
            self._issue(client)
        if left > 0:
            self.later(sessions.think_time(rng), self._session_request, (client, left - 1, sessions, rng))
        else:
            self.later(sessions.gap_time(rng), self._session_request, (client, -1, sessions, rng))

    def _start_restarts(self, cohort: Cohort, members: list[Client], rng: np.random.Generator) -> None:
        """Restarts from a random moment of each member's restart cycle: what the last
        one undid before time 0, and when the next comes (sim.policy.restarts)."""
        restarts = cohort.restarts
        assert restarts is not None
        since, until, last_request = restart_start(cohort, len(members), rng)
        for client, age, wait, idle in zip(members, since.tolist(), until.tolist(), last_request.tolist(), strict=True):
            undo_before_start(client, age, idle)
            self.later(wait, self._restart, (client, restarts, rng))

    def _restart(self, event: Timeout) -> None:
        client, restarts, rng = event.value
        restart(client)
        self.later(float(restarts.gaps(rng, 1)[0]), self._restart, (client, restarts, rng))


def restart(client: Client) -> None:
    """The process restarted: its stub cache and its connections are gone."""
    client.stub_value, client.stub_expires = None, -np.inf
    client.conn = None


def restart_start(cohort: Cohort, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first draws of a cohort's restart stream, for its `n` members at time 0:
    (seconds since the last restart, seconds to the next, seconds since the last request)."""
    assert cohort.restarts is not None
    since, until = cohort.restarts.equilibrium(rng, n)
    # Time since each client's last request, Poisson at the cohort's mean rate (as
    # priming assumes): a stub that keeps its answer for ever holds one only if a
    # request came after the last restart.
    last_request = rng.exponential(1.0 / cohort.rate, n) if cohort.rate > 0 else np.full(n, np.inf)
    return since, until, last_request


def undo_before_start(client: Client, age: float, idle: float) -> None:
    """What the restart `age` seconds before time 0 undid of a client's primed state, its
    last request `idle` seconds before time 0."""
    if client.cohort.stub.kind == "forever" and idle >= age:
        client.stub_value, client.stub_expires = None, -np.inf
    if client.conn is not None:
        if -client.conn_last >= age:
            client.conn = None  # closed by the restart, no request since
        else:
            client.conn_opened = max(client.conn_opened, -age)


def restart_times(restarts: Restarts, first: np.ndarray, rng: np.random.Generator, end: float) -> list[list[float]]:
    """Every member's restarts before `end`, as the model's events draw them: the
    members' restarts in time order (ties in the order they were scheduled, as SimPy
    takes them), each drawing the gap to its next from the cohort's one stream. The
    lab replays them (sim.model.trace)."""
    out: list[list[float]] = [[] for _ in first]
    queue = [(float(t), i, i) for i, t in enumerate(first.tolist())]
    heapq.heapify(queue)
    scheduled = len(queue)
    while queue and queue[0][0] < end:
        t, _, i = heapq.heappop(queue)
        out[i].append(t)
        heapq.heappush(queue, (t + float(restarts.gaps(rng, 1)[0]), scheduled, i))
        scheduled += 1
    return out


def restart_rng(arrival_seed: int) -> np.random.Generator:
    """A cohort's restart stream: its own, so restarts move no other draw."""
    return np.random.default_rng([arrival_seed, 1])


__all__ = ["Lifecycle", "Restarts", "Sessions", "restart", "restart_rng", "restart_start", "restart_times",
           "undo_before_start"]
