"""The fast engine runs what a plan publishes and who detects it, whatever the plan's name.

New plans run on both engines in tests/test_new_strategy.py; here, what is the fast engine's own."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim.fast import simulate, unsupported
from sim.fast.control import control_plane
from sim.policy.failover import PLANS, EipRemap, MultiA, plan_detection_bounds
from sim.scenario.build import compile as compile_strategy
from tests.model.scenarios import scenario
from tests.test_new_strategy import HealthCheckedCname, same_tables

SMALL = {"clients.0.count": 200, "duration": "2m", "dns.resolvers.0.count": 200}


class CarrierPigeon(HealthCheckedCname):
    __slots__ = ()
    name = "carrier_pigeon"
    detection = "pigeon"


def test_a_strategy_is_a_name_a_class_a_plan_or_a_deployment() -> None:
    sc = scenario(**SMALL, **{"clients.0.keepalive": "30s"})
    deployment = compile_strategy(sc, "eip_remap")
    runs = [simulate(sc, s, np.random.SeedSequence(4)) for s in ("eip_remap", EipRemap, deployment.plan, deployment)]
    for other in runs[1:]:
        same_tables(runs[0], other)


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
            return dataclasses.replace(super().published(service_ttl, balancer_ttl), changes_dns=False)

    reasons = unsupported(sc, ["multi_a", CarrierPigeon, MovedPerBalancer, "eip_remap"])
    assert reasons[0] == "strategies: multi_a publishes one address per balancer, with a blackholed balancer " \
                         "(fallback delays)"
    assert any(r.startswith("strategies: carrier_pigeon is detected by 'pigeon'") for r in reasons), reasons
    assert any(r.startswith("strategies: moved_per_balancer publishes one address per balancer and moves")
               for r in reasons), reasons
    assert not any("eip_remap" in r for r in reasons)
    with pytest.raises(ValueError, match="carrier_pigeon"):
        simulate(sc, CarrierPigeon, np.random.SeedSequence(1))
