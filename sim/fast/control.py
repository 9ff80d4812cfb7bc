"""The control plane, discrete as in the model: the faults, their detection, the plan's actions.

The data plane needs only when the active balancer stops answering, when it
comes back, how it fails (refuse or blackhole), and when the failover takes
effect: the plan's `effective` action (the new record answered by every
authoritative server, or the static address answering at the standby).
Detection runs the same health-check state machine, on the same probe
schedule, as the model's detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.policy.health import HealthState, first_probe_at, probe_duration, probe_ok, probe_step
from sim.scenario import models as m
from sim.scenario.build import Deployment

# Who notices the fault (a plan's `detection`), of those this module runs: the scenario's
# checks or operator, the DNS provider's checkers, an accelerator's checks, a VRRP backup's timer.
DETECTIONS = ("scenario", "provider_checks", "accelerator_checks", "master_down")


@dataclass(frozen=True)
class ControlPlane:
    fault_at: float  # inf: no balancer fault
    fault_end: float  # inf: down for the rest of the run
    mode: str  # refuse | blackhole
    detected_at: float  # inf: never detected
    effective_at: float  # inf: the failover never takes effect within the run
    # When the service first pointed elsewhere: a planned change, or the failover's first
    # action, whichever came first (the model's changed_at); inf: no change in the run.
    changed_at: float = math.inf

    def down(self, t: float) -> bool:
        return self.fault_at <= t < self.fault_end


def control_plane(deployment: Deployment, rng: np.random.Generator) -> ControlPlane:
    scenario = deployment.scenario
    faults = [f for f in scenario.faults if isinstance(f, m.BalancerDown) and f.target == scenario.active.name]
    if not faults:
        return _planned(deployment, ControlPlane(math.inf, math.inf, "refuse", math.inf, math.inf), rng)
    # Every fault of the active balancer until the detector turns: a fault too short for its
    # checks leaves the next one to be detected, as the model's detector runs until it does.
    spans = sorted((f.at, math.inf if f.for_ is None else f.at + f.for_) for f in faults)
    fault = min(faults, key=lambda f: f.at)
    start, stop = spans[0]
    detected = _detected(deployment, spans, fault.mode, rng)
    plan = deployment.plan
    effective = changed = math.inf
    if detected <= scenario.end:
        actions = plan.actions_after_detection(detected, rng)
        changed = actions[0].at  # the plan's first action makes the change (as in the model)
        for action in actions:
            if action.kind == plan.effective:
                effective = action.at
    return _planned(deployment, ControlPlane(start, stop, fault.mode, detected, effective, changed), rng)


def _planned(deployment: Deployment, ctl: ControlPlane, rng: np.random.Generator) -> ControlPlane:
    """The planned change this strategy makes (a dns_change, or an address_move), if any:
    made at its time, in effect after the plan's own second delay (propagation, remap,
    gratuitous ARP or shift), as in the model. A change and a failover to the same target
    is one change: whichever comes first makes it, the later one changes nothing."""
    planned = deployment.scenario.planned_change(deployment.published.changes_dns)
    if planned is None or planned.at >= deployment.scenario.end:
        return ctl
    _, delay = deployment.plan.delays(rng)  # type: ignore[attr-defined]
    return replace(ctl, changed_at=min(ctl.changed_at, planned.at), effective_at=min(ctl.effective_at, planned.at + delay))


Spans = list[tuple[float, float]]  # the active balancer's faults, [start, stop), in time order


def _detected(deployment: Deployment, spans: Spans, mode: str, rng: np.random.Generator) -> float:
    """When the plan's detector (one of DETECTIONS) declares the active balancer down."""
    who, spec, end = deployment.plan.detection, deployment.failover, deployment.scenario.end
    if who == "provider_checks":
        return _provider_detection(spec.provider, spans, mode, end, rng)
    if who == "master_down":
        return _master_down(spec.vrrp, spans, rng)
    if who == "scenario" and spec.detection == "operator":
        return spans[0][0] + (spec.delay or 0.0)
    # One checker: the scenario's health checks, or the accelerator's.
    return _health_check_detection(deployment.detector_check(), spans, mode, end, rng)


def _provider_detection(checks, spans: Spans, mode: str, end: float, rng: np.random.Generator) -> float:  # type: ignore[no-untyped-def]
    """The DNS provider's checkers, each on its own phase; the verdict turns when `down_needed` have turned."""
    hc = checks.health_check()
    times = sorted(_health_check_detection(hc, spans, mode, end, rng) for _ in range(checks.checkers))
    return times[checks.down_needed - 1]


def _master_down(vrrp, spans: Spans, rng: np.random.Generator) -> float:  # type: ignore[no-untyped-def]
    """A VRRP backup declares the master down Master_Down_Interval after the last advertisement
    it heard; advertisements every advert_int from a random phase, sent while the balancer is up.
    The first fault that outlasts the timer is detected."""
    adv, mdi = vrrp.advert_int, vrrp.master_down_interval
    phase = (float(rng.random()) - 1.0) * adv
    for start, stop in spans:
        last = phase
        if last < start:
            last += math.floor((start - last) / adv) * adv  # the last advertisement before the fault
            if last >= start:
                last -= adv
        if stop - last > mdi:
            return last + mdi
    return math.inf  # the master came back each time before the backup's timer ran out


def _health_check_detection(hc, spans: Spans, mode: str, end: float, rng: np.random.Generator) -> float:  # type: ignore[no-untyped-def]
    """The model's detector: probes from a random phase; a probe meets a fault if it starts during it."""
    t = first_probe_at(float(rng.random()), hc)
    start, last_stop = spans[0][0], max(stop for _, stop in spans)
    if t < start:
        # Probes before the fault succeed and take no time: jump the lattice.
        t += math.floor((start - t) / hc.interval) * hc.interval
    state = HealthState()
    while t <= min(end, last_stop):
        outcome = mode if any(a <= t < b for a, b in spans) else "ok"
        t += probe_duration(outcome, hc)
        state, transition = probe_step(state, probe_ok(outcome), hc)
        if transition == "down":
            return t
        t += hc.interval
    return math.inf
