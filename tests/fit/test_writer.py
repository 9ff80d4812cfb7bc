"""sim.fit.writer: the fitted scenario loads, holds the fitted values, and carries their intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import sim
from sim.fit.run import fit
from sim.fit.writer import scenario_text
from tests.fit.synthetic import CohortTruth, ResolverTruth, access_log, query_log


@pytest.fixture(scope="module")
def small_fit(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("logs")
    rng = np.random.default_rng(5)
    access_log(d / "a.log.gz", [CohortTruth("browser", 30, 2 / 60, 15.0), CohortTruth("jvm", 5, 0.1, 30.0)], 1800.0, rng)
    query_log(d / "q.log", [ResolverTruth("honor", 8, 60.0), ResolverTruth("cap", 4, 20.0)], 60.0, 1800.0, 0.5, rng)
    return fit([d / "a.log.gz"], [d / "q.log"], service="www.example.com")


def test_the_scenario_loads_with_the_fitted_values(small_fit) -> None:  # type: ignore[no-untyped-def]
    text = scenario_text(small_fit, service="www.example.com")
    scenario = sim.load(yaml.safe_load(text))
    assert scenario.cohort_sizes() == {c.name: round(c.size.value) for c in small_fit.cohorts}
    rates = {c.name: c.rate for c in scenario.clients}
    for c in small_fit.cohorts:
        assert rates[c.name] == pytest.approx(c.rate.value, rel=1e-5)
    groups = {g.name: g for g in scenario.dns.resolvers}
    assert sorted(groups) == ["cap", "honor"] and groups["cap"].count == 4
    assert groups["cap"].policy.kind == "cap"
    assert abs(sum(g.share for g in scenario.dns.resolvers) - 1.0) <= 1e-9
    assert (scenario.dns.zone, scenario.dns.service_name) == ("example.com", "www")


def test_every_fitted_value_has_its_interval_beside_it_and_no_address(small_fit) -> None:  # type: ignore[no-untyped-def]
    text = scenario_text(small_fit, service="www.example.com")
    for line in text.splitlines():
        if line.strip().startswith(("count:", "rate:", "keepalive:")) or "share:" in line:
            assert "#" in line, line
    assert "95% CI" in text and "service_ttl: 60" in text  # the TTL guessed from the gaps
    assert "10.0." not in text and "192.0." not in text and "2001:db8" not in text


def test_without_dns_logs_the_default_resolvers(tmp_path: Path, small_fit) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    text = scenario_text(replace(small_fit, resolvers=None), service="example.com")
    scenario = sim.load(yaml.safe_load(text))
    assert scenario.dns.service_name == "@" and [g.name for g in scenario.dns.resolvers] == ["isp"]
