"""Sweeps: the grid, seeds independent of the executor, a real Dask LocalCluster, resumption."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.batch import GridError, parse_set, sweep
from sim.batch.grid import cells
from tests.model.scenarios import BASE, scenario

SMALL = {"clients.0.count": 100, "dns.resolvers.0.count": 50, "duration": "2m"}
GRID = {"dns.service_ttl": ["30s", "120s"], "failover.detection.delay": ["10s", "30s"]}


def _table(**options) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return sweep(scenario(**SMALL), GRID, replications=2, **options)


def test_grid_is_every_combination_in_order() -> None:
    got = cells(scenario(**SMALL), GRID)
    assert [c.values for c in got] == [
        {"dns.service_ttl": "30s", "failover.detection.delay": "10s"},
        {"dns.service_ttl": "30s", "failover.detection.delay": "30s"},
        {"dns.service_ttl": "120s", "failover.detection.delay": "10s"},
        {"dns.service_ttl": "120s", "failover.detection.delay": "30s"},
    ]
    assert got[3].scenario.dns.service_ttl == 120.0


def test_parse_set_and_its_errors() -> None:
    assert parse_set("dns.service_ttl=30s, 60s") == ("dns.service_ttl", ["30s", "60s"])
    assert parse_set("backends.instances=4,8") == ("backends.instances", [4, 8])
    for bad in ("dns.service_ttl", "=30s", "dns.service_ttl=", "dns.service_ttl=30s,,60s"):
        with pytest.raises(GridError, match="--set"):
            parse_set(bad)


def test_results_do_not_depend_on_the_worker_count() -> None:
    one = _table(engine="fast", workers=1)
    two = _table(engine="fast", workers=2)
    assert len(one) == 4 * 2 * 2
    pd.testing.assert_frame_equal(one, two)
    # The swept values are columns, and they change the outcome as they should.
    assert set(GRID) <= set(one.columns)
    by_ttl = one[one["strategy"] == "cname_repoint"].groupby("dns.service_ttl")["recovery_mean"].mean()
    assert by_ttl["120s"] > by_ttl["30s"]


@pytest.mark.real
def test_dask_local_cluster_gives_the_local_table(tmp_path: Path) -> None:
    local = _table(engine="des", workers=1)
    dask = _table(engine="des", executor="dask", workers=2)
    pd.testing.assert_frame_equal(local, dask)


def _cli(out: Path, scenario_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sim", "sweep", str(scenario_file), "--set", "dns.service_ttl=30s,120s",
            "--set", "failover.detection.delay=10s,30s", "--replications", "2", "--out", str(out), "--workers", "1",
            "--quiet", *extra]


def _scenario_file(tmp_path: Path, duration: str | None = None) -> Path:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    if duration is not None:
        doc["duration"] = duration
    doc["clients"][0]["count"] = 150
    doc["dns"]["resolvers"][0]["count"] = 50
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_killed_sweep_resumes_and_ends_with_the_uninterrupted_table(tmp_path: Path) -> None:
    # 150 s runs (not 5 min): resuming is about units, not about what each unit measures
    path = _scenario_file(tmp_path, duration="150s")
    whole = tmp_path / "whole"
    assert subprocess.run(_cli(whole, path), capture_output=True).returncode == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_cli(cut, path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((cut / "units").glob("*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((cut / "units").glob("*.parquet")))
    assert 3 <= done < 16, done  # killed part-way through 4 cells x 2 strategies x 2 replications
    assert not (cut / "sweep.parquet").exists()
    assert subprocess.run(_cli(cut, path), capture_output=True).returncode == 0
    pd.testing.assert_frame_equal(pd.read_parquet(whole / "sweep.parquet"), pd.read_parquet(cut / "sweep.parquet"))


def test_bad_set_and_a_resume_with_other_arguments_exit_2(tmp_path: Path) -> None:
    path = _scenario_file(tmp_path)
    bad = subprocess.run([sys.executable, "-m", "sim", "sweep", str(path), "--set", "dns.nonsense=1,2", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 2 and "dns.nonsense" in bad.stderr and "Traceback" not in bad.stderr
    out = tmp_path / "y"
    args = [sys.executable, "-m", "sim", "sweep", str(path), "--set", "dns.service_ttl=30s", "--replications", "1",
            "--out", str(out), "--quiet"]
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0
    header, row = first.stdout.splitlines()[:2]
    assert "availability (%)" in header and "never recovered (%)" in header and "cell" not in header.split()
    assert 1 < float(row.split()[3]) <= 100  # dns.service_ttl, strategy, replications, availability in %
    other_args = [a if a != "1" else "2" for a in args]  # --replications 2 this time
    other = subprocess.run(other_args, capture_output=True, text=True)
    assert other.returncode == 2 and "other arguments" in other.stderr


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_sweep_leaves_no_worker_behind(tmp_path: Path, sig: signal.Signals) -> None:
    # Issue 21: `sweep --workers 2` killed left its two pool workers running.
    import psutil

    path = _scenario_file(tmp_path, duration="150s")
    argv = [a if a != "1" else "2" for a in _cli(tmp_path / "out", path)]  # --workers 2
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [c for c in parent.children() if "resource_tracker" not in " ".join(c.cmdline())]
        time.sleep(0.05)
    assert len(workers) >= 2, "the pool did not start"
    proc.send_signal(sig)
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    for worker in alive:  # a failure here must not leave them running either
        worker.kill()
    assert alive == [], [p.pid for p in alive]
