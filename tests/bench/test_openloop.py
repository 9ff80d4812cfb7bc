"""The open-loop generator measures from the intended send time (no coordinated omission).

A real backend on loopback is frozen (SIGSTOP) for STALL seconds in the middle
of a step at RATE requests a second. An open-loop generator keeps issuing on
schedule, so the requests due during the stall, STALL x RATE of them, wait
until it ends: their latencies spread uniformly over [0, STALL]. Of the
RATE x DURATION requests measured, a share q = STALL / DURATION are in the
stall, so the p90 is the (1 - 0.1 / q) quantile of that uniform spread. A
closed-loop generator would record one slow request per connection instead
and a p90 near zero.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.bench import openloop
from sim.bench.core import _free_port as free_port
from sim.bench.core import _wait_port as wait_port

ROOT = Path(__file__).resolve().parents[2]
RATE, DURATION, WARMUP, STALL = 1000.0, 3.0, 0.3, 0.5


@pytest.fixture(params=[1024])
def backend(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "sim.core.backend", "--port", str(port), "--size", str(request.param)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    proc.port = port  # type: ignore[attr-defined]
    yield proc
    os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait(timeout=10)


@pytest.mark.parametrize("generator", ["c", "asyncio"])
def test_a_stall_shows_in_the_latency_of_every_request_due_during_it(
    backend: subprocess.Popen[bytes], generator: str
) -> None:
    if generator == "c" and openloop.build() is None:
        pytest.skip("no C compiler: the asyncio generator is used instead")

    def freeze() -> None:
        time.sleep(0.05 + WARMUP + 1.2)  # 1.2 s of margin for the generator process to start
        os.kill(backend.pid, signal.SIGSTOP)
        time.sleep(STALL)
        os.kill(backend.pid, signal.SIGCONT)

    stopper = threading.Thread(target=freeze)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the step's process starts after this thread; the stall falls inside its window if that takes < 1.2 s
    stopper.start()
    r = openloop.run([], env, backend.port, RATE, DURATION, WARMUP, 16, generator)  # type: ignore[attr-defined]
    stopper.join()
    assert "error" not in r, r
    assert r["completed"] == pytest.approx(RATE * DURATION, abs=2)  # every request, none lost
    assert r["errors"] == 0
    q = STALL / DURATION
    p90 = STALL * (1 - 0.1 / q) * 1e6
    assert 0.6 * p90 < r["p90_us"] < 1.3 * p90 + 50_000, r
    assert r["max_us"] >= 0.8 * STALL * 1e6
    assert 10 <= r["p50_us"] < 50_000  # most requests were not in the stall (and the clock is fine)


def test_a_step_is_not_sustained_when_answers_fall_short_or_the_generator_falls_behind() -> None:
    step = {"rate": 1000.0, "completed": 2000, "max_backlog": 400, "overloaded": False}
    # requests that waited for a free connection are the target's latency (C generator)...
    assert not openloop.saturated({**step, "generator": "openloop.c"}, 2.0)
    # ...but the asyncio generator cannot tell them from its own slowness
    assert openloop.saturated({**step, "generator": "asyncio"}, 2.0)
    assert openloop.saturated({**step, "generator": "openloop.c", "completed": 1899}, 2.0)
    assert openloop.saturated({**step, "generator": "openloop.c", "overloaded": True}, 2.0)


@pytest.mark.parametrize("backend", [200_000], indirect=True)
def test_responses_larger_than_the_read_buffer_are_counted_whole(
    backend: subprocess.Popen[bytes],
) -> None:
    if openloop.build() is None:
        pytest.skip("no C compiler")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = openloop.run([], env, backend.port, 200.0, 1.0, 0.2, 8, "c")  # type: ignore[attr-defined]
    assert r["completed"] == pytest.approx(200, abs=1) and r["errors"] == 0, r


def test_a_target_that_resets_its_connections_is_reported_not_fatal() -> None:
    """A reset connection used to kill the generator with SIGPIPE on its next write."""
    if openloop.build() is None:
        pytest.skip("no C compiler")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def answer_once_then_reset() -> None:
        server.settimeout(5)
        with contextlib.suppress(OSError):
            for _ in range(4):
                conn, _ = server.accept()
                conn.recv(4096)
                conn.sendall(response)
                # SO_LINGER 0: close with a RST, as a crashing target does
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

    thread = threading.Thread(target=answer_once_then_reset, daemon=True)
    thread.start()
    started = time.monotonic()
    r = openloop.run([], dict(os.environ), port, 200.0, 1.0, 0.0, 4, "c")
    server.close()
    assert "error" not in r, r  # the generator itself survived
    assert r["lost"] == 4 and r["saturated"], r
    assert time.monotonic() - started < 5  # stops once no connection is left
