"""Backend instances that die (`instance_down`): the share of requests that fail, second by second.

The balancer picks among the instances its health checks call healthy; a dead
one still called healthy fails the request, unless the balancer's retries
(without picking the same instance twice) reach a live one. Each victim's
checker runs the same state machine on the same probe schedule as the
model's (sim.policy.health), so the time a dead instance stays eligible is
the model's. Balancing is taken as a uniform pick (exact for random, the
long-run share for round robin and least outstanding).
"""

from __future__ import annotations

import math

import numpy as np

from sim.policy.health import HealthState, first_probe_at, probe_duration, probe_ok, probe_step
from sim.scenario import build
from sim.scenario import models as m

# The model's connect timeout towards a blackholed instance (HAProxy's documented examples use 5 s).
CONNECT_TIMEOUT = 5.0


def failure_share(scenario: m.Scenario, seconds: int, rng: np.random.Generator) -> tuple[np.ndarray, str, str, np.ndarray]:
    """(share of requests failing in each second, the outcome they fail with, the fault's mode,
    share whose first pick is a dead instance: with a blackhole and retries, those that then
    succeed wait the balancer's connect timeout first)."""
    spec = scenario.backends
    faults = [f for f in scenario.faults if isinstance(f, m.InstanceDown)]
    share = np.zeros(seconds)
    if not faults:
        return share, "error_5xx", "refuse", share
    hc = build.health_check(spec.health_check)
    n = spec.instances
    t = np.arange(seconds) + 0.5
    dead = np.zeros((n, seconds), dtype=bool)
    eligible = np.ones((n, seconds), dtype=bool)
    mode = faults[0].mode
    for fault in faults:
        victims = rng.choice(n, size=min(fault.count, n), replace=False)
        start, stop = fault.at, fault.at + fault.for_
        for v in victims:
            dead[v] |= (t >= start) & (t < stop)
            down_at, up_at = _checker(hc, start, stop, fault.mode, scenario.end, float(rng.random()))
            eligible[v] &= ~((t >= down_at) & (t < up_at))
    e = eligible.sum(axis=0)
    d = (eligible & dead).sum(axis=0)
    tries = np.minimum(spec.retries + 1, np.maximum(e, 1))
    share = np.ones(seconds)
    for i in range(int(tries.max())):
        # Every try so far landed on a dead instance (picks without replacement).
        step = np.where(i < tries, np.clip(d - i, 0, None) / np.maximum(e - i, 1), 1.0)
        share *= step
    share = np.where(e == 0, 1.0, share)  # no healthy instance: 503
    timeout = min(c.retry.timeout for c in scenario.clients)
    outcome = "timeout" if mode == "blackhole" and timeout <= CONNECT_TIMEOUT else "error_5xx"
    first_dead = np.where(e == 0, 1.0, d / np.maximum(e, 1))
    return share, outcome, mode, first_dead


def _checker(hc, start: float, stop: float, mode: str, end: float, phase: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """When the victim's checker marks it down, and up again after it recovers (inf: not in the run)."""
    t = first_probe_at(phase, hc)
    if t < start:
        t += math.floor((start - t) / hc.interval) * hc.interval
    state = HealthState()
    down = math.inf
    while t <= end:
        outcome = mode if start <= t < stop else "ok"
        t += probe_duration(outcome, hc)
        state, transition = probe_step(state, probe_ok(outcome), hc)
        if transition == "down":
            down = t
        elif transition == "up":
            return down, t
        if t >= stop and state.healthy:
            return down, (t if math.isfinite(down) else math.inf)
        t += hc.interval
    return down, math.inf
