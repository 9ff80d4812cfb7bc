"""Pure-Python cost of one L7 exchange: sim.core's protocol classes on transports
that discard what they are given, one request and one 1 KiB nginx-style response
per cycle; prints the best of 12 runs of 50,000 cycles (no sockets, no loop).

    taskset -c 1 .venv/bin/python benchmarks/l7-cycle.py    # from the project root

Used for docs/benchmarks.md ("16.0-16.6 us to 12.2-12.4 us"): run at c1f17cd and
after a9a9e7a, three times each.

On a busy machine, count instructions instead (valgrind, deterministic):
``--exchanges N`` runs N exchanges once, untimed, and ``--tree DIR`` takes
sim.core from another checkout (an older commit: ``git worktree add``), so
(I(4000) - I(1000)) / 3000 is one exchange's user-space instructions:

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        .venv/bin/python benchmarks/l7-cycle.py --exchanges 4000 [--tree DIR] 2>&1 | grep "I *refs"
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

_TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv else None
sys.path.insert(0, _TREE or str(Path(__file__).resolve().parents[1]))

from sim.core.l7 import ClientConnection, HttpProxy, UpstreamConnection  # noqa: E402
from sim.core.metrics import Metrics  # noqa: E402
from sim.core.pool import Backend, BackendPool  # noqa: E402
from tests.core.helpers import make_config  # noqa: E402

# an idle connected socket, so what asks the kernel about a transport's socket
# (the check of a pooled upstream before reuse) pays its real cost
_IDLE_SOCKET, _PEER = socket.socketpair()


class Discard:
    def write(self, data: Any) -> None: ...
    def writelines(self, data: Any) -> None: ...
    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return _IDLE_SOCKET
        return ("127.0.0.1", 5555) if name == "peername" else default

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...


class _Handle:
    def cancel(self) -> None: ...


class Clock:
    def time(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Any, *args: Any) -> _Handle:
        return _Handle()


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 28 Nov 2026 22:10:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n"
    + b"x"
    * 1024
)


def main() -> None:
    clock, config, metrics = Clock(), make_config([9001]), Metrics()
    pool = BackendPool(config, clock, metrics)
    upstreams: list[UpstreamConnection] = []

    def connect(backend: Backend, client: ClientConnection) -> None:
        up = UpstreamConnection(proxy, backend)
        up.connection_made(Discard())
        upstreams.append(up)
        client._on_connected(up)

    proxy = HttpProxy(config, pool, metrics, clock, connect=connect)
    client = proxy()
    client.connection_made(Discard())

    def cycles(n: int) -> None:
        for _ in range(n):
            client.data_received(REQUEST)
            upstreams[0].data_received(RESPONSE)

    if "--exchanges" in sys.argv:
        n = int(sys.argv[sys.argv.index("--exchanges") + 1])
        cycles(n)
        assert metrics.outcomes["ok"] == n
        return
    cycles(1000)
    n, best = 50_000, float("inf")
    for _ in range(12):
        t = time.perf_counter()
        cycles(n)
        best = min(best, (time.perf_counter() - t) / n)
    assert metrics.outcomes["ok"] == 1000 + 12 * n
    print(f"per exchange: {best * 1e6:.2f} us")


if __name__ == "__main__":
    main()
