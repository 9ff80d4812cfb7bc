"""What an operator reads: event lines, the access log, process figures.

Both logs are JSON lines with a UTC ISO 8601 ``time``, so ``jq`` and any log
shipper read them without a pattern (docs/core.md, "Logs").

- Event lines (stderr): a backend changing state, a takeover, a reload.
- The access log (``log.access``, off by default): one line per request,
  written when its exchange ends, whatever way it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.core.l7 import ClientConnection
    from sim.core.pool import BackendPool

__all__ = ["AccessLog", "EventLog", "now_iso", "process_figures"]

_DOWN = frozenset(("down", "ejected"))
# a request target is logged whole up to this many characters (HAProxy truncates
# its log lines at 1024 bytes by default)
_MAX_PATH = 1024


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class EventLog:
    """Timestamped JSON event lines; ``stream`` is replaceable (tests)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._states: dict[str, str] = {}

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": now_iso(), "event": event, **fields})
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not take the data path down with it

    def watch(self, pool: BackendPool) -> None:
        """Emit a line whenever one of ``pool``'s backends changes state (after a reload:
        a line for each difference from the pool watched before)."""
        if self._states:
            self._diff(pool)
        else:
            self._states = {b.name: b.state for b in pool.backends}
        pool.on_change.append(lambda: self._diff(pool))

    def _diff(self, pool: BackendPool) -> None:
        now = {b.name: b.state for b in pool.backends}
        for name, state in now.items():
            before = self._states.get(name)
            if before == state:
                continue
            if before is None:
                self.emit("backend_added", backend=name, to=state)
                continue
            kind = "backend_down" if state in _DOWN else f"backend_{state}"
            self.emit(kind, backend=name, **{"from": before, "to": state})
        for name in self._states.keys() - now.keys():
            self.emit("backend_removed", backend=name, **{"from": self._states[name]})
        self._states = now


class AccessLog:
    """One JSON line per request; buffered, flushed by the balancer's timer and at stop."""

    def __init__(self, path: str) -> None:
        self.path = path
        # "-" is stdout, where the ready line goes too: both are JSON lines
        self._file: IO[str] = (
            sys.stdout if path == "-" else open(path, "a", encoding="utf-8")  # noqa: SIM115
        )

    def request(
        self, conn: ClientConnection, outcome: str, status: int | None, seconds: float
    ) -> None:
        head = conn.head
        backend = conn.tried[-1].name if conn.tried and head is not None else None
        ua = head.get(b"user-agent") if head is not None else None
        record = {
            "time": now_iso(),
            "conn": conn.conn_id,
            "req": conn.requests_seen,
            "client": f"{conn.peer.decode()}:{conn.peer_port}",
            "method": head.method.decode("latin-1") if head is not None else None,
            "path": head.target[:_MAX_PATH].decode("latin-1") if head is not None else None,
            "status": status,
            "outcome": outcome,
            "bytes": conn.sent,
            "duration": round(seconds, 6),
            "ttfb": round(conn.first_byte_at - conn.started_at, 6) if conn.first_byte_at else None,
            "backend": backend,
            "ua": ua.decode("latin-1") if ua is not None else None,
        }
        self._file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not sys.stdout:
            self._file.close()


def process_figures() -> dict[str, float]:
    """Open and allowed descriptors and resident memory of this process (Linux /proc)."""
    out: dict[str, float] = {}
    try:
        out["process_open_fds"] = float(len(os.listdir("/proc/self/fd")) - 1)  # minus listdir's own
        with open("/proc/self/statm") as f:
            out["process_resident_memory_bytes"] = float(
                int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            )
    except OSError:
        pass
    out["process_max_fds"] = float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    return out
