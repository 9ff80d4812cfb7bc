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
        n = len(members)
        since, until = restarts.equilibrium(rng, n)
        # Time since each client's last request, Poisson at the cohort's mean rate (as
        # priming assumes): a stub that keeps its answer for ever holds one only if a
        # request came after the last restart.
        last_request = rng.exponential(1.0 / cohort.rate, n) if cohort.rate > 0 else np.full(n, np.inf)
        forever = cohort.stub.kind == "forever"
        for client, age, wait, idle in zip(members, since.tolist(), until.tolist(), last_request.tolist(), strict=True):
            if forever and idle >= age:
                client.stub_value, client.stub_expires = None, -np.inf
            if client.conn is not None:
                if -client.conn_last >= age:
                    client.conn = None  # closed by the restart, no request since
                else:
                    client.conn_opened = max(client.conn_opened, -age)
            self.later(wait, self._restart, (client, restarts, rng))

    def _restart(self, event: Timeout) -> None:
        client, restarts, rng = event.value
        restart(client)
        self.later(float(restarts.gaps(rng, 1)[0]), self._restart, (client, restarts, rng))


def restart(client: Client) -> None:
    """The process restarted: its stub cache and its connections are gone."""
    client.stub_value, client.stub_expires = None, -np.inf
    client.conn = None


def restart_rng(arrival_seed: int) -> np.random.Generator:
    """A cohort's restart stream: its own, so restarts move no other draw."""
    return np.random.default_rng([arrival_seed, 1])


__all__ = ["Lifecycle", "Restarts", "Sessions", "restart", "restart_rng"]
