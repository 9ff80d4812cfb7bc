"""Authenticated takeover: forged, stale, replayed and malformed datagrams change nothing.

Two in-process ``Takeover`` nodes exchange real UDP datagrams on loopback; an
attacker socket sends what an unprivileged local user can send. Holding the
address is a flag here (the kernel's one-holder rule is tested with real
processes in test_takeover.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from sim.core.config import ConfigError, TakeoverConfig
from sim.core.private import read_key
from sim.core.takeover import Takeover, seal
from tests.core.helpers import run, wait_for

INTERVAL = 0.1


def _port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _key(tmp: Path, name: str = "key", data: bytes = b"k" * 32, mode: int = 0o600) -> Path:
    path = tmp / name
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


class Node:
    """A takeover node whose 'address' is a flag, with its loop's unhandled errors recorded."""

    def __init__(self, cfg: TakeoverConfig, name: str, key: bytes) -> None:
        self.holding = False
        self.takeover = Takeover(cfg, name, self._bind, self._release, key=key, log=lambda m: None)

    async def _bind(self) -> None:
        self.holding = True

    def _release(self) -> None:
        self.holding = False


def _cfg(role: str, me: int, peer: int, key_file: Path, priority: int = 100) -> TakeoverConfig:
    return TakeoverConfig.model_validate(
        {
            "role": role,
            "heartbeat_listen": f"127.0.0.1:{me}",
            "peer": f"127.0.0.1:{peer}",
            "interval": f"{int(INTERVAL * 1000)}ms",
            "priority": priority,
            "key_file": str(key_file),
        }
    )


def _loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    return errors


def test_forged_and_replayed_heartbeats_do_not_keep_the_standby_passive(tmp_path: Path) -> None:
    key_file = _key(tmp_path)
    key = read_key(str(key_file))

    async def main() -> None:
        errors = _loop_errors()
        pa, pb = _port(), _port()
        a = Node(_cfg("active", pa, pb, key_file, 200), "lb-a", key)
        b = Node(_cfg("standby", pb, pa, key_file, 100), "lb-b", key)
        await a.takeover.start()
        await b.takeover.start()
        assert a.holding and not b.holding
        await asyncio.sleep(4 * INTERVAL)
        assert b.takeover.peer_state == "active" and not b.holding
        last_seq = a.takeover.seq
        a.takeover.stop()  # the active dies
        died = time.monotonic()

        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        wrong = b"w" * 32
        try:
            while not b.holding:
                now = time.time()
                plain = {"v": 1, "node": "lb-a", "prio": 200, "type": "heartbeat",
                         "state": "active", "seq": 10**9}  # fmt: skip
                fields = {"type": "heartbeat", "state": "active", "node": "lb-a", "prio": 200,
                          "epoch": a.takeover.epoch, "ts": now}  # fmt: skip
                for datagram in (
                    json.dumps(plain).encode(),  # what was accepted before: no MAC at all
                    seal(wrong, {**fields, "seq": 10**9}),  # a MAC with the wrong key
                    seal(key, {**fields, "seq": last_seq}),  # a replay of a seen sequence number
                    seal(key, {**fields, "seq": 10**9, "ts": now - 60}),  # an old one
                ):
                    attacker.sendto(datagram, ("127.0.0.1", pb))
                await asyncio.sleep(INTERVAL / 4)
                assert time.monotonic() - died < 3 * b.takeover.cfg.master_down, "still passive"
        finally:
            attacker.close()
        took = time.monotonic() - died
        assert took <= b.takeover.cfg.master_down + 0.2
        dropped = b.takeover.dropped
        assert dropped["malformed"] > 0 and dropped["forged"] > 0
        assert dropped["replayed"] > 0 and dropped["stale"] > 0
        b.takeover.stop()
        assert errors == []

    run(main(), timeout=8)


def test_forged_stale_and_replayed_releases_change_nothing(tmp_path: Path) -> None:
    key_file = _key(tmp_path)
    key = read_key(str(key_file))

    async def main() -> None:
        errors = _loop_errors()
        pa, pb = _port(), _port()
        a = Node(_cfg("active", pa, pb, key_file, 200), "lb-a", key)
        await a.takeover.start()
        assert a.holding
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", pb))  # the attacker sits on the peer's (dead) port
        epoch = time.time_ns()

        def release(k: bytes, seq: int, **over: Any) -> bytes:
            fields = {"type": "release", "node": "lb-b", "prio": 100, "epoch": epoch,
                      "seq": seq, "ts": time.time()}  # fmt: skip
            return seal(k, {**fields, **over})

        try:
            for datagram in (
                b'{"type": "release", "node": "lb-b"}',  # unauthenticated, as accepted before
                release(b"w" * 32, 1),  # the wrong key
                release(key, 1, ts=time.time() - 60),  # stale: sent a minute ago
                release(key, 2, node="lb-a"),  # our own message reflected back
                release(key, 3, prio="high"),  # malformed: a non-numeric priority
                b"\x00" * 40,
                b"",
            ):
                s.sendto(datagram, ("127.0.0.1", pa))
            await asyncio.sleep(3 * INTERVAL)
            assert a.holding and a.takeover.state == "active"
            assert sum(a.takeover.dropped.values()) == 7

            s.sendto(release(key, 5), ("127.0.0.1", pa))  # genuine: the control
            await wait_for(lambda: not a.holding, timeout=2)
            assert a.takeover.state == "standby"
            # replaying the genuine release once the node is active again changes nothing
            await a.takeover._take("test")  # noqa: SLF001
            assert a.holding
            s.sendto(release(key, 5), ("127.0.0.1", pa))
            await asyncio.sleep(3 * INTERVAL)
            assert a.holding and a.takeover.dropped["replayed"] == 2
        finally:
            s.close()
            a.takeover.stop()
        assert errors == []

    run(main(), timeout=8)


def test_key_file_refused_when_others_can_read_it(tmp_path: Path) -> None:
    readable = _key(tmp_path, "open", mode=0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_key(str(readable))
    short = _key(tmp_path, "short", data=b"abc")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        read_key(str(short))
    with pytest.raises(ValueError, match="no such file"):
        read_key(str(tmp_path / "missing"))
    link = tmp_path / "link"
    link.symlink_to(_key(tmp_path, "target"))
    assert read_key(str(link)) == b"k" * 32  # a symlink the owner made is fine: perms are checked


def test_takeover_config_requires_a_key_file() -> None:
    from sim.core.config import config_from_data

    data = {
        "listen": "127.0.0.77:8080",
        "takeover": {"role": "active", "heartbeat_listen": "127.0.0.1:7101",
                     "peer": "127.0.0.1:7102"},
    }  # fmt: skip
    with pytest.raises(ConfigError) as e:
        config_from_data(data, "lb.yaml")
    assert e.value.lines == ["lb.yaml: takeover.key_file: required field is missing"]


def test_serve_check_refuses_a_readable_key_file_one_line_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    key = _key(tmp_path, mode=0o640)
    config = tmp_path / "lb.yaml"
    config.write_text(yaml.safe_dump({
        "listen": "127.0.0.77:8080",
        "takeover": {"role": "active", "heartbeat_listen": "127.0.0.1:7101",
                     "peer": "127.0.0.1:7102", "key_file": str(key)},
    }))  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-m", "sim.core.cli", "serve", str(config), "--check"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert p.returncode == 2
    line = next(i for i, t in enumerate(config.read_text().splitlines(), 1) if "key_file:" in t)
    assert p.stderr == (
        f"{config}:{line}: takeover.key_file: {key}: mode 0640 lets other users read the key; chmod 600 it\n"
    )
    key.chmod(0o600)
    p = subprocess.run(
        [sys.executable, "-m", "sim.core.cli", "serve", str(config), "--check"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
