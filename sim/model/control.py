"""The control plane: faults, the failover's detector and actions, health checks, the sampler.

`Control` is one part of sim.model.engine.Replication. These are SimPy
processes (generators), a few per replication, not per request. Who detects
the fault and what the failover changes come from the Deployment: the plan's
`detection` (a mechanism, sim.policy.failover.DETECTIONS), its `effective`
action, and what it publishes (`changes_dns`, `moves_address`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from sim.model.clients import Client, Cohort, Request
from sim.model.dns import Authoritative
from sim.model.world import BLACKHOLE, REFUSE, UP, Address, Balancer, Instance
from sim.policy.failover import ProviderChecks, Published, VrrpSpec
from sim.policy.health import (
    HealthCheckSpec,
    HealthState,
    first_probe_at,
    probe_duration,
    probe_ok,
    probe_step,
)
from sim.scenario import models as m
from sim.scenario.build import Deployment


class Control:
    """Faults, failover detection and actions, instance health checks and fleet changes."""

    scenario: m.Scenario
    deployment: Deployment
    published: Published
    env: simpy.Environment
    rng: dict[str, np.random.Generator]
    auth: Authoritative
    balancers: dict[str, Balancer]
    active: Balancer
    standby: Balancer
    addresses: list[Address]
    after_change: object
    moving: list[Address]
    cohorts: list[tuple[Cohort, list[Client]]]
    instances: list[Instance]
    _eligible: list[Instance] | None
    health_spec: HealthCheckSpec
    thinning: dict[int, float]
    old_target: list[int]
    in_system: list[int]
    detected_at: float | None
    current_targets: frozenset[Balancer]
    previous_targets: frozenset[Balancer]
    changed_at: float | None
    # Defined by the request path (sim.model.requests).
    _issue: Callable[[Client], None]
    lost: Callable[[Request, Instance], None]

    # -- faults -------------------------------------------------------------------

    def _fault(self, fault: m.BalancerDown | m.InstanceDown | m.Traffic | m.DnsDown | m.DnsChange | m.AddressMove):  # type: ignore[no-untyped-def]
        env = self.env
        if fault.kind in m.PLANNED:
            return  # a planned change is the plan's to make (_planned_change), not a fault
        yield env.timeout(fault.at)
        if isinstance(fault, m.BalancerDown):
            # Faults of one balancer may overlap: while several are on, the latest one's
            # mode holds, and the balancer is up again only when none is (the end of the
            # first once brought it back while the second was still on).
            balancer = self.balancers[fault.target]
            mode = REFUSE if fault.mode == "refuse" else BLACKHOLE
            on = self.balancer_faults.setdefault(balancer.name, [])
            held = (fault, mode)  # this fault's own entry: another of the same mode may end first
            on.append(held)
            balancer.mode = mode
            if fault.for_ is not None:
                yield env.timeout(fault.for_)
                on.remove(held)
                balancer.mode = on[-1][1] if on else UP
        elif isinstance(fault, m.InstanceDown):
            up = [i for i in self.instances if i.mode is UP and not i.removed]
            picks = self.rng["faults"].choice(len(up), size=min(fault.count, len(up)), replace=False)
            victims = [up[int(k)] for k in picks]
            for inst in victims:
                self.kill(inst, REFUSE if fault.mode == "refuse" else BLACKHOLE)
            yield env.timeout(fault.for_)
            for inst in victims:
                inst.mode = UP
        elif isinstance(fault, m.DnsDown):
            # counted: two outages that overlap are one from the first start to the last end
            self.auth.outages += 1
            yield env.timeout(fault.for_)
            self.auth.outages -= 1
        else:
            yield from self._traffic(fault)

    def _traffic(self, fault: m.Traffic):  # type: ignore[no-untyped-def]
        if fault.factor == 1:
            yield self.env.timeout(fault.for_)
            return
        if fault.factor < 1:
            self.thinning = {i: fault.factor for i in range(len(self.cohorts))}
            yield self.env.timeout(fault.for_)
            self.thinning = {}
            return
        until = self.env.now + fault.for_
        rng = self.rng["traffic"]
        for cohort, members in self.cohorts:
            self.env.process(self._extra_arrivals(cohort, members, (fault.factor - 1) * cohort.rate * len(members), until, rng))
        yield self.env.timeout(fault.for_)

    def _extra_arrivals(self, cohort: Cohort, members: list[Client], rate: float, until: float, rng: np.random.Generator):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(rng.exponential(1.0 / rate))
            if self.env.now >= until:
                return
            self._issue(members[int(rng.integers(len(members)))])

    def kill(self, inst: Instance, mode: str) -> None:
        """`inst` fails (REFUSE or BLACKHOLE): the work it queues is lost now; the
        requests in service are failed when their completion fires (generation)."""
        inst.mode = mode
        inst.generation += 1
        lost = list(inst.queue)
        inst.queue.clear()
        inst.busy = 0
        inst.outstanding = 0
        for req in lost:
            self.lost(req, inst)

    # -- the failover -------------------------------------------------------------

    def _detector(self):  # type: ignore[no-untyped-def]
        """Whoever notices the fault (the plan says who), then the plan's actions."""
        plan, spec = self.deployment.plan, self.deployment.failover
        rng = self.rng["failover"]
        env = self.env
        detection = plan.detection
        if detection == "scenario" and spec.detection == "operator":
            faults = [f for f in self.scenario.faults if isinstance(f, m.BalancerDown) and f.target == self.active.name]
            if not faults:
                return
            yield env.timeout(faults[0].at + (spec.delay or 0.0))
        elif detection == "provider_checks":
            yield from self._provider_verdict(spec.provider)
        elif detection == "master_down":
            yield from self._master_down(spec.vrrp)
        elif detection in ("scenario", "accelerator_checks"):
            yield from self._checker(self.deployment.detector_check(), float(rng.random()), lambda up: not up)
        else:
            raise ValueError(f"{plan.name}: no detector for detection {detection!r}")
        self.detected_at = env.now
        for i, action in enumerate(plan.actions_after_detection(env.now, rng)):
            yield env.timeout(max(0.0, action.at - env.now))
            if i == 0:
                self._change_target()  # the plan's first action makes the change
            self._apply(action.kind)

    def _planned_change(self, at: float):  # type: ignore[no-untyped-def]
        """A planned DNS change or address move (docs/scenario.md, `dns_change`):
        made at `at`, in effect after the plan's own second delay (propagation,
        remap, gratuitous ARP or shift), while the old target keeps serving."""
        yield self.env.timeout(at)
        self._change_target()
        _, delay = self.deployment.plan.delays(self.rng["failover"])
        yield self.env.timeout(delay)
        self._take_effect()

    def _change_target(self) -> None:
        """The service now points at the standby: the active becomes the previous
        target. A second change to the same target (a failover after a planned
        change) changes nothing."""
        if self.current_targets == {self.standby}:
            return
        self.previous_targets, self.current_targets = self.current_targets, frozenset({self.standby})
        for balancer in self.balancers.values():
            balancer.current = balancer in self.current_targets
        self.changed_at = self.env.now

    def _checker(self, hc: HealthCheckSpec, phase: float, stop: Callable[[bool], bool]):  # type: ignore[no-untyped-def]
        """One health checker probing the active balancer; after each verdict
        change (True: up), `stop` says whether to end."""
        env = self.env
        state = HealthState()
        yield env.timeout(first_probe_at(phase, hc))
        while True:
            outcome = "ok" if self.active.mode is UP else self.active.mode
            took = probe_duration(outcome, hc)
            if took:
                yield env.timeout(took)
            state, transition = probe_step(state, probe_ok(outcome), hc)
            if transition is not None and stop(transition == "up"):
                return
            yield env.timeout(hc.interval)

    def _provider_verdict(self, checks: ProviderChecks):  # type: ignore[no-untyped-def]
        """The DNS provider's checkers, each on its own phase; the endpoint is
        down once too few of them still see it healthy."""
        hc = checks.health_check()
        rng = self.rng["control"]
        verdict = self.env.event()
        healthy = [checks.checkers]

        def stop(up: bool) -> bool:
            healthy[0] += 1 if up else -1
            if not verdict.triggered and not checks.healthy(healthy[0]):
                verdict.succeed()
            return verdict.triggered

        for _ in range(checks.checkers):
            self.env.process(self._checker(hc, float(rng.random()), stop))
        yield verdict

    def _master_down(self, vrrp: VrrpSpec):  # type: ignore[no-untyped-def]
        """A VRRP backup's Master_Down timer, restarted by every advertisement
        the master sends while its balancer is up (RFC 5798 6.4.2); the master
        sends one every advert_int from a random phase. Detection comes when the
        timer runs out: Master_Down_Interval after the last advertisement heard."""
        env, adv, mdi = self.env, vrrp.advert_int, vrrp.master_down_interval
        last = (float(self.rng["control"].random()) - 1.0) * adv  # the last advertisement before time 0
        deadline, following = last + mdi, last + adv
        while following < deadline:
            yield env.timeout(following - env.now)
            if self.active.mode is UP:
                deadline = env.now + mdi
            following += adv
        yield env.timeout(deadline - env.now)

    def _apply(self, kind: str) -> None:
        """A plan's action: at its effective one, the zone answers the new value
        and the moving addresses lead to the standby, as the plan publishes."""
        if kind == self.deployment.plan.effective:
            self._take_effect()

    def _take_effect(self) -> None:
        if self.published.changes_dns:
            self.auth.value = self.after_change
        if self.published.moves_address:
            for address in self.moving:
                address.endpoint = self.standby.front

    # -- instances ----------------------------------------------------------------

    def launch_instance(self, healthy: bool) -> Instance:
        """A new backend instance, health-checked from now on; `healthy` is the
        balancer's first verdict (False: it serves once its checks pass)."""
        spec = self.scenario.backends
        inst = Instance(len(self.instances), spec.workers, spec.queue_limit, HealthState(healthy, 0, 0))
        inst.healthy = healthy
        self.instances.append(inst)
        self._eligible = None
        self.env.process(self._check_instance(inst))
        return inst

    def retire_instance(self, inst: Instance) -> None:
        """Scale in: `inst` takes no new work; what it holds finishes."""
        inst.draining = True
        inst.removed = True
        self._eligible = None

    def _check_instance(self, inst: Instance):  # type: ignore[no-untyped-def]
        hc = self.health_spec
        env = self.env
        yield env.timeout(first_probe_at(float(self.rng["control"].random()), hc))
        while not inst.removed:
            outcome = "ok" if inst.mode is UP else inst.mode
            took = probe_duration(outcome, hc)
            if took:
                yield env.timeout(took)
            inst.health, transition = probe_step(inst.health, probe_ok(outcome), hc)
            if transition is not None:
                inst.healthy = transition == "up"
                self._eligible = None
            yield env.timeout(hc.interval)

    def _sampler(self):  # type: ignore[no-untyped-def]
        """Once a second: how many clients send to an address that leads nowhere."""
        env = self.env
        while True:
            second = int(env.now)
            self.old_target[second] = sum(a.users for a in self.addresses if a.endpoint.mode is not UP)
            self.in_system.append(sum(i.outstanding for i in self.instances))
            yield env.timeout(1.0)
