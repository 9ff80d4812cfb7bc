"""SIGHUP reloads a running `serve` under load: no failed request, listener kept,
a broken configuration logged and the running one kept (issue 22 item 8)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.core.helpers import Client, backends, get, run


def _write(path: Path, backend_ports: dict[str, int], **extra: Any) -> None:
    data = {
        "name": "lb",
        "listen": "127.0.0.1:0",
        "backends": [{"name": n, "address": f"127.0.0.1:{p}"} for n, p in backend_ports.items()],
        "health_check": {"enabled": False},
        "admin": None,
        **extra,
    }
    path.write_text(yaml.safe_dump(data))


class Load:
    """Clients in a loop on kept-alive connections; every answer recorded."""

    def __init__(self, port: int, clients: int = 6) -> None:
        self.port = port
        self.seen: list[tuple[int, str | None]] = []
        self.failed: list[str] = []
        self.stop = asyncio.Event()
        self.tasks = [asyncio.create_task(self._client()) for _ in range(clients)]

    async def _client(self) -> None:
        c = await Client.connect(self.port)
        while not self.stop.is_set():
            c.send(get())
            r = await c.response()
            if r is None or r.status != 200:
                self.failed.append("closed" if r is None else str(r.status))
                c.close()
                c = await Client.connect(self.port)
                continue
            self.seen.append((r.status, r.header("X-Backend")))
            if r.header("Connection") == "close":
                c.close()
                c = await Client.connect(self.port)
            await asyncio.sleep(0.002)
        c.close()

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


def test_sighup_reload_under_load_no_failed_request(tmp_path: Path) -> None:
    config = tmp_path / "lb.yaml"
    ready = tmp_path / "ready"

    async def main() -> str:
        async with backends(2) as (a, b):
            _write(config, {"b0": a.port})
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sim.core.cli", "serve", str(config), "--ready-file", str(ready),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
            try:
                while not ready.exists():
                    assert proc.returncode is None
                    await asyncio.sleep(0.02)
                port = int(json.loads(ready.read_text())["listen"].rsplit(":", 1)[1])
                load = Load(port)
                await asyncio.sleep(0.4)

                _write(config, {"b0": a.port, "b1": b.port})  # add a backend
                proc.send_signal(signal.SIGHUP)
                await asyncio.sleep(0.6)
                config.write_text("listen: 127.0.0.1:0\nbackends: [{name: b0}]\n")  # broken
                proc.send_signal(signal.SIGHUP)
                await asyncio.sleep(0.4)
                _write(config, {"b1": b.port})  # only the new one
                proc.send_signal(signal.SIGHUP)
                await asyncio.sleep(0.8)
                mark = len(load.seen)
                await asyncio.sleep(0.4)
                await load.finish()

                assert load.failed == [] and len(load.seen) > 100
                backends_seen = [name for _, name in load.seen]
                assert "b1" in backends_seen[:mark] and "b0" in backends_seen[:mark]
                # after the last reload only b1 serves, on the same listening port
                assert set(backends_seen[mark:]) == {"b1"}
                assert proc.returncode is None
            finally:
                proc.send_signal(signal.SIGTERM)
                _, err = await proc.communicate()
            return err.decode()

    err = run(main(), timeout=20)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    kinds = [e["event"] for e in events if e["event"].startswith("reload")]
    assert kinds == ["reloaded", "reload_failed", "reloaded"], err
    failed = next(e for e in events if e["event"] == "reload_failed")
    # line 2 holds backends[0], the item missing its address
    assert failed["errors"] == [f"{config}:2: backends[0].address: required field is missing"]


def test_reload_refuses_what_needs_a_restart(tmp_path: Path) -> None:
    from sim.core.config import config_from_data
    from sim.core.server import Balancer, ReloadError

    async def main() -> None:
        base = {"listen": "127.0.0.1:0", "admin": None,
                "backends": [{"name": "b0", "address": "127.0.0.1:9"}]}  # fmt: skip
        lb = Balancer(config_from_data(base))
        await lb.start()
        try:
            port = lb.listen_port
            moved = config_from_data({**base, "listen": "127.0.0.1:1"})
            try:
                await lb.reload(moved)
                raise AssertionError("reloaded a listen change")
            except ReloadError as e:
                assert str(e) == "listen: cannot change on reload; restart to change it"
            assert lb.listen_port == port and lb.config.listen.port == 0
            timeouts = config_from_data({**base, "timeouts": {"server": "5s"}})
            await lb.reload(timeouts)
            assert lb.config.timeouts.server == 5.0 and lb.listen_port == port
        finally:
            await lb.stop()

    run(main())
