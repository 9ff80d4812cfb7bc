"""`failover-sim run` end to end: the results folder, the table, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.fast.refusals import unsupported
from sim.results.reader import open_run
from sim.runner import run
from sim.scenario import load_file


def test_shipped_scenarios_run_and_write_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in sorted(Path("scenarios").glob("*.yaml")):
        out = tmp_path / path.stem
        # Running and writing every file is the same code whatever the engine, so each
        # scenario runs on the fast engine where it can (seconds, against minutes on the
        # model for the big ones); the model writes the default scenario's folder in
        # test_default_scenario_answers_the_seed_question and in the README's commands.
        engine = [] if unsupported(load_file(path)) else ["--engine", "fast"]
        # one replication: this test is about running and writing; intervals are tested elsewhere
        assert main(["run", str(path), "--replications", "1", "--out", str(out), "--quiet", *engine]) == 0, path
        printed = capsys.readouterr().out
        for name in ("summary.json", "clients.parquet", "timeline.parquet", "manifest.json", "replications.parquet",
                     "targets.parquet"):
            assert (out / name).is_file(), (path, name)
        assert (out / "figures" / "success_rate.png").is_file()
        planned = any(f.kind in ("dns_change", "address_move") for f in load_file(path).faults)
        assert (out / "figures" / "drain.png").is_file() == planned, path
        assert "drain mean" in printed or not planned, path
        loaded = open_run(out)
        scenario = load_file(path)
        assert loaded.manifest["scenario"]["name"] == scenario.name
        assert "availability" in printed
        if path.stem == "apex-with-mail":
            assert list(loaded.summary["strategies"]) == ["eip_remap"]
            assert "strategy cname_repoint refused" in printed and "zone apex" in printed
        else:
            assert list(loaded.summary["strategies"]) == scenario.strategies


def test_default_scenario_answers_the_seed_question(tmp_path: Path) -> None:
    results = run(load_file("scenarios/elb-blowup.yaml"), replications=2)
    s = results.summary["strategies"]
    # The static address recovers much faster than the CNAME, for the same fault
    assert s["eip_remap"]["recovery_s"]["p50"] < s["cname_repoint"]["recovery_s"]["p50"]
    assert s["eip_remap"]["availability"] > s["cname_repoint"]["availability"]
    # resolve-once proxies never come back under CNAME repointing
    proxies = results.clients[(results.clients.strategy == "cname_repoint") & (results.clients.cohort == "proxies")]
    assert len(proxies) and proxies.recovery_s.isna().all()
    # common random numbers: the same requests were issued under both strategies
    reqs = results.replications.groupby("strategy").requests.sum()
    assert abs(reqs["eip_remap"] - reqs["cname_repoint"]) <= 0.001 * reqs.max()


def test_results_round_trip(tmp_path: Path) -> None:
    results = run(load_file("scenarios/elb-blowup.yaml"), replications=2, strategies=["eip_remap"])
    folder = results.write(tmp_path / "r")
    back = open_run(folder)
    assert back.summary == json.loads(json.dumps(results.summary))
    pd.testing.assert_frame_equal(
        back.clients.reset_index(drop=True), results.clients.reset_index(drop=True), check_dtype=False
    )
    assert len(back.timeline) == len(results.timeline)


def test_unrunnable_input_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "dns: required field is missing" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert main(["run", "scenarios/apex-with-mail.yaml", "--strategy", "cname_repoint", "--out", str(tmp_path / "o")]) == 2
    assert "refused" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert main(["run", "scenarios/elb-blowup.yaml", "--out", str(full)]) == 2
    assert not (tmp_path / "o").exists()


def test_interrupted_run_leaves_no_results(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", "scenarios/elb-blowup.yaml", "--replications", "50", "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_refusal_names_each_reason_on_a_line_with_the_cohort_and_what_runs() -> None:
    """The engine's refusal, as the command prints it: one reason a line, a cohort named
    (a population file's cohorts are not in the file the user wrote), and the strategies
    the engine does run, with the flags that run them."""
    from sim.runner import RunError, check_engine
    from tests.model.scenarios import scenario

    sessions = {"requests": {"exp": 1.5}, "think": {"exp": "30s"}, "gap": "10m"}
    sc = scenario(**{"strategies": ["multi_a", "eip_remap"], "clients.0.sessions": sessions, "clients.0.rate": None})
    with pytest.raises(RunError) as refused:
        check_engine(sc, "fast")
    lines = str(refused.value).splitlines()
    assert lines[0] == "the fast engine cannot run this scenario:"
    assert lines[1] == "  - strategies: multi_a publishes one address per balancer, with clients[0].sessions (cohort c)"
    assert lines[2] == "use --engine des, or run eip_remap alone: --strategy eip_remap"
    check_engine(sc, "fast", ["eip_remap"])  # what the hint says runs does run
