"""Slow background processes: ELB node churn and scaling, instance failures, autoscaling.

They change which addresses exist and how many instances serve; the
request path sees their effect only through the objects it already reads.
They drive a replication through its public interface (`Host`, below;
sim.model.engine.Replication provides it), never its internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model.world import REFUSE, UP, Balancer, Endpoint, Instance
from sim.policy.scaling import SCALING_CHECK, scaling_decision, wants_node
from sim.scenario import models as m


class Host(Protocol):
    """What a background process may read and call of a replication."""

    env: simpy.Environment
    rng: dict[str, np.random.Generator]
    scenario: m.Scenario
    balancers: dict[str, Balancer]
    instances: list[Instance]
    fleet: list[tuple[float, int]]  # (time, instances live or launching), appended at each scaling decision

    def add_node(self, balancer: Balancer) -> Endpoint: ...

    def publish_nodes(self, balancer: Balancer) -> None: ...

    def launch_instance(self, healthy: bool) -> Instance: ...

    def retire_instance(self, inst: Instance) -> None: ...

    def kill(self, inst: Instance, mode: str) -> None: ...

    def later(self, delay: float, callback: Callable[[Timeout], None], value: object) -> None: ...


def start(rep: Host) -> None:
    sc = rep.scenario
    for spec in sc.balancers:
        balancer = rep.balancers[spec.name]
        if spec.churn is not None:
            rep.env.process(_churn(rep, balancer, spec.churn, spec.drain))
        if spec.scale_delay is not None:
            rep.env.process(_node_scaling(rep, balancer, spec))
    if sc.backends.failures is not None:
        for inst in list(rep.instances):
            rep.env.process(_failures(rep, inst))
    if sc.backends.autoscaling is not None:
        rep.env.process(_autoscaling(rep))


def _churn(rep: Host, balancer: Balancer, mean_between: float, drain: float):  # type: ignore[no-untyped-def]
    """ELB replaces node addresses now and then: the new one is published at
    once; the old one keeps answering for `drain`, then refuses. Clients that
    hold the old address (resolve-once proxies, caches kept forever, pooled
    connections) then fail, with no outage anywhere."""
    rng = rep.rng["control"]
    while True:
        # Each node is replaced on average every `mean_between`.
        yield rep.env.timeout(rng.exponential(mean_between / max(1, len(balancer.nodes))))
        old = balancer.nodes[int(rng.integers(len(balancer.nodes)))]
        balancer.nodes.remove(old)
        rep.add_node(balancer)
        rep.publish_nodes(balancer)
        rep.env.process(_retire(rep, old, drain))


def _retire(rep: Host, node: Endpoint, drain: float):  # type: ignore[no-untyped-def]
    yield rep.env.timeout(drain)
    node.retired = True


def _node_scaling(rep: Host, balancer: Balancer, spec):  # type: ignore[no-untyped-def]
    """Nodes are added when the load per node passes capacity, after a delay."""
    rng = rep.rng["control"]
    while True:
        balancer.requests = 0
        yield rep.env.timeout(SCALING_CHECK)
        if wants_node(balancer.requests, len(balancer.nodes), spec.capacity) and not balancer.scaling:
            balancer.scaling = True
            rep.env.process(_add_node_later(rep, balancer, float(spec.scale_delay.sample(rng, 1)[0])))


def _add_node_later(rep: Host, balancer: Balancer, delay: float):  # type: ignore[no-untyped-def]
    yield rep.env.timeout(delay)
    rep.add_node(balancer)
    balancer.front.capacity += balancer.capacity
    rep.publish_nodes(balancer)
    balancer.scaling = False


def _failures(rep: Host, inst):  # type: ignore[no-untyped-def]
    spec = rep.scenario.backends.failures
    rng = rep.rng["faults"]
    while not inst.removed:
        yield rep.env.timeout(rng.exponential(spec.mtbf))
        if inst.mode is UP and not inst.removed:
            rep.kill(inst, REFUSE)
            yield rep.env.timeout(float(spec.repair.sample(rng, 1)[0]))
            inst.mode = UP


def _autoscaling(rep: Host):  # type: ignore[no-untyped-def]
    """Target tracking: every `period`, size the fleet so that utilization
    (busy workers over all workers, sampled each second) meets the target;
    new instances serve after `launch_delay` and once health checks pass."""
    spec = rep.scenario.backends.autoscaling
    rng = rep.rng["control"]
    env = rep.env
    pending = 0

    def launched(_event) -> None:  # type: ignore[no-untyped-def]
        nonlocal pending
        pending -= 1
        rep.launch_instance(healthy=False)

    while True:
        busy = 0.0
        samples = 0
        for _ in range(max(1, int(spec.period))):
            yield env.timeout(spec.period / max(1, int(spec.period)))
            serving = [i for i in rep.instances if not i.removed and i.mode is UP]
            busy += sum(i.busy for i in serving) / max(1, sum(i.workers for i in serving))
            samples += 1
        utilization = busy / samples
        live = [i for i in rep.instances if not i.removed]
        change = scaling_decision(len(live), pending, utilization, spec.min, spec.max, spec.target_utilization)
        if change > 0:
            for _ in range(change):
                pending += 1
                rep.later(float(spec.launch_delay.sample(rng, 1)[0]), launched, None)
        elif change < 0:
            # Scale in: the instance with the least work in flight.
            rep.retire_instance(min(live, key=lambda i: i.outstanding))
        rep.fleet.append((env.now, len([i for i in rep.instances if not i.removed]) + pending))

