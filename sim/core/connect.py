"""Reaching a backend for a client connection: what the L4 relay and the L7 proxy share.

Both hold a client connection against ``limits.max_connections``, open a
connection to the picked backend within ``timeouts.connect``, count a failed
connect against the backend's passive health and then try a backend not
tried yet while ``retries.count`` allows: nothing was sent, so any request
or byte stream may go elsewhere (as HAProxy's ``retries`` do). What differs
stays in l4.py and l7.py: the upstream protocol, what happens once
connected, how a client hears that no backend is left.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from sim.core.config import Config
from sim.core.metrics import Metrics
from sim.core.pool import Backend, BackendPool, Clock

__all__ = [
    "FD_RESERVE",
    "LOCAL_FAILURES",
    "REFUSAL_LOG_INTERVAL",
    "SHED_BATCH",
    "Downstream",
    "Listener",
    "LimitLog",
    "descriptor_budget",
]

log = logging.getLogger("sim.core")

# Descriptors kept out of the client and backend connections' reach: health
# checks, the admin API, log files, and accepting a connection only to refuse
# it. (cli.py asks for 2 x limits.max_connections + this many.)
FD_RESERVE = 64
# Idle connections closed at once to make room, as nginx's
# ngx_drain_connections closes up to 32 keep-alive ones when it runs out.
SHED_BATCH = 32
# One line per this many seconds about refused connections, with their count
# (chosen: a flood must not become a log storm; asyncio itself retries a
# failed accept after 1 s).
REFUSAL_LOG_INTERVAL = 5.0
# errno values that say this process, not the backend, ran out of something
_LOCAL_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
LOCAL_FAILURES = frozenset(errno.errorcode[e] for e in _LOCAL_ERRNOS)


def descriptor_budget(max_connections: int) -> int:
    """Client connections that fit in the open-file limit: each may hold a
    backend connection too, and FD_RESERVE descriptors stay free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, (soft - FD_RESERVE) // 2))


class LimitLog:
    """What the limits made us do (shed, refuse), told once per
    REFUSAL_LOG_INTERVAL with how many times it happened."""

    __slots__ = ("clock", "count", "next_at")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.count = 0
        self.next_at = 0.0

    def note(self, why: str) -> None:
        self.count += 1
        now = self.clock.time()
        if now >= self.next_at:
            log.warning(
                "at the connection limit: %s (%d times since the last such line)", why, self.count
            )
            self.count = 0
            self.next_at = now + REFUSAL_LOG_INTERVAL


C = TypeVar("C", bound="Downstream[Any]")
P = TypeVar("P", bound="Listener[Any]")


class Listener(Generic[C], metaclass=ABCMeta):
    """Shared state of one listener: settings, pool, metrics, clock, connects in flight."""

    __slots__ = (
        "config",
        "pool",
        "metrics",
        "clock",
        "loop",
        "connect",
        "connect_timeout",
        "idle_timeout",
        "retries",
        "client_buffer",
        "max_connections",
        "connections",
        "_tasks",
        "limit_log",
        "_shed_at",
    )

    def __init__(
        self,
        config: Config,
        pool: BackendPool,
        metrics: Metrics,
        clock: Clock,
        loop: asyncio.AbstractEventLoop | None = None,
        connect: Callable[[Backend, C], None] | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.metrics = metrics
        self.clock = clock
        self.loop = loop
        # replaceable so unit tests can hand out upstreams on fake transports
        self.connect: Callable[[Backend, C], None] = connect or self._connect
        self.connect_timeout = config.timeouts.connect
        # L4: silent both ways (`timeouts.tunnel`, else client and server, as
        # HAProxy's TCP mode); L7 replaces it: waiting for the next request
        self.idle_timeout = config.timeouts.relay_idle
        self.retries = config.retries.count
        self.client_buffer = config.limits.client_buffer
        # never more than the open-file limit holds, so the limit is met here,
        # with idle connections shed and a clear refusal, not at accept()
        self.max_connections = descriptor_budget(config.limits.max_connections)
        self.connections: set[C] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.limit_log = LimitLog(clock)
        self._shed_at = -1.0
        if loop is not None and hasattr(loop, "set_exception_handler"):
            self._guard_accepts(loop)
        self._configure(config)

    def _guard_accepts(self, loop: asyncio.AbstractEventLoop) -> None:
        """Turn the plain asyncio loop's report of a failed accept() (EMFILE:
        some other use of descriptors met the limit first) into shedding
        and one line per interval. Left alone, that loop reports every
        failed try, thousands a second, each with a traceback. (uvloop says
        nothing: libuv accepts and closes the connection with a descriptor
        it keeps in reserve.)"""
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            if (
                isinstance(exc, OSError)
                and exc.errno in _LOCAL_ERRNOS
                and str(context.get("message", "")).startswith("socket.accept()")
            ):
                self.shed_idle()
                self.limit_log.note(f"accept() failed ({exc.strerror}), idle connections shed")
                return
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)

    def shed_idle(self) -> int:
        """Close up to SHED_BATCH connections that wait for a request (at most
        once per 100 ms); how many. A plain relay has none to shed."""
        now = self.clock.time()
        if now - self._shed_at < 0.1:
            return 0
        self._shed_at = now
        shed = 0
        for c in list(self.connections):
            if shed >= SHED_BATCH:
                break
            if c.idle():
                c.shed()
                shed += 1
        return shed

    def _configure(self, config: Config) -> None:
        """Read the settings only this kind of listener has (the last step of ``__init__``)."""

    @abstractmethod
    def upstream_protocol(self, backend: Backend, client: C) -> asyncio.Protocol:
        """The protocol of a new connection to ``backend`` for ``client``."""
        raise NotImplementedError

    def _connect(self, backend: Backend, client: C) -> None:
        assert self.loop is not None
        task = self.loop.create_task(self._open(backend, client))
        self._tasks.add(task)
        task.add_done_callback(partial(self._opened, backend, client))

    async def _open(self, backend: Backend, client: C) -> asyncio.Protocol:
        assert self.loop is not None
        async with asyncio.timeout(self.connect_timeout):
            _, proto = await self.loop.create_connection(
                partial(self.upstream_protocol, backend, client), backend.host, backend.port
            )
        return proto

    def _opened(self, backend: Backend, client: C, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            client._on_connect_failed(backend, "cancelled")
            return
        exc = task.exception()
        if exc is not None:
            if isinstance(exc, OSError) and exc.errno in _LOCAL_ERRNOS:
                # out of descriptors (or memory) here: the backend is not at fault
                client._on_connect_failed(backend, errno.errorcode[exc.errno])
            else:
                client._on_connect_failed(backend, type(exc).__name__)
            return
        self.metrics.upstream_connects += 1
        client._on_connected(task.result())

    def close_all(self) -> None:
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        for t in list(self._tasks):
            t.cancel()

    def reset_all(self) -> int:
        """Reset every client connection (RST, nothing flushed); how many.

        For an address that moved to another node: no packet of these
        connections reaches this node any more, and the new holder answers
        the client's next one with a reset (RFC 9293 3.5.2: a segment for
        no connection). Kept open here, they would go on being served,
        which no moved address allows."""
        reset = 0
        for c in list(self.connections):
            if c.transport is not None and not c.transport.is_closing():
                c.transport.abort()
                reset += 1
        for t in list(self._tasks):
            t.cancel()
        return reset


class Downstream(asyncio.Protocol, Generic[P], metaclass=ABCMeta):
    """A client connection relayed to one backend at a time.

    No slots of its own: the subclasses declare them all, in their order,
    and set them in ``__init__``.
    """

    __slots__ = ()

    proxy: P
    transport: Any
    backend: Backend | None
    tried: tuple[Backend, ...]
    closed: bool

    def _admit(self, transport: Any) -> bool:
        """Count the connection in; False (closed, nothing to undo) when the
        listener is full even after shedding idle connections."""
        self.transport = transport
        proxy = self.proxy
        m = proxy.metrics
        m.connections_total += 1
        if len(proxy.connections) >= proxy.max_connections:
            shed = proxy.shed_idle()
            if shed:
                proxy.limit_log.note(f"{shed} idle connections closed for new ones")
            else:
                m.rejected_connections += 1
                proxy.limit_log.note(
                    f"a connection refused, {proxy.max_connections} open"
                    " (limits.max_connections, or what the open-file limit holds)"
                )
                self.closed = True
                return False
        proxy.connections.add(self)
        m.active_connections += 1
        return True

    def idle(self) -> bool:
        """Waiting for a request, nothing in flight: the first to go near the limits."""
        return False

    def shed(self) -> None:
        """Close an idle connection to make room for a new one, counted out at once."""
        self._leave()
        self.transport.close()

    def _leave(self) -> bool:
        """Count the connection out, once; False when it already was, or never was in."""
        if self.closed:
            return False
        self.closed = True
        proxy = self.proxy
        proxy.connections.discard(self)
        proxy.metrics.active_connections -= 1
        return True

    @abstractmethod
    def _on_connected(self, up: Any) -> None:
        """A connect this connection asked for succeeded; it may have moved on since."""
        raise NotImplementedError

    @abstractmethod
    def _on_connect_failed(self, backend: Backend, why: str) -> None:
        """The connect to ``backend`` failed; ``why``: the exception's name, or "cancelled"."""
        raise NotImplementedError

    def _connect_failed(self, backend: Backend, why: str = "") -> bool:
        """Count a failed connect against ``backend`` (unless ``why`` says this
        process ran out of something); True when this connection was
        waiting for it and now has no backend."""
        proxy = self.proxy
        proxy.metrics.connect_failures += 1
        # a refused or timed-out connect is a failure for outlier detection
        # even when nobody waits for it any more
        if why not in LOCAL_FAILURES:
            proxy.pool.report_failure(backend)
        if self.closed or self.backend is not backend:
            return False
        backend.outstanding -= 1
        self.backend = None
        return True

    def _take_retry(self) -> bool:
        """Use one of ``retries.count`` on another backend; False when they are spent."""
        proxy = self.proxy
        if len(self.tried) <= proxy.retries:
            proxy.metrics.retries += 1
            return True
        return False
