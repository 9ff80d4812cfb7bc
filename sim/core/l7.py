"""The L7 data path: an HTTP/1.1 reverse proxy made of two asyncio Protocols.

:class:`ClientConnection` faces the client, :class:`UpstreamConnection` a
backend; both are thin shells around :class:`~sim.core.http.Parser`. One
request per client connection is in flight at a time (pipelined requests wait
in the parser, in order), so responses can never be reordered or mixed up.

Backpressure: when one side's write buffer passes its high-water mark asyncio
calls ``pause_writing`` on that side's protocol, and we stop reading from the
other side until ``resume_writing``.

Timeouts (docs/core.md, "Timeouts") blame the side an exchange waits on:
the backend's silence counts against it (504, passive health), the
client's ends that client's exchange only. A pooled backend connection is
checked before reuse, so a response it sends out of turn reaches nobody.

Retries: a failed *connect* is retried on another backend for any method
(nothing was sent yet, as HAProxy's ``retries`` do); a request that reached a
backend whose connection then failed before any response byte went to the
client is retried only when it is idempotent and has no body.
"""

from __future__ import annotations

import asyncio
import itertools
import select
from typing import TYPE_CHECKING, Any

from sim.core.config import Config
from sim.core.connect import Downstream, Listener
from sim.core.http import (
    CLOSE,
    END,
    IDEMPOTENT,
    Head,
    ParseError,
    Parser,
    error_response,
)
from sim.core.pool import Backend

if TYPE_CHECKING:
    from sim.core.events import AccessLog

__all__ = ["ClientConnection", "HttpProxy", "UpstreamConnection"]

# what the connection's one timer is waiting for
_IDLE = 1  # a request's first byte: a new connection's, or the next on a kept-alive one
_HEADER = 2  # the rest of a request head (slowloris)
_EXCHANGE = 3  # an exchange with a backend: whichever side it waits on

# reasons the client's reading is paused (bits)
_UP_FULL = 1  # the upstream's write buffer is over its high-water mark
_AHEAD = 2  # the client sent too much ahead (pipelined requests, body before connect)

_CONN_IDS = itertools.count(1)  # the access log's connection ids, unique in the process


class HttpProxy(Listener["ClientConnection"]):
    """One L7 listener: the shared listener state, and the HTTP limits and timeouts."""

    __slots__ = (
        "max_head",
        "max_headers",
        "header_timeout",
        "server_timeout",
        "client_timeout",
        "exchange_timeout",
        "access_log",
    )

    def _configure(self, config: Config) -> None:
        lim, t = config.limits, config.timeouts
        self.max_head = lim.max_header_bytes
        self.max_headers = lim.max_headers
        self.header_timeout = t.http_request
        self.server_timeout = t.server
        self.access_log: AccessLog | None = None  # set by the balancer (log.access)
        self.client_timeout = t.client
        # an exchange's first deadline, for whichever side it waits on (read per request)
        self.exchange_timeout = min(t.server, t.client)
        self.idle_timeout = t.keep_alive

    def __call__(self) -> ClientConnection:
        return ClientConnection(self)

    def upstream_protocol(self, backend: Backend, client: ClientConnection) -> UpstreamConnection:
        return UpstreamConnection(self, backend)


class UpstreamConnection(asyncio.Protocol):
    """A connection to a backend, owned by one client connection at a time or idle in the pool."""

    __slots__ = (
        "proxy",
        "backend",
        "transport",
        "parser",
        "client",
        "idle_since",
        "closed",
        "last",
        "poller",
    )

    def __init__(self, proxy: HttpProxy, backend: Backend) -> None:
        self.proxy = proxy
        self.backend = backend
        self.transport: Any = None
        self.parser = Parser(response=True, max_head=proxy.max_head, max_headers=proxy.max_headers)
        self.client: ClientConnection | None = None
        self.idle_since = 0.0
        self.closed = False
        self.last = 0.0
        # the socket registered once, for the check before reuse: a poll
        # object made and filled per check cost as much again as the poll
        self.poller: Any = None

    @property
    def usable(self) -> bool:
        """Fit to carry a new request: open, and nothing waiting to be read.

        A pooled connection the backend wrote to (an extra response, its
        close) is out of step, but the event loop may not have read that yet
        when another client's request takes the connection in the same turn:
        ask the kernel (one poll, no read) so it is never handed out.
        """
        if self.closed or self.transport.is_closing():
            return False
        poller = self.poller
        return poller is None or not poller.poll(0)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # (a closed connection is never polled: `closed` and is_closing()
            # come first, so the descriptor's number being reused is harmless)
            self.poller = select.poll()
            self.poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            # a backend talking on an idle connection is out of step: drop it
            self.close()
            return
        self.last = now = self.proxy.clock.time()
        try:
            events = self.parser.feed(data)
        except ParseError as e:
            client._upstream_failed(self, 502, e.reason)
            return
        client._on_response(events, now)

    def eof_received(self) -> bool:
        client = self.client
        if client is not None:
            try:
                events = self.parser.feed_eof()
            except ParseError as e:
                client._upstream_failed(self, 502, e.reason)
                return False
            if events:
                client._on_response(events, self.proxy.clock.time())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        client = self.client
        if client is not None:
            client._upstream_failed(self, 502, "backend closed the connection")
        else:
            self.proxy.pool.forget_idle(self.backend, self)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.last = self.proxy.clock.time()
            self.client._pause(_UP_FULL)

    def resume_writing(self) -> None:
        if self.client is not None:
            # the backend took what we had for it: activity, for `timeouts.server`
            self.last = self.proxy.clock.time()
            self.client._resume(_UP_FULL)


class ClientConnection(Downstream["HttpProxy"]):
    """One client connection: parse a request, forward it, relay the response, repeat."""

    __slots__ = (
        "proxy",
        "transport",
        "peer",
        "parser",
        "head",
        "upstream",
        "backend",
        "tried",
        "timer",
        "timer_at",
        "kind",
        "deadline",
        "close_after",
        "started_at",
        "request_done",
        "response_started",
        "response_head",
        "pending",
        "pending_bytes",
        "retriable",
        "request_bytes",
        "paused",
        "write_paused",
        "closed",
        "last_status",
        # the access log (issue 22): which connection, which request on it, bytes sent
        "conn_id",
        "peer_port",
        "requests_seen",
        "sent",
        "first_byte_at",
        "last_in",
        # HAProxy's timers for the httplog access log: the request's first byte,
        # the backend chosen, the upstream connection in hand
        "begun_at",
        "dispatched_at",
        "attached_at",
    )

    def __init__(self, proxy: HttpProxy) -> None:
        self.proxy = proxy
        self.transport: Any = None
        self.peer = b""
        self.parser = Parser(False, proxy.max_head, proxy.max_headers)
        self.head: Head | None = None
        self.upstream: UpstreamConnection | None = None
        self.backend: Backend | None = None
        self.tried: tuple[Backend, ...] = ()
        self.timer: Any = None
        self.timer_at = 0.0
        self.kind = 0
        self.deadline = 0.0
        self.close_after = False
        self.started_at = 0.0
        self.request_done = False
        self.response_started = False
        self.response_head: Head | None = None
        self.pending: list[Any] = []
        self.pending_bytes = 0
        self.retriable = False
        self.request_bytes = b""
        self.paused = 0
        self.write_paused = False
        self.closed = False
        self.last_status = 0
        self.conn_id = next(_CONN_IDS)
        self.peer_port = 0
        self.requests_seen = 0
        self.sent = 0
        self.first_byte_at = 0.0
        # the client's last sign of life: a read from it, or it taking our writes
        self.last_in = 0.0
        self.begun_at = 0.0
        self.dispatched_at = 0.0
        self.attached_at = 0.0

    # -- timers ---------------------------------------------------------------

    def _set(self, kind: int, delay: float, now: float) -> None:
        """Wait for ``kind`` until ``delay`` after ``now`` (the clock's time).

        One timer per connection, moved lazily: a later deadline only updates
        two attributes and the timer, when it fires early, sleeps again for
        the rest. So a kept-alive request costs no timer operations at all,
        where arming and cancelling a timer per phase would cost three.
        """
        clock = self.proxy.clock
        when = now + delay
        self.kind = kind
        self.deadline = when
        timer = self.timer
        if timer is None or self.timer_at > when:
            if timer is not None:
                timer.cancel()
            self.timer = clock.call_later(delay, self._tick)
            self.timer_at = when

    def _disarm(self) -> None:
        self.kind = 0

    def _cancel_timer(self) -> None:
        self.kind = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _tick(self) -> None:
        self.timer = None
        kind = self.kind
        if not kind or self.closed:
            return
        clock = self.proxy.clock
        left = self.deadline - clock.time()
        if left > 0.0005:
            self.timer = clock.call_later(left, self._tick)
            self.timer_at = self.deadline
            return
        self.kind = 0
        if kind == _IDLE:
            self._on_idle_timeout()
        elif kind == _HEADER:
            self._on_header_timeout()
        else:
            self._on_exchange_timeout()

    def idle(self) -> bool:
        # silent since the accept, or between requests: nothing to lose
        return self.kind == _IDLE and self.head is None and not self.parser.started

    def shed(self) -> None:
        self._cancel_timer()
        super().shed()

    def _on_idle_timeout(self) -> None:
        if self.head is None and not self.parser.started:
            self.transport.close()

    def _on_header_timeout(self) -> None:
        if self.head is None:
            self._reject(408, "request head not received in time")

    def _on_exchange_timeout(self) -> None:
        """Blame the side the exchange waits on, when it has been silent too long.

        HAProxy's `timeout server` applies "when the server is expected to
        acknowledge or send data", `timeout client` when the client is: the
        backend is waited on once the request is all sent and the client reads
        (or while the backend does not take the body it is sent); the client
        while its body is due and the backend takes it, or while it does not
        read. Only the backend's silence counts against it (passive health);
        the client's ends that client's exchange and nothing else.
        """
        up = self.upstream
        if up is None:
            return
        proxy = self.proxy
        now = proxy.clock.time()
        backend_full = self.paused & _UP_FULL
        left = proxy.server_timeout + proxy.client_timeout
        if backend_full or (self.request_done and not self.write_paused):
            server_left = up.last + proxy.server_timeout - now
            if server_left <= 0.0005:
                self._upstream_failed(up, 504, "backend did not answer in time")
                return
            left = server_left
        if self.write_paused or (not self.request_done and not backend_full):
            client_left = self.last_in + proxy.client_timeout - now
            if client_left <= 0.0005:
                self._client_timed_out()
                return
            left = min(left, client_left)
        self._set(_EXCHANGE, left, now)

    def _client_timed_out(self) -> None:
        """The client stalled its own exchange: cut it; the backend is not at fault."""
        proxy = self.proxy
        started = self.response_started
        # counted and logged as every exchange's end is (the access log sees it too)
        self._finish("client_timeout", None if started else 408, proxy.clock.time() - self.started_at)
        self._abandon()
        self.head = None
        if started:
            self._cancel_timer()
            self.transport.abort()
            return
        reply = error_response(408, close=True, detail="client too slow")
        self.sent += len(reply)
        self.transport.write(reply)
        self.closed_by_us()

    # -- flow control -----------------------------------------------------------

    def _pause(self, bit: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= bit

    def _resume(self, bit: int) -> None:
        if not self.paused & bit:
            return
        self.paused &= ~bit
        if not self.paused and not self.closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.last_in = self.proxy.clock.time()
        if self.upstream is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.last_in = self.proxy.clock.time()
        if self.upstream is not None:
            self.upstream.transport.resume_reading()

    # -- client side events -------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        if not self._admit(transport):
            transport.write(error_response(503, detail="too many connections"))
            transport.close()
            return
        proxy = self.proxy
        peer = transport.get_extra_info("peername")
        self.peer = peer[0].encode() if peer else b"unknown"
        self.peer_port = peer[1] if peer else 0
        # the first byte moves begun_at; a silent connection logs from here
        self.begun_at = now = proxy.clock.time()
        # HAProxy's `timeout http-request` covers a connection's first request
        # from the accept: a connection that never speaks is closed by then
        self._set(_IDLE, proxy.header_timeout, now)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        parser = self.parser
        first = self.head is None and not parser.started
        # one reading of the clock for all this read starts (HAProxy, too,
        # reads its clock once per pass of its loop)
        self.last_in = now = self.proxy.clock.time()
        if first:
            self.begun_at = now
        try:
            events = parser.feed(data)
        except ParseError as e:
            self._reject(e.status, e.reason)
            return
        if first and parser.in_head:
            # the head did not come whole: the rest must come in time
            # (slowloris); a first request's head is due from the accept
            if self.started_at or self.kind != _IDLE:
                self._set(_HEADER, self.proxy.header_timeout, now)
            else:
                self.kind = _HEADER
        self._process(events, now)
        if len(parser.held) > self.proxy.client_buffer and parser.done and not self.closed:
            self._pause(_AHEAD)

    def eof_received(self) -> bool:
        # A client FIN while its request is in flight counts as gone (nginx's
        # proxy_ignore_client_abort off): the upstream is released at once
        # rather than held until the server timeout. Returning False closes us.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._leave():
            return
        self._cancel_timer()
        self._abandon()
        if self.head is not None:
            proxy = self.proxy
            self._finish("client_closed", None, proxy.clock.time() - self.started_at)
            self.head = None

    def _abandon(self) -> None:
        """Let go of the upstream and the backend of an exchange that will not finish."""
        up = self.upstream
        if up is not None:
            # mid-message (request or response): nothing else can use this upstream
            up.client = None
            up.close()
            self.upstream = None
        if self.backend is not None:
            self.backend.outstanding -= 1
            self.backend = None

    def _process(self, events: list[object], now: float) -> None:
        for ev in events:
            if self.closed or self.transport.is_closing():
                return
            if ev.__class__ is Head:
                self._on_head(ev, now)  # type: ignore[arg-type]
            elif ev is END:
                self.request_done = True
            else:
                self._on_body(ev)

    def _on_head(self, head: Head, now: float) -> None:
        self.kind = 0  # _disarm
        self.head = head
        self.started_at = now
        if not self.begun_at:  # a pipelined request, parsed from what was held
            self.begun_at = self.started_at
        self.dispatched_at = self.attached_at = 0.0
        self.requests_seen += 1
        self.sent = 0
        self.first_byte_at = 0.0
        self.close_after = self.close_after or not head.keep_alive
        # a head without a body is complete already (its END follows in this batch)
        self.request_done = head.framing == 0 or (head.framing == 1 and head.length == 0)
        self.response_started = False
        self.response_head = None
        self.tried = ()
        self.retriable = head.method in IDEMPOTENT and head.framing == 0
        self.request_bytes = self._request_head(head)
        self._dispatch(now)

    def _request_head(self, head: Head) -> bytes:
        xff = head.xff + b", " + self.peer if head.xff else self.peer
        tail = b"\r\nConnection: keep-alive\r\n\r\n" if head.version == b"HTTP/1.0" else b"\r\n\r\n"
        return b"".join((head.forward(True), b"X-Forwarded-For: ", xff, tail))

    def _on_body(self, piece: Any) -> None:
        up = self.upstream
        if up is not None:
            up.transport.write(piece)
            # the backend takes the body as it comes: it is busy, not silent
            up.last = self.last_in
            return
        # not connected yet: hold the bytes (slices of what arrived, not copies)
        self.pending.append(piece)
        self.pending_bytes += len(piece)
        if self.pending_bytes > self.proxy.client_buffer:
            self._pause(_AHEAD)

    # -- choosing and reaching a backend ----------------------------------------------

    def _dispatch(self, now: float) -> None:
        proxy = self.proxy
        pool = proxy.pool
        backend = pool.pick(self.tried)
        if backend is None:
            if self.tried:
                self._gateway_error(self.last_status or 502, "no backend could take the request")
            else:
                self._gateway_error(503, "no backend available")
            return
        self.backend = backend
        backend.outstanding += 1
        backend.requests += 1
        self.tried += (backend,)
        self.dispatched_at = now
        self.attached_at = 0.0
        conn = pool.take_idle(backend)
        if conn is not None:
            self._attach(conn, now)
        else:
            proxy.connect(backend, self)

    def _on_connected(self, conn: UpstreamConnection) -> None:
        if self.closed or self.backend is not conn.backend or self.upstream is not None:
            # nobody waits for it any more; a fresh connection is still worth keeping
            if not self.proxy.pool.put_idle(conn.backend, conn):
                conn.close()
            return
        self._attach(conn, self.proxy.clock.time())

    def _on_connect_failed(self, backend: Backend, why: str) -> None:
        if not self._connect_failed(backend, why):
            return
        self.last_status = 503
        if self._take_retry():
            self._dispatch(self.proxy.clock.time())
        else:
            self._gateway_error(503, f"cannot connect to a backend ({why})")

    def _attach(self, conn: UpstreamConnection, now: float) -> None:
        self.upstream = conn
        conn.client = self
        head = self.head
        assert head is not None
        conn.parser.expect_response_to(head.method)
        conn.last = self.attached_at = now
        t = conn.transport
        if self.write_paused:
            t.pause_reading()
        t.write(self.request_bytes)
        if self.pending:
            for piece in self.pending:
                t.write(piece)
            self.pending.clear()
            self.pending_bytes = 0
            self._resume(_AHEAD)
        self._set(_EXCHANGE, self.proxy.exchange_timeout, now)

    # -- the response ---------------------------------------------------------------------

    def _on_response(self, events: list[object], now: float) -> None:
        # gather what this read produced and hand it over in one call: the
        # head and a small body go out in one writev under uvloop, not two sends
        out: list[Any] = []
        size = 0  # of what `out` holds, counted as it is gathered
        done = False
        for ev in events:
            if ev.__class__ is Head:
                head: Head = ev  # type: ignore[assignment]
                self.response_head = head
                if not head.interim:
                    if head.framing == CLOSE:
                        self.close_after = True  # (before the head is written: it says so)
                    self.response_started = True
                    self.first_byte_at = now
                piece = self._response_head(head)
                out.append(piece)
                size += len(piece)
            elif ev is END:
                head = self.response_head  # type: ignore[assignment]
                if head is not None and head.interim:
                    self._flush(out, size)
                    self.response_head = None
                    up = self.upstream
                    assert up is not None and self.head is not None
                    # (the parser keeps expecting a response to the same
                    # method: a final response held after the 1xx parses right)
                    more = up.parser.next_message()
                    if more:
                        self._on_response(more, now)
                    return
                done = True
            else:
                out.append(ev)
                size += len(ev)  # type: ignore[arg-type]
        self._flush(out, size)
        if done:
            self._response_done(now)

    def _flush(self, out: list[Any], size: int) -> None:
        self.sent += size
        if len(out) == 1:
            self.transport.write(out[0])
        elif out:
            self.transport.writelines(out)

    def _response_head(self, head: Head) -> bytes:
        # always HTTP/1.1 towards the client: we, not the backend, speak to it
        whole = head.forward(False)
        if head.version != b"HTTP/1.1":
            whole = b"HTTP/1.1" + whole[8:]
        if head.interim:
            return whole + b"\r\n"
        if self.close_after:
            return whole + b"Connection: close\r\n\r\n"
        if self.head is not None and self.head.version == b"HTTP/1.0":
            return whole + b"Connection: keep-alive\r\n\r\n"
        return whole + b"\r\n"

    def _response_done(self, now: float) -> None:
        proxy = self.proxy
        pool = proxy.pool
        up = self.upstream
        backend = self.backend
        head = self.response_head
        assert up is not None and backend is not None and head is not None
        self.kind = 0  # _disarm
        self.upstream = None
        self.backend = None
        up.client = None
        if self.write_paused:
            up.transport.resume_reading()
        if self.paused & _UP_FULL:
            self._resume(_UP_FULL)
        if (
            head.keep_alive
            and self.request_done
            and not up.parser.held
            and not up.closed
            and not up.transport.is_closing()
        ):
            up.parser.next_message()
            if not pool.put_idle(backend, up, now):
                up.close()
        else:
            up.close()
        backend.outstanding -= 1
        status = head.status
        if status >= 500:
            pool.report_failure(backend)
            outcome = "backend_5xx"
        else:
            pool.report_success(backend)
            outcome = "ok"
        self._finish(outcome, status, now - self.started_at)
        if self.request_done:
            self._next(now)
        else:
            # the backend answered before the request body ended (an early 413,
            # say): we cannot tell where the next request starts, so we stop here
            self.close_after = True
            self._next(now)

    def _next(self, now: float) -> None:
        """The exchange is over: close, or wait for and start on the next request."""
        self.head = None
        self.response_head = None
        if self.close_after or not self.request_done:
            self.closed_by_us()
            return
        self._set(_IDLE, self.proxy.idle_timeout, now)
        if self.paused & _AHEAD:
            self._resume(_AHEAD)
        try:
            events = self.parser.next_message()
        except ParseError as e:
            self._reject(e.status, e.reason)
            return
        if events:
            if self.head is None:
                self._set(_HEADER, self.proxy.header_timeout, now)
            self._process(events, now)
        elif self.parser.started:
            self._set(_HEADER, self.proxy.header_timeout, now)

    def closed_by_us(self) -> None:
        self._cancel_timer()
        self.transport.close()

    # -- failures ----------------------------------------------------------------------------

    def _upstream_failed(self, conn: UpstreamConnection, status: int, why: str) -> None:
        if conn is not self.upstream:
            return
        proxy = self.proxy
        backend = self.backend
        self._disarm()
        conn.client = None
        conn.close()
        self.upstream = None
        self._resume(_UP_FULL)
        if backend is not None:
            backend.outstanding -= 1
            proxy.pool.report_failure(backend)
            self.backend = None
        self.last_status = status
        if self.response_started:
            # part of the response is with the client already: all we can do
            # honestly is cut the connection so it sees a truncated message
            status_sent = self.response_head.status if self.response_head else None
            self._finish(f"{status}_midstream", status_sent, proxy.clock.time() - self.started_at)
            self.head = None
            self.transport.abort()
            return
        self.response_head = None
        if status == 502 and self.retriable and self.request_done and self._take_retry():
            self._dispatch(proxy.clock.time())
            return
        self._gateway_error(status, why)

    def _gateway_error(self, status: int, why: str) -> None:
        proxy = self.proxy
        close = self.close_after or not self.request_done
        reply = error_response(status, close=close, detail=why)
        self.sent += len(reply)
        self.transport.write(reply)
        now = proxy.clock.time()
        self._finish(str(status), status, now - self.started_at)
        self.request_done = self.request_done and not close
        self.close_after = close
        self._next(now)

    def _reject(self, status: int, why: str) -> None:
        """Refuse what the client sent; nothing of it was or will be forwarded."""
        if self.head is None:
            self.requests_seen += 1  # a request that never got a head still counts
            self.sent = 0
        self._disarm()
        if self.upstream is not None or self.backend is not None:
            # a bad chunk in a request body already being forwarded
            self._abandon()
            if self.response_started:
                self._finish(str(status), status, 0.0)
                self.transport.abort()
                return
        reply = error_response(status, close=True, detail=why)
        self.sent += len(reply)
        self._finish(str(status), status, 0.0)
        self.transport.write(reply)
        self.head = None
        self.transport.close()

    def _finish(self, outcome: str, status: int | None, seconds: float) -> None:
        """An exchange ended: count it, and log it when the access log is on."""
        proxy = self.proxy
        proxy.metrics.observe(outcome, seconds)
        if proxy.access_log is not None:
            proxy.access_log.request(self, outcome, status, seconds)
        self.begun_at = 0.0  # the next request's first byte sets it
