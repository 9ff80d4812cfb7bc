"""The day's shape written as the scenario's traffic faults: known hourly rates recovered within their intervals."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from sim.fit.run import fit
from sim.fit.writer import scenario_text
from tests.fit.ecs_synthetic import _alb
from tests.fit.synthetic import AGENTS, T0

RATES = [0.01, 0.03, 0.02]  # per client per second in hours 0, 1 and 2 of the log
CLIENTS = 40


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(31)
    rows = []
    for hour, rate in enumerate(RATES):
        for c in range(CLIENTS):
            for t in rng.uniform(0, 3600.0, rng.poisson(rate * 3600.0)):
                t = T0 + hour * 3600.0 + t
                rows.append((t, _alb(t, f"10.0.0.{c}", f"{c}-{t:.6f}", AGENTS["runtime"])))
    path: Path = tmp_path_factory.mktemp("shape") / "access.log.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(row + "\n" for _, row in sorted(rows))
    return fit([path])


def test_the_runs_hours_are_traffic_faults_of_their_factors(shaped) -> None:  # type: ignore[no-untyped-def]
    text = scenario_text(shaped, start_hour=0, duration=3 * 3600.0)
    scenario = sim.load(yaml.safe_load(text))
    traffic = [f for f in scenario.faults if f.kind == "traffic"]
    assert [(f.at, f.for_) for f in traffic] == [(0.0, 3600.0), (3600.0, 3600.0), (7200.0, 3600.0)]
    for hour, f in enumerate(traffic):
        truth = RATES[hour] / np.mean(RATES)  # the hour's rate against the log's mean, which the cohort rate is
        est = shaped.shape.factors[hour]
        assert f.factor == pytest.approx(est.value, abs=1e-4)
        assert est.low <= truth <= est.high, (hour, est, truth)
    rate = scenario.clients[0].rate * traffic[1].factor  # the busiest hour's rate per client
    assert rate == pytest.approx(RATES[1], rel=0.05)


def test_by_default_the_run_starts_at_the_busiest_hour(shaped) -> None:  # type: ignore[no-untyped-def]
    text = scenario_text(shaped)
    traffic = [f for f in sim.load(yaml.safe_load(text)).faults if f.kind == "traffic"]
    assert len(traffic) == 1 and (traffic[0].at, traffic[0].for_) == (0.0, 1200.0)
    assert traffic[0].factor == pytest.approx(shaped.shape.factors[1].value, abs=1e-4)
    assert "01:00 (log time; not given: the busiest hour" in text


def test_hours_the_log_does_not_cover_keep_the_mean_rate(shaped) -> None:  # type: ignore[no-untyped-def]
    text = scenario_text(shaped, start_hour=23, duration=2 * 3600.0)
    traffic = [f for f in sim.load(yaml.safe_load(text)).faults if f.kind == "traffic"]
    assert [(f.at, f.for_) for f in traffic] == [(3600.0, 3600.0)]  # hour 23 is not in the log; hour 0 is
    assert "# 23h: not in the log: the mean rate" in text
    with pytest.raises(ValueError, match="start hour"):
        scenario_text(shaped, start_hour=24)
