"""sim.bench.fit: the generated log is a valid ALB log in time order, and the fit runs on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.bench.fit import one_hour, time_fit, write_log
from sim.fit.formats import read


def test_generated_log_parses_whole_and_in_time_order(tmp_path: Path) -> None:
    assert "@D@" in one_hour(50, np.random.default_rng(1))
    path = tmp_path / "alb.log"
    size, lines = write_log(path, 400_000, 50, seed=1)
    assert size == path.stat().st_size >= 400_000
    records, stats = read(path, "access")
    times = [r.t for r in records]
    assert stats.format == "alb" and stats.bad == 0 and len(times) == lines
    assert all(a <= b for a, b in zip(times, times[1:], strict=False))


def test_time_fit_reports_the_childs_own_peak_memory(tmp_path: Path) -> None:
    path = tmp_path / "alb.log"
    write_log(path, 100_000, 30, seed=2)
    wall, cpu, peak = time_fit(path, tmp_path)
    assert wall > 0 and cpu > 0 and 10 < peak < 2048  # a Python process with numpy: tens of MB, far under the target
    assert (tmp_path / "fitted.yaml").is_file()
