"""Reaching a backend, as the L4 relay and the L7 proxy share it (sim.core.connect).

Each test runs against both listeners, on fake transports and a fake clock;
the connect itself goes through a stand-in for the event loop, so a connect
that hangs, fails or is cancelled is a test's choice, not the network's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sim.core.connect import Listener
from sim.core.l4 import TcpProxy, TcpUpstream
from sim.core.l7 import HttpProxy, UpstreamConnection
from sim.core.metrics import Metrics
from sim.core.pool import Backend, BackendPool
from tests.core.fakes import FakeClock, FakeTransport
from tests.core.helpers import get, make_config, run, wait_for

MODES = ["tcp", "http"]


class Rig:
    """A listener whose connects are held by the test, to complete or fail at will."""

    def __init__(self, mode: str, n_backends: int = 3, **over: Any) -> None:
        self.mode = mode
        self.clock = FakeClock()
        self.config = make_config([9001 + i for i in range(n_backends)], mode=mode, **over)
        self.metrics = Metrics()
        self.pool = BackendPool(self.config, self.clock, self.metrics)
        self.connects: list[tuple[Backend, Any]] = []
        kind = TcpProxy if mode == "tcp" else HttpProxy
        self.proxy: Listener[Any] = kind(
            self.config, self.pool, self.metrics, self.clock, connect=self._connect
        )

    def _connect(self, backend: Backend, client: Any) -> None:
        self.connects.append((backend, client))

    def client(self) -> tuple[Any, FakeTransport]:
        """A client connection that wants a backend (L7: it has sent a request)."""
        c = self.proxy()
        t = FakeTransport(c)
        c.connection_made(t)
        if self.mode == "http" and not t.closing:
            c.data_received(get())
        return c, t

    def fail_connect(self, why: str = "ConnectionRefusedError") -> None:
        backend, client = self.connects.pop(0)
        client._on_connect_failed(backend, why)


@pytest.mark.parametrize("mode", MODES)
def test_connect_failures_retry_until_retries_are_spent(mode: str) -> None:
    rig = Rig(mode, retries={"count": 1})
    c, t = rig.client()
    first = rig.connects[0][0]
    rig.fail_connect()
    assert len(rig.connects) == 1 and rig.connects[0][0] is not first  # another backend
    rig.fail_connect()
    assert rig.connects == []  # one retry, no more
    m = rig.metrics
    assert (m.connect_failures, m.retries, m.upstream_connects) == (2, 1, 0)
    # passive health heard of both, and nothing is left counted as in flight
    assert sorted(b.failures for b in rig.pool.backends) == [0, 1, 1]
    assert all(b.outstanding == 0 for b in rig.pool.backends)
    if mode == "tcp":
        assert t.closing and m.outcomes == {"tcp_failed": 1}
    else:
        answer = t.take()
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"cannot connect to a backend (ConnectionRefusedError)" in answer


def test_l7_says_503_when_connect_failures_leave_no_backend() -> None:
    # the retry finds no backend left: the answer is the connect failure's 503
    rig = Rig("http", n_backends=1, retries={"count": 3})
    _, t = rig.client()
    rig.fail_connect()
    assert rig.metrics.retries == 1
    assert t.take().startswith(b"HTTP/1.1 503 Service Unavailable")
    assert rig.metrics.outcomes == {"503": 1}


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_nobody_waits_for_only_counts(mode: str) -> None:
    rig = Rig(mode)
    c, _ = rig.client()
    backend = rig.connects[0][0]
    c.connection_lost(None)
    rig.fail_connect()
    assert rig.connects == [] and rig.metrics.retries == 0
    assert rig.metrics.connect_failures == 1 and backend.failures == 1
    assert backend.outstanding == 0 and rig.metrics.active_connections == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_full_listener_refuses_and_counts_only_what_it_admitted(mode: str) -> None:
    rig = Rig(mode, limits={"max_connections": 1})
    first, _ = rig.client()
    c, t = rig.client()
    assert t.closing and c not in rig.proxy.connections
    if mode == "http":
        assert t.take().startswith(b"HTTP/1.1 503")
    c.connection_lost(None)  # the refused one goes: nothing to count out
    m = rig.metrics
    assert (m.connections_total, m.rejected_connections, m.active_connections) == (2, 1, 1)
    first.connection_lost(None)
    first.connection_lost(None)  # counted out once
    assert m.active_connections == 0 and rig.proxy.connections == set()


class StandInLoop:
    """The event loop's create_task, with a create_connection that hangs or answers."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.answer = False

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        return self.loop.create_task(coro)

    async def create_connection(self, factory: Any, host: str, port: int) -> tuple[Any, Any]:
        if not self.answer:
            await asyncio.sleep(3600)
        proto = factory()
        t = FakeTransport(proto)
        proto.connection_made(t)
        return t, proto


class Waiter:
    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []
        self.transport = None

    def _on_connect_failed(self, backend: Backend, why: str) -> None:
        self.heard.append(("failed", why))

    def _on_connected(self, up: Any) -> None:
        self.heard.append(("connected", up))


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout_cancel_and_success_reach_the_client(mode: str) -> None:
    async def main() -> None:
        rig = Rig(mode, timeouts={"connect": "50ms"})
        loop = StandInLoop(asyncio.get_running_loop())
        kind = TcpProxy if mode == "tcp" else HttpProxy
        proxy = kind(rig.config, rig.pool, rig.metrics, rig.clock, loop)  # type: ignore[arg-type]
        backend = rig.pool.backends[0]
        w = Waiter()

        proxy.connect(backend, w)
        await wait_for(lambda: len(w.heard) == 1)
        assert w.heard[0] == ("failed", "TimeoutError")

        proxy.connect(backend, w)
        await asyncio.sleep(0)
        proxy.close_all()
        await wait_for(lambda: len(w.heard) == 2)
        assert w.heard[1] == ("failed", "cancelled")

        loop.answer = True
        proxy.connect(backend, w)
        await wait_for(lambda: len(w.heard) == 3)
        what, up = w.heard[2]
        assert what == "connected"
        assert isinstance(up, TcpUpstream if mode == "tcp" else UpstreamConnection)
        assert rig.metrics.upstream_connects == 1 and proxy._tasks == set()

    run(main())
