"""The benchmark harness drives every target (a short run, no performance assertion)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sim.bench.core import render_table, run_bench

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


def test_run_bench_drives_targets_in_order_and_writes_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness's own bookkeeping, with the processes and generators replaced by fakes."""
    from sim.bench import core

    calls: list[tuple[Any, ...]] = []
    procs: list[_FakeProc] = []
    backend = _FakeProc(100)
    cpu = iter(float(i) for i in range(1000))

    def start_target(
        target: str, mode: str, out: Path, bport: int, cpu_: int | None
    ) -> tuple[_FakeProc | None, int, str]:
        calls.append(("start", target, mode, bport, cpu_))
        if target == "nginx":
            return None, 0, "nginx is not installed"
        if target == "direct":
            return None, bport, ""
        procs.append(_FakeProc(200 + len(procs)))
        return procs[-1], 7000 + len(procs), ""

    def run_wrk(port: int, duration: float, connections: int, cpu_: int | None) -> dict[str, Any]:
        calls.append(("wrk", port, duration, connections, cpu_))
        return {"rps": 1000.0 + port, "errors": 0, "wrk_cpu_s": 0.5, "raw": ""}

    def openloop_run(
        pin: list[str], env: dict[str, str], port: int, rate: float, d: float, w: float
    ) -> dict[str, Any]:
        calls.append(("openloop", port, rate, d, w))
        return {"completed": 10, "saturated": False, "p50_us": port // 100, "p99_us": port // 10}

    def cpu_seconds(pid: int) -> float:
        calls.append(("cpu", pid))
        return next(cpu) * 2

    monkeypatch.setattr(core.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(core, "start_backend", lambda out, cpu_: (backend, 6000, "fake backend"))
    monkeypatch.setattr(core, "start_target", start_target)
    monkeypatch.setattr(core, "run_wrk", run_wrk)
    monkeypatch.setattr(core, "cpu_seconds", cpu_seconds)
    monkeypatch.setattr(core.openloop, "run", openloop_run)
    monkeypatch.setattr(core, "plot", lambda results, path: None)
    monkeypatch.setattr(core.sys, "argv", ["failover-sim", "bench", "core", "--quick"])
    monkeypatch.setattr(core.time, "strftime", lambda fmt: "2026-01-01T00:00:00")
    logged: list[str] = []

    results = core.run_bench(
        tmp_path, ["direct", "simcore", "nginx"], ["http", "tcp"], duration=2.0,
        latency_duration=0.5, loads=[0.25, 0.5], repeat=2, connections=7, warmup=0.1,
        lb_cpu=1, gen_cpu=0, log=logged.append, warm_wrk=0.3,
    )  # fmt: skip

    # the order alternates between repetitions, every balancer is stopped, the backend too
    started = [(c[1], c[2]) for c in calls if c[0] == "start"]
    assert started == [
        *[(t, m) for m in ("http", "tcp") for t in ("direct", "simcore", "nginx")],
        *[(t, m) for m in ("http", "tcp") for t in ("nginx", "simcore", "direct")],
    ]
    assert all(p.stopped for p in procs) and backend.stopped
    # a warm-up run, then the measured one between two CPU readings, then the steps
    assert calls[1:6] == [
        ("wrk", 6000, 0.3, 7, 0),
        ("cpu", 100),
        ("wrk", 6000, 2.0, 7, 0),
        ("cpu", 100),
        ("openloop", 6000, 7000.0 * 0.25, 0.5, 0.1),
    ]
    assert results["skipped"] == {
        "nginx-http": "nginx is not installed",
        "nginx-tcp": "nginx is not installed",
    }
    assert [list(r) for r in results["runs"][:1]] == [
        [
            "rep",
            "mode",
            "target",
            "rps",
            "wrk_errors",
            "cpu_s",
            "rps_per_cpu_s",
            "wrk_cpu_s",
            "latency",
        ]
    ]
    assert [(r["rep"], r["mode"], r["target"]) for r in results["runs"]] == [
        (0, "http", "direct"), (0, "http", "simcore"), (0, "tcp", "direct"), (0, "tcp", "simcore"),
        (1, "http", "simcore"), (1, "http", "direct"), (1, "tcp", "simcore"), (1, "tcp", "direct"),
    ]  # fmt: skip
    first = results["runs"][0]
    assert first["cpu_s"] == 2.0 and first["rps_per_cpu_s"] == 7000.0 * 2.0 / 2.0
    assert [x["load"] for x in first["latency"]] == [0.25, 0.5]
    assert results["command"] == "failover-sim bench core --quick"
    assert list(results) == [
        "command", "started", "backend", "pinning", "body_bytes", "wrk_connections", "loads",
        "runs", "skipped", "summary",
    ]  # fmt: skip
    assert results["summary"] == core.summarize(results)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert (tmp_path / "results.md").read_text() == core.render_table(results)
    assert logged[:2] == [
        "rep 0 http direct        7000 req/s       7000 req/CPU-s  25%: p99 600 us  50%: p99 600 us",
        "rep 0 http simcore       8001 req/s       8001 req/CPU-s  25%: p99 700 us  50%: p99 700 us",
    ]
    assert "skip nginx http: nginx is not installed" in logged
