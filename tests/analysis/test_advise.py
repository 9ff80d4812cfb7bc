"""`failover-sim advise` (issue 20): the Pareto front, the limits, and a search the model confirms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.analysis.advise import (
    AdviceError,
    expand_over,
    pareto_front,
    parse_budget,
    parse_target,
    service_time_quantile,
    target_limits,
)
from sim.cli import main
from sim.scenario.units import Constant, Exponential, Uniform
from tests.conftest import SCENARIOS
from tests.model.scenarios import scenario


def test_pareto_front_of_a_known_grid() -> None:
    # (cost, availability): (3, .95) loses to (2, .95); (2, .90) to (1, .90); (5, .99) to (4, .99).
    cost = [1, 2, 3, 4, 2, 5]
    value = [0.90, 0.95, 0.95, 0.99, 0.90, 0.99]
    assert pareto_front(cost, value).tolist() == [True, True, False, True, False, False]
    # Lower is better (a latency): the cheapest is best everywhere here.
    assert pareto_front([1, 2, 3], [100, 200, 50], higher_is_better=False).tolist() == [True, False, True]
    assert pareto_front([1, math.nan], [0.9, 1.0]).tolist() == [True, False]


def test_service_time_quantiles_in_closed_form() -> None:
    assert service_time_quantile(Exponential(0.1), 0.99) == pytest.approx(0.1 * math.log(100))  # 460.5 ms
    assert service_time_quantile(Constant(0.02), 0.99) == 0.02
    assert service_time_quantile(Uniform(0.0, 1.0), 0.99) == pytest.approx(0.99)


def test_a_latency_target_below_the_service_time_floor_is_refused_with_the_bound() -> None:
    s = scenario(**{"backends.service_time": {"exp": "100ms"}})
    (limit,) = target_limits(s, parse_target("latency_ms.p99<=200"))
    assert "460.5 ms" in limit and "ln 100" in limit
    assert target_limits(s, parse_target("latency_ms.p99<=500")) == []


def test_monthly_targets_need_an_incident_rate() -> None:
    (limit,) = target_limits(scenario(), parse_target("availability>=99.95%"))
    assert "incidents:" in limit


def test_options() -> None:
    t = parse_target("availability>=99.95%")
    assert (t.metric, t.op, t.value) == ("monthly.availability", ">=", pytest.approx(0.9995))
    assert t.met(0.9996) and not t.met(0.9994) and not t.met(math.nan)
    assert parse_budget("$20/month") == 20.0
    path, values = expand_over("dns.service_ttl=5s..600s", 3)
    # Geometric: the middle of 5 s and 600 s is sqrt(3000) = 54.8 s, kept to whole seconds.
    assert path == "dns.service_ttl" and values == ["5s", "55s", "10m"]
    assert expand_over("failover.detection.interval=0.1s..0.4s", 3)[1] == ["100ms", "200ms", "400ms"]
    assert expand_over("backends.instances=4,8", 5) == ("backends.instances", [4, 8])
    for bad in ("uptime>=1", "availability=99"):
        with pytest.raises(AdviceError):
            parse_target(bad)
    with pytest.raises(AdviceError):
        expand_over("dns.service_ttl=600s..5s", 3)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = yaml.safe_load((SCENARIOS / "elb-blowup.yaml").read_text())
    doc.update({"duration": "10m", "incidents": {"balancer_down": "2/year"}, "cost": {"per_failed_request": 0.001}})
    path = tmp_path_factory.mktemp("advise") / "elb.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _advise(path: Path, out: Path, slo: str) -> list[str]:
    return ["advise", str(path), "--slo", slo, "--strategy", "cname_repoint", "--strategy", "eip_remap",
            "--over", "dns.service_ttl=300s", "--replications", "2", "--confirm", "1",
            "--confirm-replications", "3", "--workers", "1", "--quiet", "--out", str(out)]


def test_advise_returns_a_design_the_model_confirms(planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # At 2 balancer failures a year, the static address loses ~35 s an incident (99.9998% a month),
    # the CNAME ~400 s (99.9987%): 99.999% is met by one of them only.
    out = tmp_path / "advice"
    assert main(_advise(planned, out, "availability>=99.999%")) == 0
    said = capsys.readouterr().out
    assert "winner: eip_remap dns.service_ttl=300s" in said
    assert "model check of eip_remap dns.service_ttl=300s" in said and "-> PASS" in said
    assert "cname_repoint dns.service_ttl=300s: misses monthly.availability >= 99.999%" in said
    assert {p.name for p in out.iterdir()} >= {"ranked.csv", "pareto.png", "winner.yaml"}
    # The winner's scenario carries the objective as its expect: check confirms it again.
    assert main(["check", str(out / "winner.yaml"), "--replications", "3"]) == 0
    assert "PASS" in capsys.readouterr().out

    # No design reaches 99.99999%: said, with the closest named; the search is resumed, not rerun.
    assert main(_advise(planned, out, "availability>=99.99999%")) == 1
    said = capsys.readouterr().out
    assert "no design meets monthly.availability >= 99.99999%" in said and "the closest is eip_remap dns.service_ttl=300s" in said


def test_advise_says_why_it_cannot_search(planned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", str(planned), "--slo", "uptime>=1", "--out", str(tmp_path)]) == 2
    assert "unknown metric 'uptime'" in capsys.readouterr().err
    assert main(["advise", str(planned), "--out", str(tmp_path)]) == 2  # no --slo and no slo:
    assert "give --slo" in capsys.readouterr().err


def test_strategies_left_out_are_said_with_the_reason() -> None:
    from sim.analysis.advise import candidate_strategies
    from sim.scenario import load_file

    # elb-blowup's own expect: names cname_repoint and eip_remap; searching vrrp alone must still work.
    kept, dropped = candidate_strategies(load_file(SCENARIOS / "elb-blowup.yaml"), ["vrrp"])
    assert kept == ["vrrp"] and dropped == []
    apex = load_file(SCENARIOS / "apex-with-mail.yaml")
    kept, dropped = candidate_strategies(apex, None)
    assert "cname_repoint" not in kept and any(s == "cname_repoint" and "zone rules" in why for s, why in dropped)


def test_ranked_rows_are_cheapest_first_among_those_that_meet() -> None:
    import pandas as pd

    from sim.analysis.advise import rank

    frame = pd.DataFrame({"cell": [0, 1, 2], "strategy": ["a", "b", "c"], "x": [1, 2, 3],
                          "monthly_availability": [0.9999, 0.99999, 0.999995], "cost_total": [1.0, 5.0, 3.0]})
    ranked = rank(frame, ["x"], parse_target("availability>=99.999%"), budget=None)
    assert ranked["strategy"].tolist() == ["c", "b", "a"] and ranked["meets"].tolist() == [True, True, False]
    assert np.array_equal(ranked["front"].to_numpy(), [True, False, True])
    over = rank(frame, ["x"], parse_target("availability>=99.999%"), budget=4.0)
    assert over.loc[over["strategy"] == "b", "reason"].item().startswith("over budget")


def test_the_search_goes_to_the_sweep_executor_given(planned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Dask as `sweep` runs it: the executor and scheduler reach sim.batch.sweep unchanged, on the fast engine.
    import sim.batch
    from sim.analysis.advise import advise
    from sim.scenario import load_file

    seen: dict[str, object] = {}

    def fake_sweep(scenario, grid, **options):  # type: ignore[no-untyped-def]
        seen.update(options, strategies=scenario.strategies)
        raise RuntimeError("stop here")

    monkeypatch.setattr(sim.batch, "sweep", fake_sweep)
    with pytest.raises(RuntimeError, match="stop here"):
        advise(load_file(planned), parse_target("availability>=99.9%"), {"dns.service_ttl": ["60s"]},
               strategies=["eip_remap"], executor="dask", scheduler="tcp://scheduler:8786")
    assert seen["executor"] == "dask" and seen["scheduler"] == "tcp://scheduler:8786" and seen["engine"] == "fast"
    assert seen["strategies"] == ["eip_remap"]
