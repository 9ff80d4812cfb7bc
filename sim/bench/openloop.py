"""The open-loop generator of ``bench core``: a fixed request rate, latency from the intended send time.

Two implementations with one result format:

- ``openloop.c`` (compiled on first use with the system C compiler into
  ``~/.cache/failover-sim``): answered a 53k req/s schedule in full on a core
  it shares with the backend, so latency at 50% and 75% of a balancer's
  maximum is measurable on two cores; its own lateness on that shared core
  (send_late_p50/p99/max_us) is reported with every step;
- the asyncio one below, used when no C compiler is found: it falls behind
  its schedule above roughly 20k req/s here, and those steps are reported as
  "gen. saturated" rather than as latency.

Either way each latency is recorded into an HdrHistogram (microseconds, 3
significant digits) whose encoding is kept in the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("openloop.c")
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def _histogram() -> Any:
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        # RuntimeError: what `bench core` reports as a one-line error, not a traceback
        raise RuntimeError("the open-loop generator needs hdrhistogram: pip install '.[bench]'") from None

    return HdrHistogram(1, 60_000_000, 3)  # microseconds, up to a minute


def summarize(hist: Any, meta: dict[str, Any], duration: float) -> dict[str, Any]:
    """The result of one step: counts, percentiles, and whether it measured the target."""
    return {**meta, "saturated": saturated(meta, duration), **percentiles(hist)}


def saturated(meta: dict[str, Any], duration: float) -> bool:
    """The step measured the generator rather than the target.

    Either generator: about six seconds behind (it stopped), or fewer than
    95% of the scheduled requests answered within the step. The asyncio one
    also when requests waited for a free connection (its backlog): it cannot
    tell a slow target from its own slowness there. For the C one, requests
    waiting for a connection are the target's latency, measured from their
    intended time as the issue asks; its own lateness (the schedule to the
    send, for requests a free connection waited for) is reported as
    send_late_p50/p99_us and judged by the reader beside the p99 (the
    table's own column), since the same shared core makes it of the order of
    the added p99s.
    """
    if meta.get("overloaded") or meta["completed"] < 0.95 * meta["rate"] * duration:
        return True
    return meta.get("generator") != "openloop.c" and meta["max_backlog"] > max(
        10, meta["rate"] * 0.05
    )


def percentiles(hist: Any) -> dict[str, Any]:
    return {
        "p50_us": hist.get_value_at_percentile(50),
        "p90_us": hist.get_value_at_percentile(90),
        "p99_us": hist.get_value_at_percentile(99),
        "p999_us": hist.get_value_at_percentile(99.9),
        "max_us": hist.get_max_value(),
        "hdr": hist.encode().decode(),
    }


# -- the C generator --------------------------------------------------------------------------


def build() -> Path | None:
    """The compiled generator, built once per source version; None without a C compiler."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "failover-sim"
    binary = cache / f"openloop-{digest}"
    if binary.exists():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    # built beside and renamed: two benchmarks starting at once never run half a file
    tmp = cache / f".openloop-{digest}-{os.getpid()}"
    p = subprocess.run([cc, "-O2", "-o", str(tmp), str(SOURCE)], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"openloop.c did not compile ({cc}): {p.stderr[-500:]}", file=sys.stderr)
        return None
    os.replace(tmp, binary)
    return binary


def run_c(
    binary: Path,
    pin: list[str],
    port: int,
    rate: float,
    duration: float,
    warmup: float,
    connections: int,
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(prefix="openloop-", suffix=".u32") as f:
        argv = [*pin, str(binary), str(port), str(rate), str(duration), str(warmup)]
        argv += [str(connections), f.name]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + warmup + 60)
        if p.returncode != 0:
            return {"rate": rate, "error": p.stderr[-2000:]}
        meta = json.loads(p.stdout.strip().splitlines()[-1])
        latencies = np.fromfile(f.name, dtype=np.uint32)
    hist = _histogram()
    # one record per distinct value: a few thousand calls instead of millions
    values, counts = np.unique(np.minimum(latencies, 60_000_000), return_counts=True)
    for v, n in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(v, n)
    return summarize(hist, {**meta, "generator": "openloop.c"}, duration)


# -- the asyncio generator (fallback) ---------------------------------------------------------


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:[ \t]*([0-9]+)")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: reads just enough to find where each response ends."""

    __slots__ = ("gen", "transport", "buf", "need", "intended")

    def __init__(self, gen: AsyncOpenLoop) -> None:
        self.gen = gen
        self.transport: Any = None
        self.buf = bytearray()
        self.need = -1
        self.intended = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.gen.idle.append(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                m = _CONTENT_LENGTH.search(buf, 0, end + 2)
                self.need = end + 4 + (int(m.group(1)) if m else 0)
            if len(buf) < self.need:
                return
            del buf[: self.need]
            self.need = -1
            self.gen.done(self)

    def connection_lost(self, exc: Exception | None) -> None:
        gen = self.gen
        if self in gen.idle:
            gen.idle.remove(self)
        elif gen.running:
            gen.errors += 1
            gen.lost += 1


class AsyncOpenLoop:
    """The same schedule as openloop.c, on an asyncio loop (uvloop when installed)."""

    def __init__(
        self, port: int, rate: float, duration: float, warmup: float, connections: int
    ) -> None:
        self.port = port
        self.rate = rate
        self.duration = duration
        self.warmup = warmup
        self.connections = connections
        self.hist = _histogram()
        self.idle: deque[_Connection] = deque()
        self.backlog: deque[float] = deque()
        self.errors = self.lost = self.sent = self.completed = self.max_backlog = 0
        self.running = False
        self.loop = asyncio.get_running_loop()
        self.measure_from = 0.0

    def send(self, conn: _Connection, intended: float) -> None:
        conn.intended = intended
        self.sent += 1
        conn.transport.write(REQUEST)

    def done(self, conn: _Connection) -> None:
        now = time.monotonic()
        if conn.intended >= self.measure_from:
            self.hist.record_value(max(1, int((now - conn.intended) * 1e6)))
            self.completed += 1
        if self.backlog:
            self.send(conn, self.backlog.popleft())
        else:
            self.idle.append(conn)

    async def run(self) -> dict[str, Any]:
        loop = self.loop
        for _ in range(self.connections):
            await loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
        self.running = True
        # time.monotonic, not loop.time: uvloop's clock moves in whole milliseconds
        start = time.monotonic() + 0.05
        self.measure_from = start + self.warmup
        end = self.measure_from + self.duration
        interval = 1.0 / self.rate
        k = 0
        overloaded = False
        # a 0.5 ms ticker issues every request whose intended time has come:
        # one timer per tick, not per request, so the generator keeps up longer
        while True:
            now = time.monotonic()
            # a tick that wakes after `end` still issues what fell due since the last one
            while (t := start + k * interval) <= now and t < end:
                k += 1
                if self.idle:
                    self.send(self.idle.popleft(), t)
                else:
                    self.backlog.append(t)
            self.max_backlog = max(self.max_backlog, len(self.backlog))
            if len(self.backlog) > self.rate * 5:
                overloaded = True  # five seconds behind: stop measuring our own queue
                break
            if now >= end:
                break
            await asyncio.sleep(0.0005)
        # the requests in flight count: they were sent on time
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while len(self.idle) < self.connections - self.lost and (
                    self.backlog or self.sent > self.completed
                ):
                    await asyncio.sleep(0.01)
        self.running = False
        meta = {
            "generator": "asyncio",
            "rate": self.rate,
            "intended": k,
            "sent": self.sent,
            "completed": self.completed,
            "errors": self.errors,
            "lost": self.lost,
            "max_backlog": self.max_backlog,
            "backlog_left": len(self.backlog),
            "overloaded": overloaded,
        }
        return summarize(self.hist, meta, self.duration)


def _async_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench.openloop")
    p.add_argument("port", type=int)
    p.add_argument("rate", type=float)
    p.add_argument("duration", type=float)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=64)
    a = p.parse_args(argv)

    async def go() -> dict[str, Any]:
        return await AsyncOpenLoop(a.port, a.rate, a.duration, a.warmup, a.connections).run()

    try:
        import uvloop

        result = uvloop.run(go())
    except ImportError:
        result = asyncio.run(go())
    print(json.dumps(result))
    return 0


def run(
    pin: list[str],
    env: dict[str, str],
    port: int,
    rate: float,
    duration: float,
    warmup: float,
    connections: int = 64,
    generator: str = "auto",
) -> dict[str, Any]:
    """One open-loop step against 127.0.0.1:port, in its own (pinned) process.

    ``generator``: "c", "asyncio", or "auto" (C when a compiler is found).
    """
    binary = build() if generator in ("auto", "c") else None
    if binary is not None:
        return run_c(binary, pin, port, rate, duration, warmup, connections)
    if generator == "c":
        raise RuntimeError("openloop.c cannot be built: no working C compiler (cc, gcc or $CC)")
    argv = [*pin, sys.executable, "-m", "sim.bench.openloop", str(port), str(rate), str(duration)]
    argv += ["--warmup", str(warmup), "--connections", str(connections)]
    p = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=duration + warmup + 60
    )
    if p.returncode != 0:
        return {"rate": rate, "error": p.stderr[-2000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    raise SystemExit(_async_main(sys.argv[1:]))
