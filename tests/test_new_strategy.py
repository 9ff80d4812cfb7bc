"""An eighth strategy is one plan class: the engines run it with no edit.

Both plans below are defined here, in the test module, and handed to the
engines as they are: they are never registered anywhere. What an engine
cannot run, it says so, naming the plan.
"""

from __future__ import annotations

import numpy as np

import sim.fast
import sim.lab
import sim.model
from sim.policy.failover import EipRemap, TwoStepPlan, plan_detection_bounds
from sim.policy.sampling import draw
from sim.scenario.build import compile as compile_strategy
from tests.fast.test_agreement import SMALL, assert_agree
from tests.model.scenarios import scenario


class StaticPerZone(TwoStepPlan):
    """A static address per availability zone, three A records, each moved to the standby."""

    __slots__ = ()
    name = "static_per_zone"
    record = "addresses"
    static_addresses = 3
    kinds = ("remap_called", "address_moved")
    second_key = "remap"
    parts = "D + C + remap (+ one reset per open connection)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return draw(self.spec.change_delay, rng), draw(self.spec.remap_delay, rng)


class HealthCheckedCname(TwoStepPlan):
    """A CNAME whose change is made by the DNS provider's health-checked record."""

    __slots__ = ()
    name = "health_checked_cname"
    detection = "provider_checks"
    kinds = ("status_changed", "propagated")
    second_key = "propagation"
    parts = "D (provider checks) + P + R + S (+ K, T)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return 0.0, draw(self.spec.propagation, rng)


def test_a_plan_class_is_decided_once() -> None:
    sc = scenario()
    deployment = compile_strategy(sc, StaticPerZone)
    assert deployment.strategy == "static_per_zone"
    published = deployment.published
    assert (published.record, published.addresses, published.moves_address, published.changes_dns) == (
        "addresses", 3, True, False)
    cname = compile_strategy(sc, HealthCheckedCname).published
    assert (cname.record, cname.chain_ttl, cname.changes_dns) == ("cname", sc.dns.balancer_ttl, True)


def test_every_address_moved_at_once_is_eip_remap_under_another_name() -> None:
    """Three addresses that all move when one would have: the same draws, the same outcome."""
    sc = scenario(**{"clients.0.keepalive": "30s"})
    for engine in (sim.model, sim.fast):
        seed = np.random.SeedSequence(3)
        zones = engine.simulate(sc, StaticPerZone, seed)
        one = engine.simulate(sc, EipRemap, np.random.SeedSequence(3))
        for key in ("requests", "failed", "clients_affected"):
            assert zones.metrics[key] == one.metrics[key], (engine.__name__, key)
        assert zones.clients["recovery_s"].sum() == one.clients["recovery_s"].sum()


def test_a_new_plan_runs_on_the_model_and_the_fast_engine_and_they_agree() -> None:
    assert_agree(scenario(**SMALL), StaticPerZone)
    sc = scenario(**SMALL, **{"failover.provider_checks": {"interval": "10s", "threshold": 2}})
    assert_agree(sc, HealthCheckedCname)


def test_the_health_checked_cname_pays_provider_detection_and_the_caches() -> None:
    sc = scenario(**{"failover.provider_checks": {"interval": "10s", "threshold": 2}})
    deployment = compile_strategy(sc, HealthCheckedCname)
    low, _, _ = plan_detection_bounds("dns_failover", deployment.failover)
    out = sim.model.simulate(sc, deployment, np.random.SeedSequence(5))
    recovery = out.clients["recovery_s"].dropna()
    assert len(recovery) > 0
    # No client can be back before the provider's checkers have turned.
    assert recovery.min() >= low


def test_what_an_engine_cannot_run_it_names() -> None:
    sc = scenario()
    assert sim.model.unsupported(sc, [HealthCheckedCname]) == []
    assert sim.fast.unsupported(sc, [HealthCheckedCname]) == []
    reasons = sim.lab.unsupported(sc, [HealthCheckedCname, StaticPerZone])
    assert any("health_checked_cname" in r for r in reasons), reasons
    assert any("static_per_zone" in r for r in reasons), reasons
