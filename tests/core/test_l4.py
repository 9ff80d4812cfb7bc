"""The TCP relay with real sockets: relaying, half-close, retries, backpressure."""

from __future__ import annotations

import asyncio
import socket

from tests.core.helpers import Client, backends, balancer, get, make_config, run, wait_for


def _free_port() -> int:
    # a port nobody listens on: connecting to it is refused at once
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_tcp_relay_with_refused_backend_retried() -> None:
    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config([_free_port(), bs[0].port], mode="tcp", balancing="round_robin")
            async with balancer(cfg) as lb:
                for _ in range(4):
                    c = await Client.connect(lb.listen_port)  # type: ignore[arg-type]
                    c.send(get())
                    r = await c.response()
                    assert r is not None and r.status == 200
                    c.close()
                assert lb.metrics.retries >= 1 and lb.metrics.connect_failures >= 1
                await wait_for(lambda: lb.metrics.active_connections == 0)
                assert all(b.outstanding == 0 for b in lb.pool.backends)

    run(main())


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the client half-closes
        writer.write(b"got %d bytes" % len(data))
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_tcp_half_close_and_large_transfer() -> None:
    async def main() -> None:
        srv, port = await _echo_server()
        async with srv, balancer(make_config([port], mode="tcp")) as lb:
            reader, writer = await asyncio.open_connection("127.0.0.1", lb.listen_port)
            payload = b"z" * (8 * 1024 * 1024)  # far past every high-water mark
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            answer = await reader.read()
            assert answer == b"got %d bytes" % len(payload)
            writer.close()

    run(main())
