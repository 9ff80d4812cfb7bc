"""A tiny fixed-response HTTP/1.1 server: the backend of the demos, tests and benchmarks.

``python -m sim.core.backend --port 9001 [--size 1024] [--name web1]`` answers
every request with ``size`` bytes (keep-alive, Content-Length), and
``GET /bytes/N`` with N bytes. A
``mode`` can be switched at run time (tests) to misbehave: ``hang`` (never
answer), ``reset_head`` (half a status line, then RST), ``reset_body`` (the
head and half the body, then RST), ``close`` (close at once), ``echo`` (the
request head back as the body), ``error`` (500).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
from typing import Any

from sim.core.http import END, Head, ParseError, Parser

__all__ = ["BackendServer", "main", "start_backend"]


class BackendServer:
    def __init__(self, size: int = 1024, name: str = "backend") -> None:
        self.name = name
        self.mode = "ok"
        self.requests = 0
        self.open = 0
        self.conns: set[_Conn] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.set_size(size)

    def set_size(self, size: int) -> None:
        body = (self.name.encode() + b":" + b"x" * size)[:size] if size else b""
        self.response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Backend: %s\r\n\r\n"
            % (len(body), self.name.encode())
        ) + body

    def kill(self) -> None:
        """Die as a killed process does: stop listening, reset every connection."""
        if self.server is not None:
            self.server.close()
        for c in list(self.conns):
            c._rst()


class _Conn(asyncio.Protocol):
    __slots__ = ("srv", "transport", "parser", "head")

    def __init__(self, srv: BackendServer) -> None:
        self.srv = srv
        self.transport: Any = None
        self.parser = Parser(False, 65536, 200)
        self.head: Head | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.srv.open += 1
        self.srv.conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.srv.open -= 1
        self.srv.conns.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except ParseError as e:
            self.transport.write(
                b"HTTP/1.1 %d Bad\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % e.status
            )
            self.transport.close()
            return
        while events:
            more: list[object] = []
            for ev in events:
                if isinstance(ev, Head):
                    self.head = ev
                elif ev is END:
                    self._respond()
                    if self.transport.is_closing():
                        return
                    more = self.parser.next_message()
            events = more

    def _rst(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: close sends RST, as a crashed process's kernel would
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _respond(self) -> None:
        srv = self.srv
        srv.requests += 1
        mode = srv.mode
        t = self.transport
        if mode == "ok":
            head = self.head
            if head is not None and head.target[:7] == b"/bytes/" and head.target[7:].isdigit():
                n = int(head.target[7:])
                t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                t.write(b"x" * n)
            else:
                t.write(srv.response)
        elif mode == "hang":
            return
        elif mode == "close":
            t.close()
        elif mode == "reset_head":
            t.write(b"HTTP/1.1 200 OK\r\nContent-Le")
            self._rst()
        elif mode == "reset_body":
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 100)
            self._rst()
        elif mode == "error":
            t.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        elif mode == "echo":
            assert self.head is not None
            body = b"\n".join(b"%s: %s" % (k, v) for k, v in self.head.headers)
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        if self.head is not None and not self.head.keep_alive and not t.is_closing():
            t.close()


async def start_backend(
    host: str = "127.0.0.1", port: int = 0, size: int = 1024, name: str = "backend"
) -> BackendServer:
    srv = BackendServer(size, name)
    loop = asyncio.get_running_loop()
    srv.server = await loop.create_server(
        lambda: _Conn(srv), host, port, reuse_address=True, backlog=4096
    )
    srv.port = srv.server.sockets[0].getsockname()[1]
    return srv


async def _run(host: str, port: int, size: int, name: str) -> None:
    srv = await start_backend(host, port, size, name)
    print(f"backend {name} on {host}:{srv.port}", flush=True)
    assert srv.server is not None
    await srv.server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sim.core.backend", description=__doc__.splitlines()[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--size", type=int, default=1024, help="response body bytes (default 1 KiB)")
    p.add_argument("--name", default="backend")
    a = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(a.host, a.port, a.size, a.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
