"""The fast engine runs what a plan publishes and who detects it, whatever the plan's name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.fast import simulate, unsupported
from sim.fast.control import control_plane
from sim.policy.failover import PLANS, EipRemap, MultiA, TwoStepPlan, plan_detection_bounds
from sim.policy.sampling import draw
from sim.scenario.build import compile as compile_strategy
from tests.model.scenarios import scenario

SMALL = {"clients.0.count": 200, "duration": "2m", "dns.resolvers.0.count": 200}


class ThreeStaticAddresses(TwoStepPlan):
    """Three static addresses, all moved at once: eip_remap's mechanism under another name."""

    __slots__ = ()
    name = "three_static_addresses"
    record = "addresses"
    static_addresses = 3
    kinds = ("remap_called", "address_moved")
    second_key = "remap"
    parts = "D + C + remap"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return draw(self.spec.change_delay, rng), draw(self.spec.remap_delay, rng)


class ProviderCheckedCname(TwoStepPlan):
    """A CNAME changed by the DNS provider's health-checked record."""

    __slots__ = ()
    name = "provider_checked_cname"
    detection = "provider_checks"
    kinds = ("status_changed", "propagated")
    second_key = "propagation"
    parts = "D (provider checks) + P + R + S"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return 0.0, draw(self.spec.propagation, rng)


class CarrierPigeon(ProviderCheckedCname):
    __slots__ = ()
    name = "carrier_pigeon"
    detection = "pigeon"


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.metrics == b.metrics
    assert a.clients.equals(b.clients)
    assert a.timeline.equals(b.timeline)


def test_a_strategy_is_a_name_a_class_a_plan_or_a_deployment() -> None:
    sc = scenario(**SMALL, **{"clients.0.keepalive": "30s"})
    deployment = compile_strategy(sc, "eip_remap")
    runs = [simulate(sc, s, np.random.SeedSequence(4)) for s in ("eip_remap", EipRemap, deployment.plan, deployment)]
    for other in runs[1:]:
        _same(runs[0], other)


def test_a_new_plan_class_runs_with_no_edit() -> None:
    """Three addresses that all move when one would have: the same draws, the same tables."""
    sc = scenario(**SMALL, **{"clients.0.keepalive": "30s"})
    _same(simulate(sc, ThreeStaticAddresses, np.random.SeedSequence(3)),
          simulate(sc, EipRemap, np.random.SeedSequence(3)))
    assert unsupported(sc, [ThreeStaticAddresses, ProviderCheckedCname]) == []


def test_a_cname_detected_by_the_provider_waits_for_its_checkers() -> None:
    sc = scenario(**SMALL, **{"failover.provider_checks": {"interval": "10s", "threshold": 2}})
    deployment = compile_strategy(sc, ProviderCheckedCname)
    low, _, _ = plan_detection_bounds("dns_failover", deployment.failover)
    recovery = simulate(sc, deployment, np.random.SeedSequence(5)).clients["recovery_s"].dropna()
    assert len(recovery) > 0
    assert recovery.min() >= low


@pytest.mark.parametrize("name", PLANS)
def test_detection_is_the_plans_own(name: str) -> None:
    """Each plan is detected by its own mechanism (its checks, a timer, the scenario's operator),
    within the closed-form bounds: a renamed detection kind must not fall back to the scenario's."""
    sc = scenario(**{"failover.detection": {"delay": "45s"}})
    deployment = compile_strategy(sc, name)
    low, _, high = plan_detection_bounds(name, deployment.failover)
    fault = sc.faults[0].at
    for k in range(5):
        detected = control_plane(deployment, np.random.default_rng(k)).detected_at - fault
        assert low - 1e-9 <= detected <= high + 1e-9, (name, detected, (low, high))


def test_what_the_engine_cannot_run_is_named_by_mechanism_and_plan() -> None:
    sc = scenario(**{"faults.0.mode": "blackhole"})

    class MovedPerBalancer(MultiA):
        __slots__ = ()
        name = "moved_per_balancer"

        def published(self, service_ttl: float, balancer_ttl: float):  # type: ignore[no-untyped-def]
            return dataclasses.replace(super().published(service_ttl, balancer_ttl), changes_dns=False,
                                       moves_address=True)

    reasons = unsupported(sc, ["multi_a", CarrierPigeon, MovedPerBalancer, "eip_remap"])
    assert reasons[0] == "strategies: multi_a publishes one address per balancer, with a blackholed balancer " \
                         "(fallback delays)"
    assert any(r.startswith("strategies: carrier_pigeon is detected by 'pigeon'") for r in reasons), reasons
    assert any(r.startswith("strategies: moved_per_balancer publishes one address per balancer and moves")
               for r in reasons), reasons
    assert not any("eip_remap" in r for r in reasons)
    with pytest.raises(ValueError, match="carrier_pigeon"):
        simulate(sc, CarrierPigeon, np.random.SeedSequence(1))
