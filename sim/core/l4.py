"""The L4 data path: a TCP relay made of two asyncio Protocols.

Each accepted connection gets one backend, picked by the pool's policy; a
failed connect is retried on another backend (nothing has been relayed yet,
so any byte stream may be retried). Bytes are written on as they arrive, with
reading paused on one side while the other side's write buffer is full.
Half-close is passed through (``write_eof``), so protocols that shut down
their sending side first still get their answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sim.core.connect import Downstream, Listener
from sim.core.pool import Backend

__all__ = ["TcpClient", "TcpProxy", "TcpUpstream"]


class TcpProxy(Listener["TcpClient"]):
    __slots__ = ()

    def __call__(self) -> TcpClient:
        return TcpClient(self)

    def upstream_protocol(self, backend: Backend, client: TcpClient) -> TcpUpstream:
        return TcpUpstream(client)


class TcpUpstream(asyncio.Protocol):
    __slots__ = ("client", "transport", "closed")

    def __init__(self, client: TcpClient) -> None:
        self.client = client
        self.transport: Any = None
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        c = self.client
        c.last = c.proxy.clock.time()
        c.transport.write(data)

    def eof_received(self) -> bool:
        return self.client._peer_eof(self.client.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.client._upstream_lost(exc)

    def pause_writing(self) -> None:
        self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        self.client.transport.resume_reading()


class TcpClient(Downstream["TcpProxy"]):
    __slots__ = (
        "proxy",
        "transport",
        "upstream",
        "backend",
        "tried",
        "pending",
        "pending_bytes",
        "client_eof",
        "eofs",
        "timer",
        "last",
        "started_at",
        "closed",
    )

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.transport: Any = None
        self.upstream: TcpUpstream | None = None
        self.backend: Backend | None = None
        self.tried: tuple[Backend, ...] = ()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.client_eof = False
        self.eofs = 0
        self.timer: Any = None
        self.last = 0.0
        self.started_at = 0.0
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        if not self._admit(transport):
            transport.close()
            return
        proxy = self.proxy
        self.started_at = self.last = proxy.clock.time()
        self.timer = proxy.clock.call_later(proxy.idle_timeout, self._on_idle)
        self._dispatch()

    def _on_idle(self) -> None:
        # one timer per connection, pushed back lazily: data paths only stamp `last`
        proxy = self.proxy
        remaining = self.last + proxy.idle_timeout - proxy.clock.time()
        if remaining > 0.001:
            self.timer = proxy.clock.call_later(remaining, self._on_idle)
            return
        self.timer = None
        self.transport.close()

    def _dispatch(self) -> None:
        proxy = self.proxy
        backend = proxy.pool.pick(self.tried)
        if backend is None:
            proxy.metrics.observe("tcp_no_backend", proxy.clock.time() - self.started_at)
            self.transport.close()
            return
        self.backend = backend
        backend.outstanding += 1
        backend.requests += 1
        self.tried += (backend,)
        proxy.connect(backend, self)

    def _on_connect_failed(self, backend: Backend, why: str) -> None:
        if not self._connect_failed(backend, why):
            return
        if self._take_retry():
            self._dispatch()
        else:
            proxy = self.proxy
            proxy.metrics.observe("tcp_failed", proxy.clock.time() - self.started_at)
            self.transport.close()

    def _on_connected(self, up: TcpUpstream) -> None:
        if self.closed:
            up.transport.close()
            return
        self.upstream = up
        if self.backend is not None:
            self.proxy.pool.report_success(self.backend)
        t = up.transport
        for piece in self.pending:
            t.write(piece)
        self.pending.clear()
        if self.pending_bytes > self.proxy.client_buffer:
            self.transport.resume_reading()
        self.pending_bytes = 0
        if self.client_eof and t.can_write_eof():
            t.write_eof()

    def data_received(self, data: bytes) -> None:
        self.last = self.proxy.clock.time()
        up = self.upstream
        if up is not None:
            up.transport.write(data)
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > self.proxy.client_buffer:
            self.transport.pause_reading()

    def _peer_eof(self, other: Any) -> bool:
        # pass a half-close on; close when both directions have ended
        self.eofs += 1
        if self.eofs >= 2:
            return False
        if other.can_write_eof():
            other.write_eof()
            return True
        return False

    def eof_received(self) -> bool:
        up = self.upstream
        if up is None:
            self.client_eof = True
            self.eofs += 1
            return True
        return self._peer_eof(up.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._leave():
            return
        proxy = self.proxy
        if self.timer is not None:
            self.timer.cancel()
        up = self.upstream
        if up is not None and not up.closed:
            up.transport.close()
        if self.backend is not None:
            self.backend.outstanding -= 1
            self.backend = None
            proxy.metrics.observe(
                "tcp_ok" if up is not None else "tcp_client_closed",
                proxy.clock.time() - self.started_at,
            )

    def _upstream_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.transport.close()

    def pause_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.transport.resume_reading()
