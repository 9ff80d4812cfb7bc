"""The benchmark harness drives every target (a short run, no performance assertion)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sim.bench.core import render_table, run_bench, summarize

NEEDS = {"simcore": ["wrk"], "haproxy": ["wrk", "haproxy"], "nginx": ["wrk", "nginx"]}


@pytest.mark.real
@pytest.mark.parametrize("target", ["simcore", "haproxy", "nginx"])
def test_harness_drives_target(target: str, tmp_path: Path) -> None:
    missing = [tool for tool in NEEDS[target] if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have {missing} installed (.ci/run installs them)")
        pytest.skip(f"{', '.join(missing)} not installed")
    results = run_bench(
        tmp_path, ["direct", target], ["http"], duration=1.0, latency_duration=0.3, loads=[0.25],
        repeat=1, connections=10, warmup=0.1, lb_cpu=None, gen_cpu=None, log=lambda *_: None, warm_wrk=0,
    )  # fmt: skip
    rows = {r["target"]: r for r in results["runs"]}
    assert set(rows) == {"direct", target}, results["skipped"]
    for row in rows.values():
        assert row["rps"] > 0 and row["latency"][0].get("completed", 0) > 0
    assert rows[target]["cpu_s"] > 0  # the balancer's own process was measured
    assert (tmp_path / "results.json").exists() and (tmp_path / "results.md").exists()
    config = {
        "simcore": "simcore-http.yaml",
        "haproxy": "haproxy-http.cfg",
        "nginx": "nginx-http.conf",
    }[target]
    assert (tmp_path / config).exists()  # the generated config is kept beside the results
    assert target in render_table(results)


class _FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class FakeBench:
    """bench core's processes, wrk, CPU readings and open-loop steps, faked and logged."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.procs: list[_FakeProc] = []
        self.backend = _FakeProc(100)
        self.logged: list[str] = []
        self._cpu = iter(float(i) for i in range(1000))

    def start_target(
        self, target: str, mode: str, out: Path, bport: int, cpu: int | None
    ) -> tuple[_FakeProc | None, int, str]:
        self.calls.append(("start", target, mode, bport, cpu))
        if target == "nginx":
            return None, 0, "nginx is not installed"
        if target == "direct":
            return None, bport, ""
        self.procs.append(_FakeProc(200 + len(self.procs)))
        return self.procs[-1], 7000 + len(self.procs), ""

    def run_wrk(
        self, port: int, duration: float, connections: int, cpu: int | None
    ) -> dict[str, Any]:
        self.calls.append(("wrk", port, duration, connections, cpu))
        return {"rps": 1000.0 + port, "errors": 0, "wrk_cpu_s": 0.5, "raw": ""}

    def openloop_run(
        self, pin: list[str], env: dict[str, str], port: int, rate: float, d: float, w: float
    ) -> dict[str, Any]:
        self.calls.append(("openloop", port, rate, d, w))
        return {"completed": 10, "saturated": False, "p50_us": port // 100, "p99_us": port // 10}

    def cpu_seconds(self, pid: int) -> float:
        self.calls.append(("cpu", pid))
        return next(self._cpu) * 2

    def run(self, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        from sim.bench import core

        monkeypatch.setattr(core.shutil, "which", lambda name: f"/usr/bin/{name}")
        monkeypatch.setattr(core, "start_backend", lambda out, cpu: (self.backend, 6000, "fake"))
        monkeypatch.setattr(core, "start_target", self.start_target)
        monkeypatch.setattr(core, "run_wrk", self.run_wrk)
        monkeypatch.setattr(core, "cpu_seconds", self.cpu_seconds)
        monkeypatch.setattr(core.openloop, "run", self.openloop_run)
        monkeypatch.setattr(core, "plot", lambda results, path: None)
        monkeypatch.setattr(core.sys, "argv", ["failover-sim", "bench", "core", "--quick"])
        monkeypatch.setattr(core.time, "strftime", lambda fmt: "2026-01-01T00:00:00")
        return core.run_bench(
            out, ["direct", "simcore", "nginx"], ["http", "tcp"], duration=2.0,
            latency_duration=0.5, loads=[0.25, 0.5], repeat=2, connections=7, warmup=0.1,
            lb_cpu=1, gen_cpu=0, log=self.logged.append, warm_wrk=0.3,
        )  # fmt: skip


def test_run_bench_order_of_targets_and_measurements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeBench()
    results = fake.run(tmp_path, monkeypatch)
    # the order alternates between repetitions, every balancer is stopped, the backend too
    started = [(c[1], c[2]) for c in fake.calls if c[0] == "start"]
    assert started == [
        *[(t, m) for m in ("http", "tcp") for t in ("direct", "simcore", "nginx")],
        *[(t, m) for m in ("http", "tcp") for t in ("nginx", "simcore", "direct")],
    ]
    assert all(p.stopped for p in fake.procs) and fake.backend.stopped
    # a warm-up run, then the measured one between two CPU readings, then the steps
    assert fake.calls[1:7] == [
        ("wrk", 6000, 0.3, 7, 0),
        ("cpu", 100),
        ("wrk", 6000, 2.0, 7, 0),
        ("cpu", 100),
        ("openloop", 6000, 7000.0 * 0.25, 0.5, 0.1),
        ("openloop", 6000, 7000.0 * 0.5, 0.5, 0.1),
    ]
    assert results["skipped"] == {
        "nginx-http": "nginx is not installed",
        "nginx-tcp": "nginx is not installed",
    }
    assert "skip nginx http: nginx is not installed" in fake.logged


def test_run_bench_rows_and_what_it_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBench()
    results = fake.run(tmp_path, monkeypatch)
    assert list(results) == [
        "command", "started", "backend", "pinning", "body_bytes", "wrk_connections", "loads",
        "runs", "skipped", "summary",
    ]  # fmt: skip
    assert results["command"] == "failover-sim bench core --quick"
    assert [(r["rep"], r["mode"], r["target"]) for r in results["runs"]] == [
        (0, "http", "direct"), (0, "http", "simcore"), (0, "tcp", "direct"), (0, "tcp", "simcore"),
        (1, "http", "simcore"), (1, "http", "direct"), (1, "tcp", "simcore"), (1, "tcp", "direct"),
    ]  # fmt: skip
    first = results["runs"][0]
    assert list(first) == [
        "rep", "mode", "target", "rps", "wrk_errors", "cpu_s", "rps_per_cpu_s", "wrk_cpu_s",
        "latency",
    ]  # fmt: skip
    assert first["cpu_s"] == 2.0 and first["rps_per_cpu_s"] == 7000.0 * 2.0 / 2.0
    assert [x["load"] for x in first["latency"]] == [0.25, 0.5]
    assert results["summary"] == summarize(results)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert (tmp_path / "results.md").read_text() == render_table(results)
    assert fake.logged[:2] == [
        "rep 0 http direct        7000 req/s       7000 req/CPU-s  25%: p99 600 us  50%: p99 600 us",
        "rep 0 http simcore       8001 req/s       8001 req/CPU-s  25%: p99 700 us  50%: p99 700 us",
    ]


@pytest.mark.parametrize("argv", [["--loads", "x"], ["--loads", "0.5,2"], ["--modes", "udp"]])
def test_bad_options_get_a_clear_error_and_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from sim.bench.core import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "expected modes of http,tcp and loads as comma-separated fractions" in err and "Traceback" not in err
