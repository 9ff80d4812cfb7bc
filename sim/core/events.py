"""What an operator reads: event lines, the access log, process figures.

Both logs are JSON lines with a UTC ISO 8601 ``time``, so ``jq`` and any log
shipper read them without a pattern (docs/core.md, "Logs").

- Event lines (stderr): a backend changing state, a takeover, a reload.
- The access log (``log.access``, off by default): one line per request,
  written when its exchange ends, whatever way it ends; JSON lines, or
  HAProxy's HTTP log format (``log.access_format: httplog``) for tools that
  read HAProxy's logs (``failover-sim fit``, log shippers).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import sys
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.core.l7 import ClientConnection
    from sim.core.pool import BackendPool

__all__ = ["AccessLog", "EventLog", "HttpLog", "now_iso", "open_access_log", "process_figures"]

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

    format = "json"

    def __init__(self, path: str) -> None:
        self.path = path
        # "-" is stdout, where the ready line goes too
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


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# HAProxy's log encoding: what would break the line's fields goes out as #XX
_ENCODE = {c: f"#{c:02X}" for c in (*range(0x20), *range(0x7F, 0x100), 0x20, 0x22, 0x23)}


def _encode(raw: bytes) -> str:
    return "".join(_ENCODE.get(c) or chr(c) for c in raw)


# A captured header: HAProxy encodes control characters, '#', and the block's
# own '{', '|' and '}' as #XX (its manual, "Capturing HTTP headers"), and, as
# for the request, '"' so the line's quoted request stays where a parser looks.
_CAPTURE_ENCODE = {c: f"#{c:02X}" for c in [*range(0x20), 0x7F, *range(0x80, 0x100), 0x22, 0x23, 0x7B, 0x7C, 0x7D]}


def _encode_capture(raw: bytes) -> str:
    return "".join(_CAPTURE_ENCODE.get(c) or chr(c) for c in raw)


def _ms(seconds: float) -> int:
    return int(seconds * 1000 + 0.5)


def termination_state(conn: ClientConnection, outcome: str, status: int | None) -> str:
    """HAProxy's four-character ``%tsc``: who ended the session (C client, S server,
    P proxy, c/s client/server timeout, - normally), in which phase (R request,
    C connect, H response headers, D data, - none), and two cookie places ("--": this
    balancer sets no persistence cookie)."""
    if outcome in ("ok", "backend_5xx"):
        return "----"
    if outcome == "client_closed":
        phase = "D" if conn.response_started else ("H" if conn.attached_at else "C")
        return f"C{phase}--"
    if outcome == "client_timeout":
        return "cD--"
    if outcome.endswith("_midstream"):
        return "sD--" if outcome.startswith("504") else "SD--"
    if outcome == "504":
        return "sH--"
    if outcome == "502":
        return "SH--"
    if outcome == "503":
        return "SC--"
    if status == 408:
        return "cR--"
    return "PR--"  # refused by the balancer: a bad or oversized request


class HttpLog(AccessLog):
    """HAProxy's HTTP log format (``option httplog``), as a syslog daemon files it:

        MMM DD HH:MM:SS HOST failover-sim[PID]: CLIENT_IP:PORT [DD/MMM/YYYY:HH:MM:SS.mmm]
        FRONTEND BACKEND/SERVER TR/Tw/Tc/Tr/Ta STATUS BYTES - - TERMINATION
        ACTCONN/FECONN/BECONN/SRVCONN/RETRIES 0/0 "METHOD URI VERSION"

    on one line (HAProxy's log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta
    %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r" after the syslog
    header). No headers are captured, so the two ``{...}`` blocks are absent, as in
    HAProxy without ``capture`` statements; no cookie either ("- -"). Times in local
    time, timers in milliseconds, -1 for a phase never reached.
    """

    format = "httplog"

    def __init__(self, path: str, name: str, capture_user_agent: int = 0) -> None:
        super().__init__(path)
        self.name = name
        self.capture_user_agent = capture_user_agent
        self._prefix = f" {socket.gethostname().split('.')[0] or 'localhost'} failover-sim[{os.getpid()}]: "

    def request(
        self, conn: ClientConnection, outcome: str, status: int | None, seconds: float
    ) -> None:
        proxy = conn.proxy
        now = proxy.clock.time()
        wall = time.time()
        begun = conn.begun_at or now
        t = time.localtime(wall)
        when = time.localtime(wall - (now - begun))
        ms = int((wall - (now - begun)) % 1 * 1000)
        head = conn.head
        tried = conn.tried if head is not None else ()
        server = tried[-1] if tried else None
        tr = _ms(conn.started_at - begun) if head is not None else -1
        tw = 0 if server is not None else -1
        tc = _ms(conn.attached_at - conn.dispatched_at) if conn.attached_at else -1
        resp = _ms(conn.first_byte_at - conn.attached_at) if conn.first_byte_at and conn.attached_at else -1
        active = len(proxy.connections) + (conn not in proxy.connections)
        # this exchange is no longer in its backend's count when it ends; HAProxy logs it in
        mine = 1 if server is not None else 0
        beconn = sum(b.outstanding for b in proxy.pool.backends) + mine
        srvconn = server.outstanding + mine if server is not None else 0
        if head is not None:
            request = f"{_encode(head.method)} {_encode(head.target[:_MAX_PATH])} {_encode(head.version)}"
        else:
            request = "<BADREQ>"
        if self.capture_user_agent:
            agent = head.get(b"user-agent") if head is not None else None
            # HAProxy writes a header never sent as an empty capture: "{}"
            captured = "{" + _encode_capture((agent or b"")[: self.capture_user_agent]) + "} "
        else:
            captured = ""
        self._file.write(
            f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f"{self._prefix}{conn.peer.decode()}:{conn.peer_port} "
            f"[{when.tm_mday:02d}/{_MONTHS[when.tm_mon - 1]}/{when.tm_year}:"
            f"{when.tm_hour:02d}:{when.tm_min:02d}:{when.tm_sec:02d}.{ms:03d}] "
            f"{self.name} {self.name}/{server.name if server is not None else '<NOSRV>'} "
            f"{tr}/{tw}/{tc}/{resp}/{_ms(now - begun)} {status if status is not None else -1} {conn.sent} "
            f"- - {termination_state(conn, outcome, status)} "
            f"{active}/{active}/{beconn}/{srvconn}/{max(len(tried) - 1, 0)} 0/0 "
            f'{captured}"{request}"\n'
        )


def open_access_log(path: str, fmt: str, name: str, capture_user_agent: int = 0) -> AccessLog:
    return HttpLog(path, name, capture_user_agent) if fmt == "httplog" else AccessLog(path)


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
