"""An eighth strategy is one plan class: the engines run it with no edit.

Both plans below are defined here, in the test module, and handed to the
engines as they are: they are never registered anywhere. What an engine
cannot run, it says so, naming the plan.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim.fast
import sim.lab
import sim.model
from sim.policy.failover import DnsFailover, EipRemap, plan_detection_bounds
from sim.scenario.build import compile as compile_strategy
from tests.fast.test_agreement import SMALL, assert_agree
from tests.model.scenarios import scenario


class StaticPerZone(EipRemap):
    """A static address per availability zone, three A records, each moved to the standby."""

    __slots__ = ()
    name = "static_per_zone"
    static_addresses = 3


class HealthCheckedCname(DnsFailover):
    """A CNAME whose change is made by the DNS provider's health-checked record."""

    __slots__ = ()
    name = "health_checked_cname"
    record = "cname"


def same_tables(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.metrics == b.metrics
    assert a.clients.equals(b.clients)
    assert a.timeline.equals(b.timeline)


def test_a_plan_class_is_decided_once() -> None:
    sc = scenario()
    deployment = compile_strategy(sc, StaticPerZone)
    assert deployment.strategy == "static_per_zone"
    published = deployment.published
    assert (published.record, published.addresses, published.moves_address, published.changes_dns) == (
        "addresses", 3, True, False)
    cname = compile_strategy(sc, HealthCheckedCname).published
    assert (cname.record, cname.chain_ttl, cname.changes_dns) == ("cname", sc.dns.balancer_ttl, True)


@pytest.mark.parametrize("engine", [sim.model, sim.fast], ids=["model", "fast"])
def test_every_address_moved_at_once_is_eip_remap_under_another_name(engine) -> None:  # type: ignore[no-untyped-def]
    """Three addresses that all move when one would have: the same draws, the same tables."""
    sc = scenario(**{"clients.0.keepalive": "30s"})
    same_tables(engine.simulate(sc, StaticPerZone, np.random.SeedSequence(3)),
          engine.simulate(sc, EipRemap, np.random.SeedSequence(3)))


def test_a_new_plan_runs_on_the_model_and_the_fast_engine_and_they_agree() -> None:
    assert_agree(scenario(**SMALL), StaticPerZone)
    sc = scenario(**SMALL, **{"failover.provider_checks": {"interval": "10s", "threshold": 2}})
    assert_agree(sc, HealthCheckedCname)


@pytest.mark.parametrize("engine", [sim.model, sim.fast], ids=["model", "fast"])
def test_the_health_checked_cname_pays_provider_detection_and_the_caches(engine) -> None:  # type: ignore[no-untyped-def]
    sc = scenario(**{"failover.provider_checks": {"interval": "10s", "threshold": 2}})
    deployment = compile_strategy(sc, HealthCheckedCname)
    low, _, _ = plan_detection_bounds("dns_failover", deployment.failover)
    recovery = engine.simulate(sc, deployment, np.random.SeedSequence(5)).clients["recovery_s"].dropna()
    assert len(recovery) > 0
    # No client can be back before the provider's checkers have turned.
    assert recovery.min() >= low


def test_what_an_engine_cannot_run_it_names() -> None:
    sc = scenario()
    assert sim.model.unsupported(sc, [HealthCheckedCname, StaticPerZone]) == []
    assert sim.fast.unsupported(sc, [HealthCheckedCname, StaticPerZone]) == []
    reasons = sim.lab.unsupported(sc, [HealthCheckedCname, StaticPerZone])
    assert any("health_checked_cname" in r for r in reasons), reasons
    assert any("static_per_zone" in r for r in reasons), reasons
