"""`failover-sim fit` and `sim.fit_logs`: files written, malformed lines reported, bad input exits 2 naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from sim.cli import main
from tests.fit.logtext import write
from tests.fit.synthetic import CohortTruth, ResolverTruth, access_log, query_log


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("logs")
    rng = np.random.default_rng(8)
    access_log(d / "a.log.gz", [CohortTruth("browser", 20, 2 / 60, 15.0)], 1200.0, rng)
    query_log(d / "q.log", [ResolverTruth("honor", 6, 60.0)], 60.0, 1200.0, 0.5, rng)
    with open(d / "q.log", "a") as f:
        f.write("1.0 garbage\n")
    return d / "a.log.gz", d / "q.log"


def test_command_writes_a_valid_scenario_and_its_report(tmp_path: Path, logs: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fitted.yaml"
    assert main(["fit", "--access-log", str(logs[0]), "--dns-log", str(logs[1]), "--service", "www.example.com",
                 "--ttl", "60s", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 too few fields (first at line" in captured.err
    assert main(["validate", str(out)]) == 0
    assert (tmp_path / "fit-report.md").is_file() and (tmp_path / "fit-report.html").is_file()


def test_missing_file_and_wrong_format_exit_2_naming_the_file(tmp_path: Path, logs: tuple[Path, Path],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--access-log", str(tmp_path / "none.log"), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "none.log: cannot read: no such file" in capsys.readouterr().err
    junk = write(tmp_path / "junk.log", ["nothing here"])
    assert main(["fit", "--access-log", str(junk), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "junk.log: not a known access log format" in capsys.readouterr().err
    assert main(["fit", "--access-log", str(logs[0]), "--dns-log", str(logs[1]), "--service", "nope.example.com",
                 "--out", str(tmp_path / "x.yaml")]) == 2
    assert "no query for nope.example.com" in capsys.readouterr().err
    assert main(["fit", "--access-log", str(tmp_path), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "cannot read: not a file" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["fit", "--access-log", str(logs[0]), "--out", str(tmp_path / "file" / "x.yaml")]) == 2
    assert "file" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_python_api(logs: tuple[Path, Path]) -> None:
    fitted = sim.fit_logs([logs[0]], [logs[1]], ttl="1m")
    assert fitted.scenario.dns.service_ttl == 60.0 and fitted.written == ()
    assert [c.name for c in fitted.scenario.clients] == ["browser"]
