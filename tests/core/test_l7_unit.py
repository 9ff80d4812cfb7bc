"""The L7 protocol classes on fake transports and a fake clock (no sockets, no loop)."""

from __future__ import annotations

from typing import Any

from sim.core.l7 import ClientConnection, HttpProxy, UpstreamConnection
from sim.core.metrics import Metrics
from sim.core.pool import Backend, BackendPool
from tests.core.fakes import FakeClock, FakeTransport
from tests.core.helpers import make_config


class Rig:
    """A proxy whose upstream connects are handed out by the test."""

    def __init__(self, n_backends: int = 2, **over: Any) -> None:
        self.clock = FakeClock()
        self.config = make_config([9001 + i for i in range(n_backends)], **over)
        self.metrics = Metrics()
        self.pool = BackendPool(self.config, self.clock, self.metrics)
        self.connects: list[tuple[Backend, ClientConnection]] = []
        self.proxy = HttpProxy(
            self.config, self.pool, self.metrics, self.clock, connect=self._connect
        )

    def _connect(self, backend: Backend, client: ClientConnection) -> None:
        self.connects.append((backend, client))

    def client(self) -> tuple[ClientConnection, FakeTransport]:
        c = self.proxy()
        t = FakeTransport(c)
        c.connection_made(t)
        return c, t

    def complete_connect(self, i: int = -1) -> tuple[UpstreamConnection, FakeTransport]:
        backend, client = self.connects.pop(i)
        up = UpstreamConnection(self.proxy, backend)
        t = FakeTransport(up, peer=("127.0.0.1", backend.port))
        up.connection_made(t)
        client._on_connected(up)
        return up, t

    def fail_connect(self, i: int = -1) -> None:
        backend, client = self.connects.pop(i)
        client._on_connect_failed(backend, "ConnectionRefusedError")


GET = b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nhi"


def test_forward_request_and_response_with_xff_and_hop_by_hop_removed() -> None:
    rig = Rig()
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    sent = ut.take()
    assert sent.startswith(b"GET /x HTTP/1.1\r\n")
    assert b"X-Forwarded-For: 9.9.9.9, 10.1.2.3\r\n" in sent
    assert b"X-Hop" not in sent and b"Connection" not in sent  # named in Connection: hop-by-hop
    up.data_received(OK)
    out = ct.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nhi")
    assert b"Keep-Alive" not in out
    # the upstream went back to the pool and the client connection stays open
    assert rig.pool.backends[0].idle == [up] and not ct.closing
    assert rig.pool.backends[0].outstanding == 0
    assert rig.metrics.outcomes["ok"] == 1


def test_pooled_upstream_is_reused() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    up.data_received(OK)
    c.data_received(GET)
    assert not rig.connects  # no new connect: the idle one was taken
    assert ut.take().count(b"GET /x") == 2
    up.data_received(OK)
    assert ct.take().count(b"200 OK") == 2


def test_pipelined_requests_one_at_a_time_in_order() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    up, ut = rig.complete_connect()
    first = ut.take()
    assert b"/1" in first and b"/2" not in first  # the second waits for the first's answer
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    assert b"GET /2" in ut.take()
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    out = ct.take()
    assert out.index(b"\r\n\r\na") < out.index(b"\r\n\r\nb")


def test_backpressure_pauses_the_other_side() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
    up, ut = rig.complete_connect()
    up.pause_writing()  # the backend reads slowly
    assert not ct.reading
    up.resume_writing()
    assert ct.reading
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    c.pause_writing()  # the client reads slowly
    assert not ut.reading
    c.resume_writing()
    assert ut.reading


def test_header_timeout_is_408_on_fake_clock() -> None:
    rig = Rig(timeouts={"http_request": "2s"})
    c, ct = rig.client()
    c.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n")  # never finished
    rig.clock.advance(1.9)
    assert not ct.closing
    rig.clock.advance(0.2)
    assert ct.take().startswith(b"HTTP/1.1 408") and ct.closing


def test_idle_client_closed_after_keepalive_timeout() -> None:
    rig = Rig(timeouts={"http_request": "5s"})
    c, ct = rig.client()
    rig.clock.advance(4.9)
    assert not ct.closing
    rig.clock.advance(0.2)
    assert ct.closing and ct.take() == b""


def test_backend_hang_is_504_after_server_timeout() -> None:
    rig = Rig(timeouts={"server": "3s"})
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    rig.clock.advance(3.1)
    assert ct.take().startswith(b"HTTP/1.1 504")
    assert ut.closing and rig.pool.backends[0].outstanding == 0
    assert not ct.closing  # the request was complete: the client may go on


def test_connect_refused_retries_on_another_backend() -> None:
    rig = Rig(n_backends=3)
    c, ct = rig.client()
    c.data_received(GET)
    first = rig.connects[0][0]
    rig.fail_connect()
    assert len(rig.connects) == 1 and rig.connects[0][0] is not first
    up, _ = rig.complete_connect()
    up.data_received(OK)
    assert ct.take().startswith(b"HTTP/1.1 200")
    assert rig.metrics.retries == 1 and first.outstanding == 0


def test_all_connects_fail_gives_503() -> None:
    rig = Rig(n_backends=2, retries={"count": 5})
    c, ct = rig.client()
    c.data_received(GET)
    rig.fail_connect()
    rig.fail_connect()
    assert ct.take().startswith(b"HTTP/1.1 503")
    assert all(b.outstanding == 0 for b in rig.pool.backends)


def test_reset_before_response_retries_get_but_not_post() -> None:
    rig = Rig(n_backends=2)
    c, ct = rig.client()
    c.data_received(GET)
    up, _ = rig.complete_connect()
    up.connection_lost(ConnectionResetError())
    assert len(rig.connects) == 1  # retried elsewhere
    up2, _ = rig.complete_connect()
    up2.data_received(OK)
    assert ct.take().startswith(b"HTTP/1.1 200")

    c2, ct2 = rig.client()
    c2.data_received(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab")
    if rig.connects:
        rig.complete_connect()
    assert c2.upstream is not None
    c2.upstream.connection_lost(ConnectionResetError())
    assert ct2.take().startswith(b"HTTP/1.1 502")  # not idempotent: no retry


def test_reset_mid_response_aborts_client() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(GET)
    up, _ = rig.complete_connect()
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    up.connection_lost(ConnectionResetError())
    assert ct.aborted  # the client sees a truncated message, never a fake success
    assert rig.pool.backends[0].outstanding == 0


def test_client_gone_releases_upstream() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    c.connection_lost(None)
    assert ut.closing and up.client is None
    assert rig.pool.backends[0].outstanding == 0 and rig.metrics.active_connections == 0
    assert rig.metrics.outcomes["client_closed"] == 1
    assert rig.clock.pending == 0  # no timer left behind


def test_client_gone_while_connecting_keeps_the_fresh_connection() -> None:
    rig = Rig(n_backends=1)
    c, _ = rig.client()
    c.data_received(GET)
    c.connection_lost(None)
    up, ut = rig.complete_connect()
    assert rig.pool.backends[0].idle == [up] and not ut.closing
    assert rig.pool.backends[0].outstanding == 0


def test_smuggling_request_never_reaches_a_backend() -> None:
    rig = Rig()
    c, ct = rig.client()
    c.data_received(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"
    )
    assert not rig.connects
    assert ct.take().startswith(b"HTTP/1.1 400") and ct.closing


def test_interim_100_continue_then_final() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    c.data_received(
        b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    up, ut = rig.complete_connect()
    up.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.data_received(b"ok")
    assert ut.take().endswith(b"\r\n\r\nok")
    up.data_received(OK)
    out = ct.take()
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


def test_passive_ejection_after_consecutive_failures() -> None:
    rig = Rig(
        n_backends=2,
        passive={
            "consecutive_failures": 2,
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
    )
    b0 = rig.pool.backends[0]
    rig.pool.report_failure(b0)
    assert b0.healthy
    rig.pool.report_failure(b0)
    assert not b0.healthy and b0.state == "ejected"
    rig.clock.advance(10.1)
    assert b0.healthy
    # a second ejection lasts twice as long (Envoy: base x times ejected)
    rig.pool.report_failure(b0)
    rig.pool.report_failure(b0)
    rig.clock.advance(15)
    assert not b0.healthy
    rig.clock.advance(5.1)
    assert b0.healthy


def test_health_check_state_machine_from_sim_policy() -> None:
    rig = Rig(n_backends=1)
    b = rig.pool.backends[0]
    for ok in (False, False):
        rig.pool.record_probe(b, ok)
        assert b.healthy
    rig.pool.record_probe(b, False)  # fall 3 (HAProxy default)
    assert not b.healthy
    rig.pool.record_probe(b, True)
    assert not b.healthy
    rig.pool.record_probe(b, True)  # rise 2
    assert b.healthy


def test_draining_backend_takes_no_new_requests() -> None:
    rig = Rig(n_backends=2)
    rig.pool.drain("b0")
    for _ in range(4):
        c, _ = rig.client()
        c.data_received(GET)
    assert {b.name for b, _ in rig.connects} == {"b1"}


def test_connection_option_naming_content_length_does_not_smuggle_the_body() -> None:
    rig = Rig(n_backends=1)
    c, ct = rig.client()
    inner = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
    c.data_received(
        b"POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n"
        % len(inner)
        + inner
    )
    up, ut = rig.complete_connect()
    sent = ut.take()
    head, _, body = sent.partition(b"\r\n\r\n")
    # the backend is told the body's length, so the body stays a body
    assert b"Content-Length: %d" % len(inner) in head and body == inner
    up.data_received(OK)
    assert ct.take().startswith(b"HTTP/1.1 200 OK") and rig.metrics.outcomes["ok"] == 1


# -- blame where it belongs (issue 22, item 1): what the client causes is the client's --


def _post_head(length: int) -> bytes:
    return b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % length


def test_a_steady_slow_upload_is_not_cut_by_the_server_timeout() -> None:
    # HAProxy's `timeout server` is the server's inactivity: a backend taking
    # in a body that keeps flowing is busy, not silent
    rig = Rig(n_backends=1, timeouts={"server": "3s", "client": "3s"})
    c, ct = rig.client()
    c.data_received(_post_head(100))
    up, ut = rig.complete_connect()
    for _ in range(99):
        rig.clock.advance(1.0)  # 99 s of upload, a byte a second
        c.data_received(b"x")
    assert not ct.take() and not ut.closing
    c.data_received(b"x")
    assert ut.take().endswith(b"x" * 100)
    rig.clock.advance(2.0)
    up.data_received(OK)
    assert ct.take().startswith(b"HTTP/1.1 200")
    b = rig.pool.backends[0]
    assert b.failures == 0 and b.outstanding == 0


def test_a_stalled_upload_ends_that_client_only_and_blames_no_backend() -> None:
    rig = Rig(n_backends=1, timeouts={"server": "3s", "client": "5s"})
    c, ct = rig.client()
    c.data_received(_post_head(100) + b"part")
    up, ut = rig.complete_connect()
    rig.clock.advance(4.0)  # past the server timeout: the backend waits for the body, rightly
    assert not ct.closing and not ut.closing
    rig.clock.advance(1.1)  # past the client timeout
    assert ct.take().startswith(b"HTTP/1.1 408") and ct.closing
    assert ut.closing and up.client is None
    b = rig.pool.backends[0]
    assert b.failures == 0 and b.consecutive_failures == 0 and b.outstanding == 0
    assert rig.metrics.outcomes["client_timeout"] == 1


def test_a_client_that_stops_reading_is_cut_without_blaming_the_backend() -> None:
    rig = Rig(n_backends=1, timeouts={"server": "3s", "client": "5s"})
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"y" * 1000)
    c.pause_writing()  # the client's socket is full: it does not read
    assert not ut.reading
    rig.clock.advance(4.0)  # the backend is silent because we stopped reading it
    assert not ct.closing
    c.resume_writing()  # the client read a little: it is slow, not gone
    up.data_received(b"y" * 1000)
    c.pause_writing()
    rig.clock.advance(4.0)
    assert not ct.closing
    rig.clock.advance(1.1)
    assert ct.aborted and ut.closing
    b = rig.pool.backends[0]
    assert b.failures == 0 and b.outstanding == 0
    assert rig.metrics.outcomes["client_timeout"] == 1


def test_a_backend_that_stops_reading_an_upload_is_its_own_fault() -> None:
    rig = Rig(n_backends=1, timeouts={"server": "3s", "client": "30s"})
    c, ct = rig.client()
    c.data_received(_post_head(10**6) + b"z" * 1000)
    up, ut = rig.complete_connect()
    up.pause_writing()  # its receive window is shut
    rig.clock.advance(3.1)
    assert ct.take().startswith(b"HTTP/1.1 504")
    assert rig.pool.backends[0].failures == 1


def test_server_timeout_runs_from_the_backends_last_byte() -> None:
    rig = Rig(n_backends=1, timeouts={"server": "3s"})
    c, ct = rig.client()
    c.data_received(GET)
    up, ut = rig.complete_connect()
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    for _ in range(5):
        rig.clock.advance(2.0)
        up.data_received(b"y")
    assert not ct.closing
    rig.clock.advance(3.1)
    assert ct.aborted and rig.pool.backends[0].failures == 1
