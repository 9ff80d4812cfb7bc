"""Operating the balancer: access log, event lines, process metrics (issue 22 item 8)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sim.core.events import EventLog
from tests.core.helpers import Client, backends, balancer, get, make_config, run, wait_for


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_access_log_one_json_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "access.log"

    async def main() -> list[tuple[int, int]]:
        async with backends(1, size=100) as bs:
            cfg = make_config(bs, log={"access": str(log)})
            async with balancer(cfg) as lb:
                port = lb.listen_port
                assert port is not None
                c = await Client.connect(port)
                for path in ("/a", "/b?x=1", "/c"):
                    c.send(get(path, "User-Agent: probe/1.0\r\n"))
                    r = await c.response()
                    assert r is not None and r.status == 200
                mine = c.writer.get_extra_info("sockname")[1]
                c.close()
                # a whole exchange on its own connection: what the client received, counted
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(get("/d", "Connection: close\r\n"))
                received = len(await reader.read())
                writer.close()
                lb.pool.drain("b0")  # nothing left: 503 from the balancer itself
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(get("/e", "Connection: close\r\n"))
                refused = len(await reader.read())
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"BAD\r\n\r\n")
                await reader.read()
                writer.close()
                return [(mine, received), (0, refused)]

    (mine, received), (_, refused) = run(main())
    lines = _lines(log)
    assert [x["path"] for x in lines] == ["/a", "/b?x=1", "/c", "/d", "/e", None]
    assert [x["status"] for x in lines] == [200, 200, 200, 200, 503, 400]
    assert [x["req"] for x in lines[:4]] == [1, 2, 3, 1]
    assert len({x["conn"] for x in lines[:3]}) == 1 and lines[3]["conn"] != lines[0]["conn"]
    assert lines[0]["client"] == f"127.0.0.1:{mine}"
    assert [x["ua"] for x in lines[:3]] == ["probe/1.0"] * 3
    assert [x["backend"] for x in lines] == ["b0"] * 4 + [None, None]
    assert lines[3]["bytes"] == received and lines[4]["bytes"] == refused
    assert all(x["method"] == "GET" for x in lines[:5]) and lines[5]["method"] is None
    for x in lines:
        datetime.fromisoformat(x["time"])
        assert 0 <= x["duration"] < 5
    assert 0 < lines[0]["ttfb"] <= lines[0]["duration"]
    assert [x["outcome"] for x in lines] == ["ok"] * 4 + ["503", "400"]


def test_event_lines_for_backend_down_up_timestamped() -> None:
    out = io.StringIO()

    async def main() -> None:
        async with backends(2) as bs:
            cfg = make_config(
                bs, health_check={"enabled": True, "interval": "50ms", "timeout": "50ms",
                                  "rise": 1, "fall": 1},
            )  # fmt: skip
            async with balancer(cfg) as lb:
                lb.events.stream = out
                bs[1].kill()
                await wait_for(lambda: "backend_down" in out.getvalue(), timeout=3)
                lb.pool.drain("b0")
                lb.pool.drain("b0", False)

    run(main())
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    down = [e for e in events if e["event"] == "backend_down"]
    assert down[0]["backend"] == "b1" and down[0]["from"] == "up" and down[0]["to"] == "down"
    kinds = [(e["event"], e.get("backend")) for e in events if e.get("backend") == "b0"]
    assert kinds == [("backend_draining", "b0"), ("backend_up", "b0")]
    for e in events:
        assert datetime.fromisoformat(e["time"]).tzinfo is not None


def test_event_log_takeover_lines() -> None:
    out = io.StringIO()
    log = EventLog(out)
    log.emit("takeover", node="lb-b", state="active", why="no heartbeat")
    line = json.loads(out.getvalue())
    assert line["event"] == "takeover" and line["state"] == "active"
    assert datetime.fromisoformat(line["time"]).tzinfo is not None


def test_process_metrics_follow_the_process(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = make_config([9], admin={"listen": "127.0.0.1:0", "token_file": str(tmp_path / "t")})
        async with balancer(cfg) as lb:
            before = lb.metrics_text()
            held = [socket.socket() for _ in range(50)]
            after = lb.metrics_text()
            for s in held:
                s.close()
            assert _metric(after, "process_open_fds") - _metric(before, "process_open_fds") == 50
            assert _metric(after, "process_max_fds") >= _metric(after, "process_open_fds")
            rss = _metric(after, "process_resident_memory_bytes")
            status = Path("/proc/self/status").read_text()
            vm_rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            assert 0.5 < rss / (vm_rss * 1024) < 2
            await asyncio.sleep(0.05)
            up = _metric(lb.metrics_text(), "failover_uptime_seconds")
            assert 0.05 <= up < 10
            assert _metric(after, "process_start_time_seconds") == round(lb.started_at, 3)

    run(main())


# HAProxy's HTTP log format (`option httplog`) as its configuration manual documents it
# (section "HTTP log format"): the syslog header, then the 16 fields; the two
# captured-header blocks appear only when captures are configured.
HTTPLOG = re.compile(
    r"(?P<month>[A-Z][a-z]{2}) (?P<day>[ \d]\d) \d\d:\d\d:\d\d (?P<host>\S+) "
    r"(?P<process>[\w.-]+)\[(?P<pid>\d+)\]: "
    r"(?P<client_ip>[\d.]+):(?P<client_port>\d+) "
    r"\[(?P<request_date>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] "
    r"(?P<frontend>\S+) (?P<backend>\S+)/(?P<server>\S+) "
    r"(?P<TR>-1|\d+)/(?P<Tw>-1|\d+)/(?P<Tc>-1|\d+)/(?P<Tr>-1|\d+)/(?P<Ta>\+?\d+) "
    r"(?P<status>-1|\d{3}) (?P<bytes>\+?\d+) (?P<req_cookie>\S+) (?P<res_cookie>\S+) "
    r"(?P<termination>[-A-Za-z]{4}) "
    r"(?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/(?P<retries>\+?\d+) "
    r"(?P<srv_queue>\d+)/(?P<backend_queue>\d+) "
    r"(?:\{(?P<req_headers>[^}]*)\} )?(?:\{(?P<res_headers>[^}]*)\} )?"
    r'"(?P<request>[^"]*)"'
)


def test_httplog_regex_reads_the_manuals_example() -> None:
    """The pattern the next test holds our lines to reads the manual's own example."""
    example = (
        "Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] "
        'http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"'
    )
    m = HTTPLOG.fullmatch(example)
    assert m is not None and m["req_headers"] == "1wt.eu" and m["res_headers"] == ""
    assert (m["server"], m["Tr"], m["termination"], m["request"]) == ("srv1", "69", "----", "GET /index.html HTTP/1.1")
    # docs/core.md gives readers (failover-sim fit's parser among them) this same pattern
    doc = (Path(__file__).resolve().parents[2] / "docs" / "core.md").read_text()
    assert HTTPLOG.pattern in doc.splitlines()


@contextlib.asynccontextmanager
async def _slow_backend(delay: float) -> AsyncIterator[int]:
    """Answers each request head after ``delay`` seconds (keep-alive)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def test_access_log_in_haproxys_http_log_format(tmp_path: Path) -> None:
    log = tmp_path / "haproxy.log"
    delay, gap = 0.2, 0.15

    async def main() -> tuple[int, int]:
        async with _slow_backend(delay) as port:
            cfg = make_config([port], name="www", log={"access": str(log), "access_format": "httplog"})
            async with balancer(cfg) as lb:
                lb_port = lb.listen_port
                assert lb_port is not None
                c = await Client.connect(lb_port)
                # the head in two pieces `gap` apart: TR counts from its first byte
                c.send(b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n")
                await asyncio.sleep(gap)
                c.send(b"\r\n")
                assert (r := await c.response()) is not None and r.status == 200
                c.send(get("/b"))  # on the pooled upstream connection
                assert (r := await c.response()) is not None and r.status == 200
                mine = c.writer.get_extra_info("sockname")[1]
                c.close()
                # a client that leaves while the backend is still working on its answer
                gone = await Client.connect(lb_port)
                gone.send(get("/gone"))
                await asyncio.sleep(delay / 4)
                gone.close()
                await asyncio.sleep(delay)
                lb.pool.drain("b0")  # no server left: 503 from the balancer itself
                reader, writer = await asyncio.open_connection("127.0.0.1", lb_port)
                writer.write(get("/e", "Connection: close\r\n"))
                refused = len(await reader.read())
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", lb_port)
                writer.write(b"BAD\r\n\r\n")
                await reader.read()
                writer.close()
                return mine, refused

    mine, refused = run(main())
    text = log.read_text().splitlines()
    assert len(text) == 5, text
    m = [HTTPLOG.fullmatch(line) for line in text]
    assert all(x is not None for x in m), text
    first, second, gone, nosrv, bad = m  # type: ignore[misc]
    for x in m:
        assert x["process"] == "failover-sim" and x["frontend"] == "www" and x["backend"] == "www"
        assert (x["req_cookie"], x["res_cookie"], x["srv_queue"], x["backend_queue"]) == ("-", "-", "0", "0")
        assert x["req_headers"] is None and x["res_headers"] is None  # nothing captured
        datetime.strptime(x["request_date"], "%d/%b/%Y:%H:%M:%S.%f")
    assert first["client_port"] == str(mine) and first["client_ip"] == "127.0.0.1"
    assert [x["request"] for x in m] == [
        "GET /a?x=1 HTTP/1.1", "GET /b HTTP/1.1", "GET /gone HTTP/1.1", "GET /e HTTP/1.1", "<BADREQ>"
    ]
    assert [x["status"] for x in m] == ["200", "200", "-1", "503", "400"]
    assert [x["server"] for x in m] == ["b0", "b0", "b0", "<NOSRV>", "<NOSRV>"]
    assert [x["termination"] for x in m] == ["----", "----", "CH--", "SC--", "PR--"]
    timers = [[int(x[k]) for k in ("TR", "Tw", "Tc", "Tr", "Ta")] for x in m]
    # what the test made take time is at least that long, in whole milliseconds
    assert timers[0][0] >= gap * 1000 and timers[0][3] >= delay * 1000
    assert timers[1][2] == 0  # a pooled connection: no connect
    for tr, tw, tc, tresp, ta in timers[:2]:
        # the manual: Ta covers them; each timer is rounded to the millisecond on its own
        # (four halves of a millisecond), and a CI run read Ta 352 against 151 + 0 + 1 + 201
        assert tw == 0 and tc >= 0 and ta >= tr + tw + tc + tresp - 2
    assert timers[2][3] == -1  # no response came
    assert timers[3][1:4] == [-1, -1, -1] and timers[4][:4] == [-1, -1, -1, -1]
    assert int(nosrv["bytes"]) == refused and int(first["bytes"]) > 0
    assert all(x["retries"] == "0" for x in m)
    # counters: the connection itself is one of the active ones
    assert int(first["actconn"]) >= 1 and int(first["srv_conn"]) == 1 and int(bad["srv_conn"]) == 0
    assert int(gone["Ta"]) >= delay / 4 * 1000


def test_httplog_captures_the_user_agent_as_haproxy_does_and_the_fit_reads_it(tmp_path: Path) -> None:
    """`log.capture_user_agent: N` writes the header's first N characters in a `{...}`
    block (HAProxy's `capture request header User-Agent len N`), `{}` when none was
    sent; `failover-sim fit`'s HAProxy parser reads the agent back."""
    from sim.fit.haproxy import parse_httplog

    log = tmp_path / "haproxy.log"
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"

    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config([bs[0].port], name="www",
                              log={"access": str(log), "access_format": "httplog", "capture_user_agent": 64})
            async with balancer(cfg) as lb:
                assert lb.listen_port is not None
                c = await Client.connect(lb.listen_port)
                for extra in (f"User-Agent: {chrome}\r\n", "", "User-Agent: odd{|}\"#\r\n"):
                    c.send(get("/", extra))
                    assert (r := await c.response()) is not None and r.status == 200
                c.close()

    run(main())
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    m = [HTTPLOG.fullmatch(line) for line in lines]
    assert all(x is not None for x in m), lines
    assert [x["req_headers"] for x in m] == [chrome[:64], "", "odd#7B#7C#7D#22#23"]  # type: ignore[index]
    assert parse_httplog(lines[0]).agent == chrome[:64]
    assert parse_httplog(lines[1]).agent == ""
