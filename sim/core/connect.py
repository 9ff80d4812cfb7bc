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
from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from sim.core.config import Config
from sim.core.metrics import Metrics
from sim.core.pool import Backend, BackendPool, Clock

__all__ = ["Downstream", "Listener"]

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
        self.max_connections = config.limits.max_connections
        self.connections: set[C] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._configure(config)

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
        """Count the connection in; False (closed, nothing to undo) when the listener is full."""
        self.transport = transport
        proxy = self.proxy
        m = proxy.metrics
        m.connections_total += 1
        if len(proxy.connections) >= proxy.max_connections:
            m.rejected_connections += 1
            self.closed = True
            return False
        proxy.connections.add(self)
        m.active_connections += 1
        return True

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

    def _connect_failed(self, backend: Backend) -> bool:
        """Count a failed connect against ``backend``; True when this connection was
        waiting for it and now has no backend."""
        proxy = self.proxy
        proxy.metrics.connect_failures += 1
        # a refused or timed-out connect is a failure for outlier detection
        # even when nobody waits for it any more
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
