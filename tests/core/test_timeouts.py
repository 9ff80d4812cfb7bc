"""A timeout for every phase, named as HAProxy names them (issue 22, item 7).

The phases on the fake clock (the protocols alone), the configuration's
names and fallbacks, and a silent connection with real sockets.
"""

from __future__ import annotations

import asyncio

import pytest

from sim.core.config import ConfigError, config_from_data
from tests.core.helpers import Client, backends, balancer, get, make_config, run
from tests.core.test_l7_unit import GET, OK, Rig


def test_the_names_and_their_sourced_defaults() -> None:
    t = config_from_data({"listen": "127.0.0.1:80"}).timeouts
    # HAProxy's manual: timeout http-request 10s; client 30s, server 30s,
    # connect 5s, tunnel 1h in its `timeout tunnel` example (docs/references.md)
    assert (t.http_request, t.client, t.server, t.connect) == (10.0, 30.0, 30.0, 5.0)
    # unset, as in HAProxy: keep-alive falls back to http-request, and a TCP
    # relay silent both ways to the client and server timeouts
    assert t.http_keep_alive is None and t.keep_alive == 10.0
    assert t.tunnel is None and t.relay_idle == 30.0
    t = config_from_data(
        {"listen": "127.0.0.1:80", "timeouts": {"http_request": "2s", "tunnel": "1h"}}
    ).timeouts
    assert t.keep_alive == 2.0 and t.relay_idle == 3600.0


@pytest.mark.parametrize(
    ("old", "new"), [("header", "http_request"), ("client_idle", "http_keep_alive")]
)
def test_the_old_names_say_what_they_are_called_now(old: str, new: str) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_data({"listen": "127.0.0.1:80", "timeouts": {old: "5s"}}, "lb.yaml")
    (line,) = e.value.lines
    assert line.startswith(f"lb.yaml: timeouts.{old}: ") and new in line


def test_a_silent_connection_is_closed_at_the_request_timeout() -> None:
    # HAProxy: the first request's head, its first byte included, is due
    # within `timeout http-request`; nothing is answered to a connection
    # that never spoke (a browser's pre-connect would read it as the answer
    # to its next request)
    rig = Rig(timeouts={"http_request": "2s", "http_keep_alive": "20s", "client": "60s"})
    c, ct = rig.client()
    rig.clock.advance(1.9)
    assert not ct.closing
    rig.clock.advance(0.2)
    assert ct.closing and ct.take() == b""


def test_the_first_head_is_due_within_the_request_timeout_of_the_accept() -> None:
    rig = Rig(timeouts={"http_request": "2s"})
    c, ct = rig.client()
    rig.clock.advance(1.5)
    c.data_received(b"GET / HTTP/1.1\r\n")
    rig.clock.advance(0.6)
    assert ct.take().startswith(b"HTTP/1.1 408") and ct.closing


def test_keep_alive_idle_then_a_new_head_gets_the_request_timeout() -> None:
    rig = Rig(n_backends=1, timeouts={"http_request": "2s", "http_keep_alive": "5s"})
    c, ct = rig.client()
    c.data_received(GET)
    up, _ = rig.complete_connect()
    up.data_received(OK)
    assert ct.take().startswith(b"HTTP/1.1 200")
    rig.clock.advance(4.9)  # idle between requests: http-keep-alive, not http-request
    assert not ct.closing
    c.data_received(b"GET / HTTP/1.1\r\n")  # a head begins: 2 s for the rest
    rig.clock.advance(1.9)
    assert not ct.closing
    rig.clock.advance(0.2)
    assert ct.take().startswith(b"HTTP/1.1 408")


def test_keep_alive_idle_closes_quietly() -> None:
    rig = Rig(n_backends=1, timeouts={"http_request": "2s", "http_keep_alive": "5s"})
    c, ct = rig.client()
    c.data_received(GET)
    up, _ = rig.complete_connect()
    up.data_received(OK)
    ct.take()
    rig.clock.advance(5.1)
    assert ct.closing and ct.take() == b""


def test_a_silent_connection_is_closed_with_real_sockets() -> None:
    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config(bs, timeouts={"http_request": "300ms", "http_keep_alive": "5s"})
            async with balancer(cfg) as lb:
                loop = asyncio.get_running_loop()
                silent = await Client.connect(lb.listen_port)  # type: ignore[arg-type]
                t0 = loop.time()
                assert await silent.closed(wait=2.0)
                assert 0.25 < loop.time() - t0 < 1.5
                # a kept-alive connection outlives the request timeout
                kept = await Client.connect(lb.listen_port)  # type: ignore[arg-type]
                kept.send(get())
                r = await kept.response()
                assert r is not None and r.status == 200
                assert not await kept.closed(wait=0.6)
                kept.close()
                silent.close()

    run(main())


def test_a_relayed_connection_silent_both_ways_is_closed_at_the_tunnel_timeout() -> None:
    from tests.core.test_connect import Rig as ConnectRig

    rig = ConnectRig("tcp", timeouts={"tunnel": "40s", "client": "5s", "server": "5s"})
    c, t = rig.client()
    rig.clock.advance(39.0)
    assert not t.closing
    c.data_received(b"x")  # any byte either way counts
    rig.clock.advance(39.0)
    assert not t.closing
    rig.clock.advance(1.1)
    assert t.closing


# -- near the descriptor limit: idle connections go first, refusals told once an interval --


def _silent_clients(rig: Rig, n: int) -> list[tuple[object, object]]:
    return [rig.client() for _ in range(n)]


def test_at_the_limit_idle_connections_are_shed_for_new_ones() -> None:
    rig = Rig(n_backends=1, limits={"max_connections": 3})
    busy, busy_t = rig.client()
    busy.data_received(GET)  # a request in flight: never shed
    idle = _silent_clients(rig, 2)
    newcomer, new_t = rig.client()
    assert not new_t.closing and newcomer in rig.proxy.connections
    assert all(t.closing for _, t in idle) and not busy_t.closing
    assert rig.metrics.active_connections == 2 and rig.metrics.rejected_connections == 0
    for c, _ in idle:
        c.connection_lost(None)  # the loop reports them gone later: counted out once
    assert rig.metrics.active_connections == 2


def test_with_nothing_idle_to_shed_refusals_are_logged_once_an_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(n_backends=1, limits={"max_connections": 1})
    busy, _ = rig.client()
    busy.data_received(GET)
    with caplog.at_level("WARNING", logger="sim.core"):
        for _ in range(1000):
            rig.clock.advance(0.001)
            _, t = rig.client()
            assert t.take().startswith(b"HTTP/1.1 503") and t.closing
    lines = [r.getMessage() for r in caplog.records if r.name == "sim.core"]
    assert len(lines) == 1 and "a connection refused" in lines[0]
    assert rig.metrics.rejected_connections == 1000


def test_running_out_of_descriptors_here_is_not_the_backends_fault() -> None:
    rig = Rig(n_backends=2, retries={"count": 0})
    c, t = rig.client()
    c.data_received(GET)
    backend, client = rig.connects.pop()
    client._on_connect_failed(backend, "EMFILE")
    assert t.take().startswith(b"HTTP/1.1 503")
    assert backend.failures == 0 and backend.consecutive_failures == 0


def test_a_probe_this_process_could_not_make_is_not_a_failed_probe() -> None:
    async def main() -> None:
        cfg = make_config([1], health_check={"enabled": True, "interval": "10ms"})
        from sim.core.pool import BackendPool

        pool = BackendPool(cfg, asyncio.get_running_loop())
        probes = []

        async def out_of_descriptors(b: object) -> None:
            probes.append(b)
            return None

        pool.probe = out_of_descriptors
        pool.start()
        await asyncio.sleep(0.2)
        await pool.stop()
        assert len(probes) >= 5 and pool.backends[0].healthy

    run(main())
