"""Operating the balancer: access log, event lines, process metrics (issue 22 item 8)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
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
