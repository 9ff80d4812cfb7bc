"""Cohorts, clients and requests: the objects every request touches.

Plain objects with __slots__: they sit on the per-request path. A cohort's
policies (stub cache, retries, connection reuse) come built from the
Deployment (sim.scenario.build.compile).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from sim.model.dns import Resolver
from sim.model.world import Address, Endpoint
from sim.policy.attempts import ConnectionReuse, RetryRule
from sim.policy.cache import CachePolicy
from sim.policy.restarts import Restarts
from sim.policy.sessions import Sessions
from sim.scenario import models as m


class Cohort:
    __slots__ = ("attempts", "fallback", "grace", "index", "keepalive", "name", "next_address", "rate", "restarts",
                 "reuse", "sessions", "stub", "timeout")

    def __init__(self, spec: m.Cohort, stub: CachePolicy, reuse: ConnectionReuse, rule: RetryRule, index: int = 0,
                 restarts: Restarts | None = None, sessions: Sessions | None = None) -> None:
        self.name = spec.name
        self.restarts = restarts  # None: the process never restarts within the run
        self.sessions = sessions  # None: Poisson requests at `rate`
        self.grace = spec.stub_grace  # seconds an expired stub answer is still served (and refreshed)
        self.index = index  # in scenario order: the row of the per-cohort target counts
        self.rate = float(spec.rate or 0.0)  # with sessions, the rate they imply
        self.stub = stub
        self.reuse = reuse
        self.keepalive = spec.keepalive
        self.attempts = rule.attempts
        self.timeout = rule.timeout
        # address_mode next: a failed connect moves on to the answer's next
        # address within the attempt, after fallback_delay for a blackhole
        # (default: the attempt timeout, as python-requests does).
        self.next_address = spec.address_mode == "next"
        delay = spec.fallback_delay if spec.fallback_delay is not None else rule.timeout
        self.fallback = min(delay, rule.timeout)


class Client:
    __slots__ = (
        "addr",
        "cohort",
        "conn",
        "conn_endpoint",
        "conn_last",
        "conn_opened",
        "failed",
        "fault_at",
        "first_fail",
        "id",
        "last_previous_at",
        "recovered",
        "resolver",
        "rotation",
        "stub_expires",
        "stub_value",
        "switched_at",
    )

    def __init__(self, id: int, cohort: Cohort, resolver: Resolver) -> None:
        self.id = id
        self.cohort = cohort
        self.resolver = resolver
        self.stub_value: tuple | None = None
        self.stub_expires = -math.inf
        self.rotation = 0
        self.conn: Address | None = None  # the address of the open connection, if any
        self.conn_endpoint: Endpoint | None = None  # where it led when it was opened
        self.conn_opened = 0.0
        self.conn_last = 0.0
        self.addr: Address | None = None  # the address this client last sent to
        self.first_fail: float | None = None
        self.fault_at = math.nan
        self.recovered: float | None = None
        self.failed = 0
        # After a DNS change or address move: when a request of this client first
        # reached the current target, and when it last sent one to the previous.
        self.switched_at: float | None = None
        self.last_previous_at: float | None = None


class Request:
    __slots__ = ("attempt", "client", "failures", "issued", "started", "tries")

    def __init__(self, client: Client, now: float) -> None:
        self.client = client
        self.issued = now
        self.started = now
        self.attempt = 0
        self.tries = 0  # addresses tried before the current one in this attempt
        self.failures = 0  # tries that failed, over all attempts (rescued if it ends well)


class Draws:
    """Numbers drawn in blocks: one numpy call per thousand uses, not per use."""

    __slots__ = ("_it", "_make")

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self._make = make
        self._it: Iterator[float] = iter(())

    def next(self) -> float:
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self._make().tolist())
            return next(self._it)
