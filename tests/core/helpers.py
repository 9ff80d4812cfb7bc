"""Shared helpers of the sim.core tests: configs, in-process balancers, raw clients."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from sim.core.backend import BackendServer, start_backend
from sim.core.config import Config, config_from_data
from sim.core.http import END, Head, Parser
from sim.core.server import Balancer

T = TypeVar("T")


def runqueue_wait(pid: int | str = "self", thread: int | None = None) -> float:
    """Seconds a thread (a process's main thread by default) has spent runnable but
    waiting for a CPU: the kernel's schedstat, second field. Over a span of wall
    time, that is the part a loaded machine took, not the code; 0.0 where the
    kernel does not say (bounds then stay as written)."""
    path = f"/proc/{pid}/task/{thread}/schedstat" if thread is not None else f"/proc/{pid}/schedstat"
    try:
        with open(path) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


# A bound stretched by waits for a CPU stretches this far at most: a test still ends.
LOAD_STRETCH = 4.0


def run(coro: Awaitable[T], timeout: float = 8.0) -> T:
    """Run a test coroutine with a hard bound, so no test hangs. The bound is on the
    time the loop's thread had a CPU or slept: time it spent waiting for a CPU on a
    loaded machine (runqueue_wait) does not count, up to LOAD_STRETCH x the bound of
    wall time, so a test holding a bound of its own code's speed does not fail for
    its neighbours' load, and a quiet machine holds it exactly. (Checked when the
    watchdog wakes, on the measurement then: a deadline moved ahead by a poll lost
    the race to its own timer after a long busy stretch of the loop.)"""
    thread = threading.get_native_id()

    async def bounded() -> T:
        loop = asyncio.get_running_loop()
        start, waited = loop.time(), runqueue_wait(thread=thread)
        task = asyncio.ensure_future(coro)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=min(0.05, timeout))
                if done:
                    return task.result()
                wall = loop.time() - start
                own = wall - (runqueue_wait(thread=thread) - waited)
                if own > timeout or wall > LOAD_STRETCH * timeout:
                    raise TimeoutError(f"the test ran {own:.2f} s of its own time, {wall:.2f} s of wall time: "
                                       f"over its bound of {timeout:g} s")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return asyncio.run(bounded())


def make_config(backends: list[BackendServer] | list[int], **over: Any) -> Config:
    ports = [b.port if isinstance(b, BackendServer) else b for b in backends]
    data: dict[str, Any] = {
        "name": "test",
        "listen": "127.0.0.1:0",
        "backends": [{"name": f"b{i}", "address": f"127.0.0.1:{p}"} for i, p in enumerate(ports)],
        "health_check": {"enabled": False},
        "admin": None,
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return config_from_data(data, "<test>")


@contextlib.asynccontextmanager
async def balancer(config: Config) -> AsyncIterator[Balancer]:
    b = Balancer(config, admin=config.admin is not None)
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@contextlib.asynccontextmanager
async def backends(n: int, **kw: Any) -> AsyncIterator[list[BackendServer]]:
    servers = [await start_backend(name=f"b{i}", **kw) for i in range(n)]
    try:
        yield servers
    finally:
        for s in servers:
            assert s.server is not None
            s.server.close()


class Response:
    def __init__(self, head: Head, body: bytes) -> None:
        self.head = head
        self.status = head.status
        self.body = body

    def header(self, name: str) -> str | None:
        v = self.head.get(name.encode())
        return None if v is None else v.decode()


class Client:
    """A raw HTTP client on one connection; reads responses in order (pipelining too)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser(response=True, max_head=65536)
        self.started = False

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> Client:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def send(self, raw: bytes) -> None:
        self.writer.write(raw)

    async def response(self, method: bytes = b"GET") -> Response | None:
        """The next response; None if the connection closed (or broke) before a whole one."""
        parser = self.parser
        events = parser.next_message() if self.started else []
        self.started = True
        parser.expect_response_to(method)
        head: Head | None = None
        body = bytearray()
        while True:
            for ev in events:
                if isinstance(ev, Head):
                    head = ev
                elif ev is END:
                    assert head is not None
                    return Response(head, bytes(body))
                else:
                    body += ev  # type: ignore[operator]
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                return None
            if not data:
                try:
                    events = parser.feed_eof()
                except Exception:
                    return None
                if not events:
                    return None
                continue
            events = parser.feed(data)

    async def closed(self, wait: float = 0.3) -> bool:
        try:
            async with asyncio.timeout(wait):
                return (await self.reader.read(1)) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


async def request(
    port: int,
    raw: bytes,
    method: bytes = b"GET",
    host: str = "127.0.0.1",
    check_closed: bool = True,
) -> tuple[Response | None, bool]:
    """Send ``raw`` on a new connection; the response and whether the server closed after it
    (looked for during 0.3 s when ``check_closed``)."""
    c = await Client.connect(port, host)
    try:
        c.send(raw)
        resp = await c.response(method)
        if resp is None:
            return None, True
        return resp, (await c.closed()) if check_closed else False
    finally:
        c.close()


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


async def wait_for(cond: Callable[[], bool], timeout: float = 3.0, step: float = 0.01) -> None:
    """Until ``cond()`` holds, for ``timeout`` seconds of this thread's own time, as `run`
    counts it (waits for a CPU left out, up to LOAD_STRETCH x of wall time)."""
    loop = asyncio.get_running_loop()
    thread = threading.get_native_id()
    start, waited = loop.time(), runqueue_wait(thread=thread)
    while not cond():
        wall = loop.time() - start
        if wall - (runqueue_wait(thread=thread) - waited) > timeout or wall > LOAD_STRETCH * timeout:
            raise TimeoutError(f"not true after {timeout:g} s of this test's own time ({wall:.2f} s of wall time)")
        await asyncio.sleep(step)
