"""Backend instances that die (`instance_down`): when their checker stops calling them healthy.

Each victim's checker runs the same state machine on the same probe schedule
as the model's (sim.policy.health), so the time a dead instance stays
eligible is the model's. What that costs the requests is sim.fast.fleet's.
"""

from __future__ import annotations

import math

from sim.policy.health import HealthState, first_probe_at, probe_duration, probe_ok, probe_step


def checker(hc, start: float, stop: float, mode: str, end: float, phase: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
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
