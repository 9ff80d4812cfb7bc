"""Static-address takeover between two `serve` processes on loopback, with kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.core.helpers import backends, get, request, run, runqueue_wait

VIP = "127.0.0.77"
INTERVAL = 0.2


def _free(kind: int, host: str) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _key(tmp: Path) -> Path:
    path = tmp / "takeover.key"
    if not path.exists():
        path.write_bytes(os.urandom(32).hex().encode())
        path.chmod(0o600)
    return path


async def _forge_heartbeats(port: int, stop: asyncio.Event) -> int:
    """What an unprivileged local user sends to hold the standby passive; how many."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    plain = {"v": 1, "type": "heartbeat", "state": "active", "node": "lb-a", "prio": 200}
    try:
        while not stop.is_set():
            sent += 1
            s.sendto(json.dumps({**plain, "seq": sent}).encode(), ("127.0.0.1", port))
            s.sendto(b"FST1" + os.urandom(32) + json.dumps(plain).encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.02)
    finally:
        s.close()
    return 2 * sent


def _config(
    tmp: Path, name: str, role: str, vport: int, me: int, peer: int, backend: int, priority: int
) -> Path:
    data: dict[str, Any] = {
        "name": name,
        "listen": f"{VIP}:{vport}",
        "backends": [{"name": "web", "address": f"127.0.0.1:{backend}"}],
        "health_check": {"enabled": False},
        "admin": {"listen": "127.0.0.1:0", "token_file": str(tmp / f"{name}.token")},
        "takeover": {
            "role": role,
            "heartbeat_listen": f"127.0.0.1:{me}",
            "peer": f"127.0.0.1:{peer}",
            "interval": f"{int(INTERVAL * 1000)}ms",
            "priority": priority,
            "key_file": str(_key(tmp)),
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _start(
    config: Path, ready: Path, stderr: Path | None = None
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    ready.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with open(stderr or os.devnull, "w") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sim.core.cli", "serve", str(config), "--ready-file", str(ready),
            stdout=asyncio.subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    while not ready.exists():
        if proc.returncode is not None:
            raise AssertionError(f"serve exited with {proc.returncode}")
        await asyncio.sleep(0.02)
    return proc, json.loads(ready.read_text())


async def _admin(info: dict[str, Any], method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    token = Path(info["token_file"]).read_text().strip()
    port = int(info["admin"].rsplit(":", 1)[1])
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    r, _ = await request(port, raw)
    assert r is not None and r.status == 200, r and r.body
    return json.loads(r.body)


@contextlib.asynccontextmanager
async def _pair(tmp: Path, errors: bool = False) -> AsyncIterator[tuple[int, list[asyncio.subprocess.Process], dict[str, Any], dict[str, Any]]]:
    """An active (lb-a) and a standby (lb-b) on VIP before one backend: the service
    port, their processes (more may be appended; all are killed at the end) and
    their ready files' contents."""
    vport = _free(socket.SOCK_STREAM, VIP)
    ha, hb = _free(socket.SOCK_DGRAM, "127.0.0.1"), _free(socket.SOCK_DGRAM, "127.0.0.1")
    procs: list[asyncio.subprocess.Process] = []
    async with backends(1) as bs:
        ca = _config(tmp, "lb-a", "active", vport, ha, hb, bs[0].port, 200)
        cb = _config(tmp, "lb-b", "standby", vport, hb, ha, bs[0].port, 100)
        try:
            a, ia = await _start(ca, tmp / "a.ready", tmp / "a.err" if errors else None)
            procs.append(a)
            b, ib = await _start(cb, tmp / "b.ready")
            procs.append(b)
            yield vport, procs, ia, ib
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()


def test_kill_9_active_standby_takes_the_address_within_bound(tmp_path: Path) -> None:
    async def main() -> None:
        vport = _free(socket.SOCK_STREAM, VIP)
        ha, hb = _free(socket.SOCK_DGRAM, "127.0.0.1"), _free(socket.SOCK_DGRAM, "127.0.0.1")
        procs: list[asyncio.subprocess.Process] = []
        async with backends(1) as bs:
            bport = bs[0].port
            ca = _config(tmp_path, "lb-a", "active", vport, ha, hb, bport, 200)
            cb = _config(tmp_path, "lb-b", "standby", vport, hb, ha, bport, 100)
            try:
                a, ia = await _start(ca, tmp_path / "a.ready")
                procs.append(a)
                b, ib = await _start(cb, tmp_path / "b.ready")
                procs.append(b)
                assert ia["state"] == "active" and ib["state"] == "standby"
                r, _ = await request(vport, get(), host=VIP)
                assert r is not None and r.status == 200
                await asyncio.sleep(3 * INTERVAL)  # the standby has heard heartbeats

                stop_forging = asyncio.Event()
                forger = asyncio.create_task(_forge_heartbeats(hb, stop_forging))
                a.send_signal(signal.SIGKILL)
                t0 = time.monotonic()
                await a.wait()
                while True:
                    try:
                        r, _ = await request(vport, get(), host=VIP, check_closed=False)
                        if r is not None and r.status == 200:
                            break
                    except OSError:
                        pass
                    await asyncio.sleep(0.005)
                took = time.monotonic() - t0
                stop_forging.set()
                forged = await forger
                master_down = 3 * INTERVAL + (256 - 100) * INTERVAL / 256  # RFC 5798
                print(
                    f"\ntakeover after kill -9: {took * 1000:.0f} ms (Master_Down_Interval {master_down * 1000:.0f} ms)"
                )
                # the last heartbeat left up to one interval before the kill
                assert master_down - INTERVAL - 0.05 <= took <= master_down + 0.15

                # the old active comes back: the address is held, so it stays standby
                a2, ia2 = await _start(ca, tmp_path / "a2.ready")
                procs.append(a2)
                assert ia2["state"] == "standby"
                status = await _admin(ib, "GET", "/status")
                assert status["takeover"]["state"] == "active"
                dropped = status["takeover"]["dropped"]
                assert dropped["malformed"] + dropped["forged"] == forged > 0

                # reassociate on purpose, with an injected delay of 100 ms
                moved = await _admin(ia2, "POST", "/takeover", b'{"delay": "100ms"}')
                assert moved["moved"] and moved["state"] == "active" and moved["seconds"] >= 0.1
                status = await _admin(ib, "GET", "/status")
                assert status["takeover"]["state"] == "standby"
                r, _ = await request(vport, get(), host=VIP)
                assert r is not None and r.status == 200
            finally:
                for p in procs:
                    if p.returncode is None:
                        p.kill()
                        await p.wait()

    run(main(), timeout=20)  # a hang guard: three interpreters start on a shared 2-core machine


async def _served(vport: int, wait: float) -> bool:
    """One request to the virtual address, given up after ``wait`` (a stalled holder never answers)."""
    try:
        async with asyncio.timeout(wait):
            r, _ = await request(vport, get(), host=VIP, check_closed=False)
            return r is not None and r.status == 200
    except (TimeoutError, OSError):
        return False


def test_sigstop_active_loses_the_address_and_steps_down_on_return(tmp_path: Path) -> None:
    """Loopback mode: the stopped active still holds its socket; the standby takes the
    address anyway within Master_Down_Interval, and the active yields when it resumes."""

    async def main() -> None:
        vport = _free(socket.SOCK_STREAM, VIP)
        ha, hb = _free(socket.SOCK_DGRAM, "127.0.0.1"), _free(socket.SOCK_DGRAM, "127.0.0.1")
        procs: list[asyncio.subprocess.Process] = []
        async with backends(1) as bs:
            ca = _config(tmp_path, "lb-a", "active", vport, ha, hb, bs[0].port, 200)
            cb = _config(tmp_path, "lb-b", "standby", vport, hb, ha, bs[0].port, 100)
            try:
                a, ia = await _start(ca, tmp_path / "a.ready", tmp_path / "a.err")
                procs.append(a)
                b, ib = await _start(cb, tmp_path / "b.ready")
                procs.append(b)
                assert ia["state"] == "active" and ib["state"] == "standby"
                await asyncio.sleep(3 * INTERVAL)

                # What a loaded machine adds: the time the standby (whose timer
                # takes over) and this test's loop (which probes) spent runnable
                # but waiting for a CPU. Seen under load: a takeover later than
                # the bound by that much; a quiet machine adds nothing.
                me = threading.get_native_id()

                def load() -> float:
                    return runqueue_wait(b.pid) + runqueue_wait(thread=me)

                a.send_signal(signal.SIGSTOP)
                t0, load0 = time.monotonic(), load()
                while not await _served(vport, 0.1):
                    assert time.monotonic() - t0 < 3.0 + load() - load0, "the standby never took over"
                took = time.monotonic() - t0
                waited = load() - load0
                master_down = 3 * INTERVAL + (256 - 100) * INTERVAL / 256
                print(
                    f"\ntakeover after SIGSTOP: {took * 1000:.0f} ms (Master_Down_Interval {master_down * 1000:.0f} ms; "
                    f"{waited * 1000:.0f} ms waiting for a CPU)"
                )
                # load only makes it later: the lower bound stands as it is
                assert master_down - INTERVAL - 0.05 <= took <= master_down + 0.25 + waited
                # while it stays stopped, no new connection goes to it (a connection to
                # the stopped node is never answered: any wait tells them apart)
                for i in range(20):
                    assert await _served(vport, 2.0), f"request {i} after the takeover not served"

                resumed = time.time()
                a.send_signal(signal.SIGCONT)
                a_load0 = runqueue_wait(a.pid)  # a stopped process is not runnable: it waited for none
                async with asyncio.timeout(3):
                    while (await _admin(ia, "GET", "/status"))["takeover"]["state"] != "standby":
                        await asyncio.sleep(0.02)
                a_waited = runqueue_wait(a.pid) - a_load0
                assert (await _admin(ib, "GET", "/status"))["takeover"]["state"] == "active"
                assert await _served(vport, 0.5)
            finally:
                for p in procs:
                    if p.returncode is None:
                        p.send_signal(signal.SIGCONT)
                        p.kill()
                        await p.wait()
        events = [
            json.loads(x)
            for x in (tmp_path / "a.err").read_text().splitlines()
            if x.startswith("{")
        ]
        stepped = [e for e in events if e["event"] == "takeover" and e["state"] == "standby"]
        assert len(stepped) == 1
        # two holders for at most about one heartbeat interval after it resumed
        at = datetime.fromisoformat(stepped[0]["time"]).timestamp()
        print(f"stepped down {1000 * (at - resumed):.0f} ms after SIGCONT ({a_waited * 1000:.0f} ms waiting for a CPU)")
        assert at - resumed <= INTERVAL + 0.1 + a_waited

    run(main(), timeout=20)


def test_connections_to_the_moved_address_are_reset_once_it_moves(tmp_path: Path) -> None:
    """An address that moves takes its open connections with it: the old holder resets
    a client's kept-alive connection (the new holder would answer its next segment with
    a reset), so the client's next request on it fails and a new connection reaches the
    new holder. Before, the old holder went on serving it (the lab's eip_remap counted
    those requests at the old balancer long after the move)."""

    async def main() -> None:
        async with _pair(tmp_path) as (vport, _, ia, ib):
            reader, writer = await asyncio.open_connection(VIP, vport)
            keep = b"GET / HTTP/1.1\r\nHost: www\r\n\r\n"
            writer.write(keep)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            assert (await _admin(ia, "GET", "/status"))["active_connections"] >= 1

            moved = await _admin(ib, "POST", "/takeover", b"{}")
            assert moved["moved"] and moved["state"] == "active"
            deadline = time.monotonic() + 5
            while (await _admin(ia, "GET", "/status"))["takeover"]["state"] != "standby":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            # the kept-alive connection was reset: the next request on it gets no answer
            writer.write(keep)
            try:
                reply = await asyncio.wait_for(reader.read(1024), 5)
            except (ConnectionResetError, BrokenPipeError):
                reply = b""
            assert reply == b""
            writer.close()
            assert (await _admin(ia, "GET", "/status"))["active_connections"] == 0
            r, _ = await request(vport, get(), host=VIP)
            assert r is not None and r.status == 200
            assert (await _admin(ib, "GET", "/status"))["takeover"]["state"] == "active"

    run(main(), timeout=20)
