"""Planning metrics (issue 20) against closed forms: a month of incidents, the error budget, the money."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim.analysis.expect import verdicts
from sim.analysis.planning import MONTH_S, Planning, add_planning, per_replication, planning_inputs
from sim.analysis.stats import positive_ci95
from sim.analysis.strategies import PRICES
from sim.runner import RunError, run
from sim.scenario.models import Expectation
from tests.model.scenarios import scenario

YEAR_S = 8760 * 3600.0
WINDOW_S = 30 * 86400.0


def plan(**changes: object) -> Planning:
    base = dict(kind="balancer_down", rate=2 / YEAR_S, slo=0.999, window_s=WINDOW_S, run_s=1200.0,
                per_failed_request=0.01, per_minute_down=50.0, prices=dict(PRICES))
    base.update(changes)
    return Planning(**base)  # type: ignore[arg-type]


def test_monthly_availability_and_burn_from_a_known_incident() -> None:
    # 1% of 10,000 requests failed over a 1200 s run: 12 s of downtime per incident.
    m = per_replication(plan(), "cname_repoint", failed=100, requests=10_000, dns_queries=1200)
    assert m["incident.downtime_s"] == pytest.approx(12.0)
    # 2 incidents a year: 24 s a year; over a 30-day window, 2 x 30/365 incidents.
    assert m["monthly.availability"] == pytest.approx(1 - 24 / YEAR_S)
    assert m["monthly.downtime_s"] == pytest.approx(24 * WINDOW_S / YEAR_S)
    budget = 0.001 * WINDOW_S  # 99.9% over 30 d: 43.2 minutes
    assert budget == pytest.approx(43.2 * 60)
    assert m["incident.budget_burn"] == pytest.approx(12 / budget)
    assert m["monthly.budget_burn"] == pytest.approx(24 * WINDOW_S / YEAR_S / budget)


def test_expected_outage_cost_and_infrastructure() -> None:
    m = per_replication(plan(), "cname_repoint", failed=100, requests=10_000, dns_queries=1200)
    incidents_a_month = 2 / 12  # 2 a year, a 730 h month
    each = 100 * 0.01 + (12 / 60) * 50.0  # failed requests + minutes down
    assert m["cost.outage"] == pytest.approx(incidents_a_month * each)
    assert m["cost.infrastructure"] == pytest.approx(1.00)  # one zone, one check (failover-sim strategies)
    # One query a second for a 730 h month at $0.40 a million.
    assert m["cost.dns"] == pytest.approx(MONTH_S / 1e6 * 0.40)
    assert m["cost.total"] == pytest.approx(m["cost.infrastructure"] + m["cost.dns"] + m["cost.outage"])
    eip = per_replication(plan(), "eip_remap", failed=100, requests=10_000, dns_queries=1200)
    assert eip["cost.infrastructure"] == pytest.approx(1.00 + 0.005 * 730)  # plus one public IPv4 address


def test_missing_inputs_give_nan_not_a_guess() -> None:
    m = per_replication(plan(rate=None, slo=None, per_failed_request=None, per_minute_down=None),
                        "cname_repoint", failed=100, requests=10_000, dns_queries=0)
    for name in ("monthly.availability", "monthly.budget_burn", "incident.budget_burn", "cost.outage"):
        assert math.isnan(m[name]), name
    assert m["incident.downtime_s"] == pytest.approx(12.0)
    assert m["cost.total"] == pytest.approx(1.00)  # the outage unknown, counted as 0 (and said so)


def test_interval_is_propagated_from_the_incident() -> None:
    s = scenario(incidents={"balancer_down": "4/year"}, slo={"availability": "99.9%"}).replace(duration="1200s")
    reps = pd.DataFrame({"strategy": "eip_remap", "replication": [0, 1, 2, 3], "failed": [90, 110, 100, 120],
                         "requests": [10_000] * 4, "dns_queries": [0] * 4})
    summary = add_planning({"strategies": {"eip_remap": {"ci95": {}}}}, reps, s)
    shares = reps["failed"] / reps["requests"]
    # the incident's failed share and its interval, on the log scale (never below 0)
    _, low, high = positive_ci95(shares)
    ci = summary["strategies"]["eip_remap"]["ci95"]
    rate = 4 / YEAR_S
    assert ci["incident.downtime_s"] == pytest.approx([low * 1200, high * 1200])
    assert ci["monthly.availability"] == pytest.approx([1 - rate * high * 1200, 1 - rate * low * 1200])
    assert summary["planning"]["rate_per_year"] == pytest.approx(4.0) and summary["planning"]["notes"] == [
        "cost.outage needs cost: {per_failed_request: ..., per_minute_down: ...}; counted as 0 in cost.total"
    ]


def test_a_run_reports_the_outage_window_as_downtime() -> None:
    # eip_remap in the validation scenario: down from the fault (10 s) until detection
    # (20 s), the call (2 s) and the remap (5 s) are done: 27 s, for every client alike.
    s = scenario(incidents={"balancer_down": "1/month"}, slo={"availability": "99.9%"},
                 cost={"per_minute_down": 60})
    results = run(s, "des", replications=3, strategies=["eip_remap"])
    metrics = results.summary["strategies"]["eip_remap"]
    assert metrics["incident"]["downtime_s"] == pytest.approx(27.0, rel=0.05)
    rate = 12 / YEAR_S
    assert metrics["monthly"]["availability"] == pytest.approx(1 - rate * metrics["incident"]["downtime_s"])
    assert metrics["cost"]["outage"] == pytest.approx(metrics["incident"]["downtime_s"], rel=1e-9)  # 1 a month x $60/min
    expect = [Expectation(strategy="eip_remap", metric="monthly.availability", op=">=", value=0.9999),
              Expectation(strategy="eip_remap", metric="monthly.budget_burn", op="<=", value=0.01)]
    decided = {v.expectation.metric: v.status for v in verdicts("validation", expect, results)}
    # 27 s a month is 99.999%; and 27 s is 1.04% of a 99.9% budget (43.2 min).
    assert decided == {"monthly.availability": "pass", "monthly.budget_burn": "fail"}


def test_unknown_price_key_is_refused() -> None:
    s = scenario(cost={"prices": {"zone_mnth": 1}})
    assert planning_inputs(scenario()).notes  # no inputs: each missing one is said
    with pytest.raises(RunError, match=r"cost\.prices\.zone_mnth: unknown price"):
        run(s, "fast", replications=1)


def test_the_table_says_which_input_a_dash_lacks() -> None:
    results = run(scenario(), "fast", replications=2)
    text = results.table()
    assert "planning: monthly.* and cost.outage need incidents: {balancer_down: RATE}" in text
    row = next(line for line in text.splitlines() if line.startswith("monthly availability (%)"))
    assert row.split()[-1] == "-"  # no rate given: no monthly availability, not a guess
    assert results.summary["strategies"]["eip_remap"]["monthly"]["availability"] is None


def test_planning_intervals_stay_within_their_quantity() -> None:
    """One replication without a failure among three: a Student-t interval went below 0
    for downtime and above 1 for monthly availability; these never do."""
    s = scenario(incidents={"balancer_down": "1/month"}, slo={"availability": "99.9%"},
                 cost={"per_failed_request": 0.01}).replace(duration="1200s")
    reps = pd.DataFrame({"strategy": "eip_remap", "replication": [0, 1, 2], "failed": [0, 40, 0],
                         "requests": [10_000] * 3, "dns_queries": [0] * 3})
    ci = add_planning({"strategies": {"eip_remap": {"ci95": {}}}}, reps, s)["strategies"]["eip_remap"]["ci95"]
    for name, (low, high) in ci.items():
        assert low is None or low >= 0, name
        if name.endswith("availability"):
            assert high is None or high <= 1.0, name
