"""The admin surface against a local attacker: token file, names, floods, bad bodies.

The attacker is another local user: as root, the tests give their files to
uid 65534 (nobody); without root the ownership cases are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from sim.core.metrics import label_value
from sim.core.private import PrivateFileError, private_dir
from tests.core.helpers import backends, balancer, get, make_config, request, run

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


async def _call(
    port: int, method: str, path: str, token: str | None = None, body: bytes = b""
) -> tuple[int, bytes, bytes]:
    """Status, status line and body of one admin request."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = await reader.read()
    writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    line = head.split(b"\r\n", 1)[0]
    return int(line.split()[1]), line, payload


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TMPDIR pointed at a fresh directory, no runtime dir: where the default token goes."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_default_token_in_a_private_dir_0600_removed_on_exit(private_tmp: Path) -> None:
    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config(bs, admin={"listen": "127.0.0.1:0"})
            async with balancer(cfg) as lb:
                path = Path(lb.admin.token_file)
                assert path.parent == private_tmp / f"failover-sim-{os.geteuid()}"
                assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700
                assert stat.S_IMODE(path.lstat().st_mode) == 0o600
                token = path.read_text().strip()
                port = int(lb.admin.address.rsplit(":", 1)[1])
                status, _, _ = await _call(port, "POST", "/backends/b0/drain", token)
                assert status == 200
            assert not path.exists()

    run(main())


def test_token_refuses_a_planted_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "lb.admin-token"
    link.symlink_to(victim)

    async def main() -> None:
        cfg = make_config([9], admin={"listen": "127.0.0.1:0", "token_file": str(link)})
        with pytest.raises(PrivateFileError, match="symlink"):
            async with balancer(cfg):
                pass

    run(main())
    assert victim.read_text() == "precious\n" and link.is_symlink()


@as_root
def test_token_refuses_a_file_another_user_created(tmp_path: Path) -> None:
    planted = tmp_path / "lb.admin-token"
    planted.write_text("")
    os.chmod(planted, 0o666)
    os.chown(planted, NOBODY, NOBODY)

    async def main() -> None:
        cfg = make_config([9], admin={"listen": "127.0.0.1:0", "token_file": str(planted)})
        with pytest.raises(PrivateFileError, match="not written by failover-sim"):
            async with balancer(cfg):
                pass

    run(main())
    assert planted.read_text() == ""  # the token never went where the attacker reads


@as_root
def test_private_dir_refused_when_another_user_made_it_first(private_tmp: Path) -> None:
    squatted = private_tmp / f"failover-sim-{os.geteuid()}"
    squatted.mkdir(mode=0o700)
    os.chown(squatted, NOBODY, NOBODY)
    with pytest.raises(PrivateFileError, match="owned by uid 65534"):
        private_dir()


def test_token_refused_in_a_directory_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # like /tmp

    async def main() -> None:
        cfg = make_config([9], admin={"listen": "127.0.0.1:0", "token_file": str(shared / "t")})
        with pytest.raises(PrivateFileError, match="lets other users create files"):
            async with balancer(cfg):
                pass

    run(main())
    assert list(shared.iterdir()) == []


def test_a_stale_token_of_our_own_is_replaced(tmp_path: Path) -> None:
    """A balancer killed with -9 leaves its token; restarting must work."""
    stale = tmp_path / "lb.admin-token"
    stale.write_text("old\n")
    os.chmod(stale, 0o600)

    async def main() -> None:
        cfg = make_config([9], admin={"listen": "127.0.0.1:0", "token_file": str(stale)})
        async with balancer(cfg) as lb:
            assert stale.read_text().strip() == lb.admin.token != "old"

    run(main())


def test_serve_refuses_symlinked_token_one_line_exit_2(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "t"
    link.symlink_to(victim)
    config = tmp_path / "lb.yaml"
    config.write_text(yaml.safe_dump({
        "listen": "127.0.0.1:0", "backends": [{"name": "w", "address": "127.0.0.1:9"}],
        "admin": {"listen": "127.0.0.1:0", "token_file": str(link)},
    }))  # fmt: skip
    p = subprocess.run(
        [sys.executable, "-m", "sim.core.cli", "serve", str(config)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr == (
        f"{config}: admin.token_file: {link}: is a symlink; refusing to follow it (remove it)\n"
    )
    assert victim.read_text() == "precious\n"


def test_admin_names_validated_bodies_shaped_reasons_phrased(tmp_path: Path) -> None:
    token_file = tmp_path / "t"

    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config(bs, admin={"listen": "127.0.0.1:0", "token_file": str(token_file)})
            async with balancer(cfg) as lb:
                port = int(lb.admin.address.rsplit(":", 1)[1])
                token = token_file.read_text().strip()
                address = f"127.0.0.1:{bs[0].port}"
                injected = 'x"} 1\nfailover_listening{a="'
                for body in (
                    json.dumps({"name": injected, "address": address}),
                    json.dumps({"name": "a b", "address": address}),
                    json.dumps({"name": "x" * 200, "address": address}),
                    "5", "[]", '"web"', "null",
                    json.dumps({"name": "ok", "address": 5}),
                ):  # fmt: skip
                    status, line, _ = await _call(port, "POST", "/backends", token, body.encode())
                    assert (status, line) == (400, b"HTTP/1.1 400 Bad Request"), body
                for body in ("5", '{"delay": 5}', '{"delay": [1]}'):
                    status, _, _ = await _call(port, "POST", "/takeover", token, body.encode())
                    assert status in (400, 409), body
                status, line, text = await _call(port, "GET", "/metrics")
                assert line == b"HTTP/1.1 200 OK"
                assert b"failover_listening{" not in text
                status, line, _ = await _call(port, "GET", "/nope")
                assert line == b"HTTP/1.1 404 Not Found"
                status, line, _ = await _call(port, "POST", "/backends/b0/drain")
                assert line == b"HTTP/1.1 401 Unauthorized"

    run(main())


def test_metric_label_values_escaped() -> None:
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    from sim.core.metrics import Metrics
    from sim.core.pool import BackendPool
    from tests.core.fakes import FakeClock

    pool = BackendPool(make_config([9001]), FakeClock())
    pool.backends[0].name = 'x"} 1\nevil 1'
    text = Metrics().render(pool)
    assert "\nevil 1" not in text
    assert 'failover_backend_up{backend="x\\"} 1\\nevil 1"} 1' in text


def test_idle_admin_connections_capped_and_timed_out_data_plane_serves(tmp_path: Path) -> None:
    async def main() -> None:
        async with backends(1) as bs:
            cfg = make_config(
                bs,
                admin={"listen": "127.0.0.1:0", "token_file": str(tmp_path / "t"),
                       "max_connections": 4, "head_timeout": "300ms"},
            )  # fmt: skip
            async with balancer(cfg) as lb:
                port = int(lb.admin.address.rsplit(":", 1)[1])
                idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
                await asyncio.sleep(0.1)
                assert lb.admin.open_connections <= 4
                # the ones over the cap are closed at once, not held
                closed = 0
                for reader, _ in idle:
                    try:
                        async with asyncio.timeout(0.05):
                            closed += await reader.read(1) == b""
                    except (TimeoutError, ConnectionError):
                        pass
                assert closed >= 36
                r, _ = await request(lb.listen_port, get(), check_closed=False)  # type: ignore[arg-type]
                assert r is not None and r.status == 200
                # the held ones are dropped at the head timeout; the API answers again
                await asyncio.sleep(0.5)
                assert lb.admin.open_connections == 0
                status, _, _ = await _call(port, "GET", "/status")
                assert status == 200
                for _, writer in idle:
                    writer.close()

    run(main())
