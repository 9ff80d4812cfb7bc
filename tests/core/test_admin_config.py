"""Admin API (token, backends add/remove/drain, metrics) and configuration errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sim.core.cli import main as serve_main
from sim.core.config import ConfigError, config_from_data, load_config
from tests.core.helpers import backends, balancer, get, make_config, request, run


async def _call(
    port: int, method: str, path: str, token: str | None = None, body: bytes = b""
) -> tuple[int, bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    r, _ = await request(port, raw, check_closed=False)
    assert r is not None
    return r.status, r.body


def test_admin_api(tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"

    async def main() -> None:
        async with backends(2) as bs:
            cfg = make_config(
                bs[:1], admin={"listen": "127.0.0.1:0", "token_file": str(token_file)}
            )
            async with balancer(cfg) as lb:
                port = int(lb.admin.address.rsplit(":", 1)[1])
                token = token_file.read_text().strip()
                assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600 and len(token) >= 32
                r, _ = await request(lb.listen_port, get())  # type: ignore[arg-type]
                assert r is not None and r.status == 200

                status, text = await _call(port, "GET", "/metrics")
                assert status == 200
                assert b'failover_requests_total{outcome="ok"} 1' in text
                assert b"failover_request_duration_seconds_bucket" in text
                assert b'failover_backend_up{backend="b0"} 1' in text
                assert b"failover_active_connections" in text

                body = json.dumps({"name": "extra", "address": f"127.0.0.1:{bs[1].port}"}).encode()
                status, _ = await _call(port, "POST", "/backends", None, body)
                assert status == 401  # changes need the token
                status, _ = await _call(port, "POST", "/backends", "wrong-token", body)
                assert status == 401
                status, _ = await _call(port, "POST", "/backends", token, body)
                assert status == 201
                status, _ = await _call(port, "POST", "/backends/b0/drain", token)
                assert status == 200
                for _ in range(3):
                    r, _ = await request(lb.listen_port, get(), check_closed=False)  # type: ignore[arg-type]
                    assert r is not None and r.header("X-Backend") == "b1"  # only the added one
                status, _ = await _call(port, "DELETE", "/backends/b0", token)
                assert status == 200
                status, out = await _call(port, "GET", "/status")
                names = [b["name"] for b in json.loads(out)["backends"]]
                assert names == ["extra"]
                status, _ = await _call(port, "DELETE", "/backends/nope", token)
                assert status == 404
                status, _ = await _call(port, "POST", "/takeover", token)
                assert status == 409

    run(main())


def test_admin_refuses_non_loopback_unless_explicit() -> None:
    with pytest.raises(ConfigError) as e:
        make_config([1], admin={"listen": "0.0.0.0:9000"})
    assert "admin.listen" in str(e.value) and "loopback" in str(e.value)
    cfg = make_config([1], admin={"listen": "0.0.0.0:9000", "allow_non_loopback": True})
    assert cfg.admin is not None and not cfg.admin.listen.is_loopback


def test_config_units_and_defaults() -> None:
    cfg = config_from_data({"listen": "127.0.0.1:80", "timeouts": {"http_request": "150ms", "server": 5}})
    assert cfg.timeouts.http_request == 0.15 and cfg.timeouts.server == 5.0
    hc = cfg.health_check
    assert (hc.interval, hc.fall, hc.rise) == (2.0, 3, 2)  # HAProxy
    assert (cfg.passive.consecutive_failures, cfg.passive.base_ejection_time) == (5, 30.0)  # Envoy
    assert cfg.retries.count == 3


def test_config_errors_one_line_each_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "listen: 127.0.0.1:8080\nmode: udp\nbackends:\n  - {name: a, address: nowhere}\n"
        "health_check: {interval: soon}\ntimeouts: {connectt: 1s}\n"
    )
    assert serve_main([str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    joined = "\n".join(err)
    for fragment in (
        ":2: mode:",
        ":4: backends[0].address:",
        ":5: health_check.interval:",
        ":6: timeouts.connectt: unknown key",
    ):
        assert f"{path}{fragment}" in joined, joined
    assert "Traceback" not in joined
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.yaml")
    path.write_text("listen: [unclosed\n")
    assert serve_main([str(path)]) == 2
    assert "YAML syntax error" in capsys.readouterr().err


def test_config_errors_all_at_once_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field errors, checks across fields, a key written twice and a key file, in one
    report: before, a cross-field check waited until every field was valid, the key
    file until the whole configuration was, and no line said where."""
    key = tmp_path / "takeover.key"
    key.write_text("k" * 32)
    key.chmod(0o644)  # readable by others: refused
    text = f"""\
listen: 10.0.0.1:8080
workers: 2
backends:
  - {{name: a, address: nowhere}}
  - name: a
    address: 127.0.0.1:9001
health_check: {{interval: soon, path: health}}
timeouts:
  connectt: 1s
balancing: fastest
takeover:
  role: active
  heartbeat_listen: 127.0.0.1:7101
  peer: 127.0.0.1:7102
  interval: 0
  key_file: {key}
"""
    path = tmp_path / "lb.yaml"
    path.write_text(text)
    assert serve_main([str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    where = [line.removeprefix(f"{path}:").split(": ")[:2] for line in err]
    # each problem on the line that holds it, in the file's order
    assert where == [
        ["1", "listen"],
        ["2", "workers"],
        ["4", "backends[0].address"],
        ["5", "backends[1].name"],
        ["7", "health_check.path"],
        ["7", "health_check.interval"],
        ["9", "timeouts.connectt"],
        ["10", "balancing"],
        ["15", "takeover.interval"],
        ["16", "takeover.key_file"],
    ], err
    assert "loopback" in err[0] and "duplicate name 'a'" in err[3] and "chmod 600" in err[-1]
    # the line numbers are those of the text: each names a line holding its key
    lines = text.splitlines()
    for (number, dotted), line in zip(where, err, strict=True):
        last = dotted.rsplit(".", 1)[-1].split("[")[0]
        assert last in lines[int(number) - 1] or "- " in lines[int(number) - 1], line
    # a key written twice is an error too (PyYAML would keep the second silently)
    path.write_text("listen: 127.0.0.1:8080\nmode: http\nmode: tcp\n")
    assert serve_main([str(path), "--check"]) == 2
    assert f"{path}:3: mode: this key appears twice" in capsys.readouterr().err


def test_cli_check_and_subprocess_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("listen: 127.0.0.1:8080\nbackends: [{name: a, address: 127.0.0.1:9001}]\n")
    assert serve_main([str(path), "--check"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: 127.0.0.1:8080\nbalancing: fastest\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.run(
        [sys.executable, "-m", "sim.core.cli", "serve", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )
    assert (
        p.returncode == 2
        and p.stderr.startswith(f"{bad}:2: balancing: ")
        and "Traceback" not in p.stderr
    )
