"""sim.fit.report: the report has each section, a figure per estimate, and no address."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.fit.report import write_report
from sim.fit.run import fit
from tests.fit.synthetic import CohortTruth, ResolverTruth, access_log, query_log


def test_report_files_figures_and_no_address(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    access_log(tmp_path / "a.log.gz", [CohortTruth("browser", 20, 2 / 60, 15.0), CohortTruth("cli", 10, 0.01, 0.0)], 1200.0, rng)
    query_log(tmp_path / "q.log", [ResolverTruth("honor", 6, 60.0)], 60.0, 1200.0, 0.5, rng)
    result = fit([tmp_path / "a.log.gz"], [tmp_path / "q.log"], ttl=60.0)
    md, html = write_report(result, tmp_path / "out", "fitted")
    text = md.read_text()
    for heading in ("Files read", "Client cohorts", "Connection reuse", "Traffic over the day", "Resolvers asking for"):
        assert f"## {heading}" in text
    figures = sorted(p.name for p in (tmp_path / "out" / "figures").iterdir())
    assert figures == ["cohort-browser.png", "cohort-cli.png", "idle-browser.png", "resolvers.png", "shape.png"]
    assert all(f"figures/{name}" in text for name in figures)
    page = html.read_text()
    assert page.count("data:image/png;base64,") == len(figures)
    assert "10.0." not in text + page and "192.0." not in text + page
