"""The planning inputs of issue 20: incident rates, the SLO, the cost of an outage."""

from __future__ import annotations

import pytest

from sim.scenario import ScenarioError, load_text
from sim.scenario.units import format_period_rate, parse_fraction, parse_incident_rate, parse_rate
from tests.scenario.test_loader import MINIMAL

YEAR_S = 8760 * 3600.0


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("2/year", 2 / YEAR_S), ("1/month", 12 / YEAR_S), ("3/week", 3 / (7 * 86400.0)), ("2/y", 2 / YEAR_S),
     ("1/mo", 1 / (730 * 3600.0)), ("60/min", 1.0)],
)
def test_period_rates(text: str, per_second: float) -> None:
    assert parse_incident_rate(text) == pytest.approx(per_second, rel=1e-12)


def test_client_rates_keep_their_units() -> None:
    # A period unit is for incidents only: a client's `1/week` stays an error.
    with pytest.raises(ValueError):
        parse_rate("1/week")
    with pytest.raises(ValueError):
        parse_incident_rate("2/decade")
    assert parse_incident_rate(1e-7) == 1e-7  # a bare number is per second, as every rate


def test_planning_fields_survive_an_edit() -> None:
    s = load_text(MINIMAL + "incidents: {balancer_down: 2/year}\nslo: {availability: 99.9%}\n")
    edited = s.with_values({"duration": "10m"})
    assert edited.incidents == s.incidents and edited.slo == s.slo


def test_period_rate_round_trips() -> None:
    for text in ("2/year", "12/year", "3/week", "0.5/year"):
        assert parse_incident_rate(format_period_rate(parse_incident_rate(text))) == pytest.approx(parse_incident_rate(text), rel=1e-12)


def test_shares() -> None:
    assert parse_fraction("99.95%") == pytest.approx(0.9995)
    assert parse_fraction(0.999) == 0.999
    for bad in ("100%", "0%", 1.5, "ninety"):
        with pytest.raises(ValueError):
            parse_fraction(bad)


def test_planning_fields_are_optional_without_defaults() -> None:
    s = load_text(MINIMAL)
    assert s.incidents == {} and s.slo is None
    assert s.cost.per_failed_request is None and s.cost.per_minute_down is None and s.cost.prices == {}


def test_planning_fields_parse() -> None:
    s = load_text(
        MINIMAL + "incidents: {balancer_down: 2/year, dns_down: {mtbf: 4380h}}\n"
        "slo: {availability: 99.95%}\ncost: {per_failed_request: 0.01, per_minute_down: 50, prices: {zone_month: 1}}\n"
    )
    assert s.incidents["balancer_down"] == pytest.approx(2 / YEAR_S)
    assert s.incidents["dns_down"] == pytest.approx(1 / (4380 * 3600.0))
    assert s.slo is not None and s.slo.availability == pytest.approx(0.9995) and s.slo.window == 30 * 86400.0
    assert s.cost.per_minute_down == 50 and s.cost.prices == {"zone_month": 1.0}
    doc = s.to_document()
    assert doc["incidents"]["balancer_down"] == "2/year" and doc["slo"] == {"availability": "99.95%", "window": "30d"}


@pytest.mark.parametrize(
    ("extra", "path"),
    [("incidents: {balancer_dwn: 2/year}\n", "incidents.balancer_dwn"),
     ("incidents: {balancer_down: 2/decade}\n", "incidents"),
     ("incidents: {balancer_down: {mtbf: 0s}}\n", "incidents"),
     ("slo: {availability: 100%}\n", "slo.availability"),
     ("cost: {per_failed_request: -1}\n", "cost.per_failed_request")],
)
def test_bad_planning_fields_name_the_field(extra: str, path: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_text(MINIMAL + extra, file="plan.yaml")
    problem = err.value.problems[0]
    assert problem.file == "plan.yaml" and problem.path.startswith(path)
