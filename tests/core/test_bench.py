"""The benchmark harness drives every target (a short run, no performance assertion)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
