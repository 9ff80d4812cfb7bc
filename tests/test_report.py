"""`failover-sim report DIR`: a self-contained HTML page and a Markdown summary."""

from __future__ import annotations

import argparse
import base64
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis.report import sweep_columns
from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = sim.run(sim.load(ROOT / "scenarios" / "elb-blowup.yaml").replace(duration="7m"), replications=2)
    return results.write(tmp_path_factory.mktemp("runs") / "r")


def test_report_of_a_results_folder(run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    assert main(["report", str(run_folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed and "report.md" in printed
    page = (out / "report.html").read_text(encoding="utf-8")
    # Self-contained: every image inline, nothing fetched from elsewhere
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4  # success rate, recovery CDF by strategy and by cohort, availability vs DNS cost
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    for text in ("elb-blowup", "availability", "cname_repoint", "eip_remap", "browsers", "proxies", "Success rate"):
        assert text in page, text
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# elb-blowup")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert sorted(linked) == [f"report-figures/{n}.png" for n in ("availability_vs_dns", "recovery_cdf", "recovery_cdf_by_cohort", "success_rate")]
    for link in linked:
        assert (out / link).read_bytes().startswith(PNG)
    assert "| strategy | cohort |" in md and "| availability (%) |" in md
    # the page names its folder, and says nothing of where it was made
    for text in (page, md):
        assert run_folder.name in text and str(run_folder.parent) not in text and str(tmp_path) not in text


def test_report_of_a_real_sweep_reads_at_a_glance(tmp_path: Path) -> None:
    """Titled by scenario and swept path, availability in percent with its interval in the
    same cell, every table in a box that scrolls rather than being cut, no path."""
    scenario = sim.load(ROOT / "scenarios" / "elb-blowup.yaml").replace(duration="7m")
    out = tmp_path / "ttl"
    sim.sweep(scenario, {"dns.service_ttl": ["30s", "300s"]}, replications=2, engine="fast", workers=1, out=out)
    html_path, md_path = sim.write_report(out)
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    assert "<h1>elb-blowup: sweep over dns.service_ttl</h1>" in page and md.startswith("# elb-blowup: sweep over")
    assert str(tmp_path) not in page and str(tmp_path) not in md
    tables = re.findall(r"<table>.*?</table>", page)
    assert tables and page.count('<div class="wide"><table>') == len(tables) and ".wide { overflow-x: auto;" in page
    header = next(line for line in md.splitlines() if line.startswith("| dns.service_ttl"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:8] == ["dns.service_ttl", "strategy", "replications", "availability (%)", "recovery mean (s)",
                       "recovery p50 (s)", "recovery p99 (s)", "never recovered (%)"]
    # then latency and the planning metrics the scenario has inputs for (no incident rate here)
    assert columns[8:] == ["latency p50 (ms)", "latency p99 (ms)", "downtime an incident (s)",
                           "infrastructure ($/month)", "DNS ($/month)", "total ($/month)"]
    rows = [line for line in md.splitlines() if line.startswith(("| 30s", "| 300s"))]
    assert len(rows) == 4
    summary = pd.read_parquet(out / "summary.parquet")
    for line, fraction in zip(rows, summary["availability"], strict=True):
        shown = float(line.split("|")[4].split("[")[0])
        assert 1 < shown <= 100 and abs(shown - 100 * fraction) < 0.01 * 100 * fraction


def test_report_defaults_to_the_folder_itself(run_folder: Path) -> None:
    html_path, md_path = sim.write_report(run_folder)
    assert html_path == run_folder / "report.html" and md_path.parent == run_folder
    # the run itself is still readable and its own figures untouched
    assert sim.open_results(run_folder).summary["scenario"] == "elb-blowup"
    assert (run_folder / "figures" / "success_rate.png").is_file()


def test_report_of_a_sweep_folder(tmp_path: Path) -> None:
    rows = [
        {"dns.service_ttl": ttl, "strategy": s, "replication": k, "availability": 0.9 + ttl / 1e4,
         "recovery_s_p99": 100 + ttl, "dns_queries": 10000 / ttl}
        for ttl in (30.0, 60.0, 300.0) for s in ("cname_repoint", "eip_remap") for k in range(2)
    ]  # fmt: skip
    folder = tmp_path / "sweep"
    folder.mkdir()
    pd.DataFrame(rows).to_parquet(folder / "sweep.parquet")
    assert sweep_columns(pd.DataFrame(rows)) == ["dns.service_ttl"]
    html_path, md_path = sim.write_report(folder)
    page = html_path.read_text(encoding="utf-8")
    # no manifest to name the scenario: the title says what was swept, not "sweep: sweep results"
    assert "<h1>Sweep over dns.service_ttl</h1>" in page and page.count("data:image/png;base64,") == 1
    md = md_path.read_text(encoding="utf-8")
    assert "dns.service_ttl" in md and "(report-figures/sweep.png)" in md
    assert (folder / "report-figures" / "sweep.png").read_bytes().startswith(PNG)


def test_not_a_results_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a results folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_cohort_table() -> None:
    clients = pd.DataFrame(
        {
            "strategy": ["a"] * 4,
            "replication": [0, 0, 1, 1],
            "cohort": ["x", "x", "x", "y"],
            "recovery_s": [10.0, 20.0, float("nan"), 5.0],
            "failed": [1, 1, 1, 1],
        }
    )
    table = sim.cohort_table(clients).set_index("cohort")
    assert table.loc["x", "affected"] == 1.5  # per replication
    assert table.loc["x", "never_%"] == pytest.approx(33.3, abs=0.1)
    assert table.loc["y", "p50_s"] == 5.0
    assert sim.cohort_table(clients.iloc[0:0]).empty


def test_python_dash_m_sim_report(run_folder: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sim", "report", str(run_folder), "--out", str(tmp_path / "m")],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m" / "report.html").is_file()


def test_failover_sim_report_is_registered(run_folder: Path, tmp_path: Path) -> None:
    from sim.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "report" in sub.choices
    assert main(["report", str(run_folder), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "report.md").is_file()


def test_sweep_figure_draws_the_intervals_and_marks_a_tail_beyond_the_run() -> None:
    from matplotlib.container import ErrorbarContainer

    from sim.analysis.report import plot_sweep, sweep_points
    from sim.analysis.stats import positive_ci95, share_ci95

    rng = np.random.default_rng(1)
    rows = [
        {"dns.service_ttl": ttl, "strategy": "cname_repoint", "replication": k, "requests": 1000.0,
         "availability": 1 - rng.binomial(1000, 0.02) / 1000, "recovery_p99": math.inf if ttl == 300.0 and k == 0
         else 100 + ttl + rng.normal(0, 5)}
        for ttl in (30.0, 60.0, 300.0) for k in range(4)
    ]  # fmt: skip
    frame = pd.DataFrame(rows).assign(_x=lambda f: f["dns.service_ttl"])
    points = sweep_points(frame, "availability").set_index("x")
    at30 = frame[frame["_x"] == 30.0]
    assert tuple(points.loc[30.0]) == share_ci95(at30["availability"], at30["requests"])
    assert (points["low"] >= 0).all() and (points["high"] <= 1).all()
    tail = sweep_points(frame, "recovery_p99").set_index("x")
    assert tuple(tail.loc[60.0]) == positive_ci95(frame.loc[frame["_x"] == 60.0, "recovery_p99"])
    assert math.isinf(tail.loc[300.0, "mean"])  # one replication beyond the run: the whole mean is
    fig = plot_sweep(pd.DataFrame(rows), "dns.service_ttl", scenario="t")
    for ax in fig.axes:
        assert any(isinstance(c, ErrorbarContainer) for c in ax.containers), ax.get_ylabel()
    p99 = next(ax for ax in fig.axes if "p99" in ax.get_ylabel())
    assert any("> run" in text for text in p99.get_legend_handles_labels()[1])
