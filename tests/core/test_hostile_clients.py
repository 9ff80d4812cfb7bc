"""Clients and backends that misbehave on purpose (issue 22), with real sockets on 127.0.0.1.

Each test runs a real balancer in front of a real backend
(:mod:`sim.core.backend`) and checks what the well-behaved clients beside the
misbehaving ones get.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.core.connect import REFUSAL_LOG_INTERVAL
from tests.core.helpers import (
    LOAD_STRETCH,
    Client,
    backends,
    balancer,
    get,
    make_config,
    request,
    run,
    runqueue_wait,
    wait_for,
)


async def _slow_reader(port: int, size: int) -> Client:
    """A client whose receive window is tiny and which never reads its response."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    c = Client(reader, writer)
    c.send(get(f"/bytes/{size}"))
    return c


def test_slow_uploads_and_slow_readers_eject_no_backend() -> None:
    """Six stalled uploads, a steady trickle slower than the server timeout and
    three clients that never read: the only backend stays in, and the
    well-behaved clients beside them get every answer."""

    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config(
                bs,
                timeouts={"server": "400ms", "client": "400ms"},
                passive={"consecutive_failures": 2, "base_ejection_time": "30s"},
            )
            async with balancer(cfg) as lb:
                port = lb.listen_port
                assert port is not None
                stalled = [await Client.connect(port) for _ in range(6)]
                for c in stalled:
                    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npart")
                readers = [await _slow_reader(port, 8 << 20) for _ in range(3)]

                async def trickle() -> int:
                    # 40 bytes over 2 s: the backend is busy taking them all along
                    c = await Client.connect(port)
                    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n")
                    for _ in range(40):
                        await asyncio.sleep(0.05)
                        c.send(b"x")
                    r = await c.response(b"POST")
                    c.close()
                    return 0 if r is None else r.status

                statuses: list[int] = []
                stop = asyncio.Event()

                async def well_behaved() -> None:
                    c = await Client.connect(port)
                    while not stop.is_set():
                        c.send(get())
                        r = await c.response()
                        statuses.append(0 if r is None else r.status)
                        await asyncio.sleep(0.01)
                    c.close()

                workers = [asyncio.create_task(well_behaved()) for _ in range(4)]
                trickled = await trickle()
                stop.set()
                await asyncio.gather(*workers)
                assert trickled == 200
                for c in stalled:
                    r = await c.response(b"POST")
                    assert r is not None and r.status == 408
                    assert await c.closed()
                    c.close()
                # the readers were cut too (they cannot tell: their reading is paused)
                await wait_for(lambda: lb.metrics.outcomes["client_timeout"] == 9)
                for c in readers:
                    c.close()
                backend = lb.pool.backends[0]
                assert backend.times_ejected == 0 and backend.failures == 0
                assert len(statuses) > 20 and set(statuses) == {200}, statuses

    run(main(), timeout=9)


LEAK = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Backend: nobody-asked\r\n\r\nLEAK"


def test_an_unsolicited_response_reaches_nobody() -> None:
    """A backend answers once more than it was asked. Whether the extra response
    is already waiting in the socket when another client's request takes the
    pooled connection (the race the issue found 5 of 5 times) or arrives on an
    idle connection, no client ever receives it."""

    async def main() -> None:
        async with backends(1) as bs, balancer(make_config(bs)) as lb:
            port = lb.listen_port
            assert port is not None
            srv = bs[0]
            for trial in range(5):
                first, second = await Client.connect(port), await Client.connect(port)
                await wait_for(lambda n=2 * trial + 2: lb.metrics.connections_total == n)
                first.send(get())
                r1 = await first.response()
                assert r1 is not None and r1.status == 200
                (conn,) = srv.conns  # the pooled upstream, as the backend sees it
                # the second request reaches the balancer just before the extra
                # response does: both are there for the same turn of its loop
                second.send(get())
                conn.transport.write(LEAK)
                r2 = await second.response()
                assert r2 is not None and r2.body != b"LEAK", trial
                assert r2.header("X-Backend") == "b0"
                assert not await second.closed(0.05)
                first.close()
                second.close()
                await wait_for(lambda: len(srv.conns) == 1)
            # and on a connection idle in the pool: closed, never handed out
            (conn,) = srv.conns
            conn.transport.write(LEAK)
            await wait_for(lambda: not srv.conns)
            r, _ = await request(port, get(), check_closed=False)
            assert r is not None and r.body != b"LEAK"

    run(main())


# -- a flood of idle connections near the descriptor limit, on both event loops --


class Serving:
    """``failover-sim serve`` in a child process with a small open-file limit."""

    def __init__(self, tmp: Path, loop: str, nofile: int) -> None:
        self.tmp = tmp
        self.backend = subprocess.Popen(
            [sys.executable, "-m", "sim.core.backend", "--port", "0", "--name", "b"],
            stdout=subprocess.PIPE,
            text=True,
            env=_ENV,
        )
        assert self.backend.stdout is not None
        backend_port = int(self.backend.stdout.readline().rsplit(":", 1)[1])
        cfg = tmp / f"lb-{loop}.yaml"
        cfg.write_text(
            f"listen: 127.0.0.1:0\nloop: {loop}\nadmin: null\n"
            "health_check: {enabled: false}\n"
            f"backends: [{{name: b, address: 127.0.0.1:{backend_port}}}]\n"
        )
        self.err = tmp / f"err-{loop}"
        ready = tmp / f"ready-{loop}"

        def limit() -> None:
            # the hard limit too: serve raises its soft limit as far as it may
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.err.open("w") as err:
            self.lb = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sim.core.cli",
                    "serve",
                    str(cfg),
                    "--ready-file",
                    str(ready),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                preexec_fn=limit,
                env=_ENV,
            )
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert self.lb.poll() is None and time.monotonic() < deadline, self.err.read_text()
            time.sleep(0.05)
        self.port = int(json.loads(ready.read_text())["listen"].rsplit(":", 1)[1])

    def flood(self, n: int) -> list[socket.socket]:
        out = []
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", self.port))
            out.append(s)
        return out

    def get(self, within: float) -> int:
        """A well-behaved client's request, tried until it is answered 200, for `within`
        seconds of the balancer's own time: what it spent runnable but waiting for a CPU
        on a loaded machine is not counted (up to LOAD_STRETCH x `within` of wall time)."""
        start, waited = time.monotonic(), runqueue_wait(self.lb.pid)

        def spent() -> float:
            wall = time.monotonic() - start
            return wall - (runqueue_wait(self.lb.pid) - waited) if wall < LOAD_STRETCH * within else math.inf

        status = 0
        while spent() < within:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as c:
                    c.sendall(get())
                    status = int(c.recv(200).split(b" ", 2)[1])
                    if status == 200:
                        return status
            except (OSError, IndexError, ValueError):
                pass
            time.sleep(0.1)
        return status

    def log_lines(self) -> list[str]:
        """What it logged while serving (not its warning at start about the limit)."""
        lines = self.err.read_text().splitlines()
        return [line for line in lines if not line.startswith("failover-sim serve: warning")]

    def stop(self) -> None:
        for p in (self.lb, self.backend):
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # (seen once on a loaded machine, after the limit was lowered
                # under it; not what this test is about)
                p.kill()
                p.wait(timeout=10)


_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_an_idle_flood_at_the_descriptor_limit_sheds_idle_connections_quietly(
    tmp_path: Path, loop: str
) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    # 160 descriptors: room for (160 - 64) / 2 = 48 client connections
    srv = Serving(tmp_path, loop, nofile=160)
    try:
        started = time.monotonic()
        flood = srv.flood(300)
        time.sleep(1.0)
        # silent connections are shed for it, long before http_request's 10 s
        assert srv.get(within=3.0) == 200
        time.sleep(1.0)
        lines = srv.log_lines()
        # one line an interval at most (a storm is thousands): as many intervals as
        # passed, on a loaded machine too, where this takes longer
        took = time.monotonic() - started
        assert 1 <= len(lines) <= max(3, 2 + took / REFUSAL_LOG_INTERVAL), (took, lines)
        assert all("at the connection limit" in line for line in lines), lines
        # and when the limit is met below the balancer's own count (here,
        # lowered under it), the plain loop's failed accept()s are told once
        # an interval too, not once a try
        soft, hard = resource.prlimit(srv.lb.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(srv.lb.pid, resource.RLIMIT_NOFILE, (40, hard))
        started = time.monotonic()
        flood += srv.flood(200)
        time.sleep(2.5)
        later = srv.log_lines()
        took = time.monotonic() - started
        assert len(later) <= len(lines) + max(2, 1 + took / REFUSAL_LOG_INTERVAL), (took, later[-5:])
        for s in flood:
            s.close()
        assert srv.get(within=4.0) == 200
    finally:
        srv.stop()
