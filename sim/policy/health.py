"""The active health-check state machine, written as data, with HAProxy semantics.

A checker probes a target every ``interval``; ``fall`` consecutive failures take a
healthy target down, ``rise`` consecutive successes bring it back, and any result
of the other kind resets the running count. Defaults are HAProxy's (``inter 2s``,
``fall 3``, ``rise 2``; with no ``timeout check`` a check is bounded by ``inter``,
hence 2 s), docs/references.md "Balancers".

HAProxy's documentation states ``fall``/``rise`` as *consecutive* checks, which is
what this machine does; its implementation keeps a single saturating counter, which
behaves the same for a steady failure and differs only while a target flaps.

Probes run in sequence: the next starts ``interval`` after the previous one ended,
so a probe that times out stretches the period by ``timeout``. That is the source
of "plus the check timeout per check when the failure is a blackhole" in the closed
form for detection time, (F - 1) I .. F I, mean (F - 1/2) I (docs/references.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sim.policy.outcomes import is_success, waits_for_timeout

__all__ = [
    "TRANSITIONS",
    "HealthCheckSpec",
    "HealthState",
    "detection_time",
    "first_probe_at",
    "on_probe",
    "probe_duration",
    "probe_ok",
    "probe_step",
]


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """Health-check parameters in seconds and counts (HAProxy defaults)."""

    interval: float = 2.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3

    def __post_init__(self) -> None:
        if not self.interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {self.interval!r}")
        if not self.timeout >= 0:
            raise ValueError(f"timeout must be >= 0 seconds, got {self.timeout!r}")
        if self.rise < 1 or self.fall < 1:
            raise ValueError(f"rise and fall must be >= 1, got rise={self.rise}, fall={self.fall}")


class HealthState(NamedTuple):
    """Where the checker stands: the verdict and the running counts behind it.

    Only one count is ever non-zero: successes while working towards ``rise`` from
    down, failures while working towards ``fall`` from up.
    """

    healthy: bool = True
    successes: int = 0
    failures: int = 0


# (healthy, probe ok) -> (count that grows: "successes" | "failures" | None,
#                         spec threshold that flips the verdict, verdict after the flip).
# None: the probe agrees with the verdict, so both counts reset.
TRANSITIONS: dict[tuple[bool, bool], tuple[str | None, str | None, bool]] = {
    (True, True): (None, None, True),
    (True, False): ("failures", "fall", False),
    (False, False): (None, None, False),
    (False, True): ("successes", "rise", True),
}

_UP = HealthState(True, 0, 0)
_DOWN = HealthState(False, 0, 0)


def on_probe(state: HealthState, ok: bool, spec: HealthCheckSpec) -> HealthState:
    """The state after one probe result."""
    return probe_step(state, ok, spec)[0]


def probe_step(
    state: HealthState, ok: bool, spec: HealthCheckSpec
) -> tuple[HealthState, str | None]:
    """The state after one probe result and the transition it caused: ``"down"``,
    ``"up"`` or None."""
    counter, threshold, flipped = TRANSITIONS[(state.healthy, ok)]
    if counter is None:
        return (_UP if flipped else _DOWN), None
    n = (state.failures if counter == "failures" else state.successes) + 1
    if n >= getattr(spec, threshold):  # type: ignore[arg-type]
        return (_UP, "up") if flipped else (_DOWN, "down")
    if counter == "failures":
        return HealthState(state.healthy, 0, n), None
    return HealthState(state.healthy, n, 0), None


def probe_ok(outcome: str) -> bool:
    """Whether a probe against a target in this condition succeeds."""
    return is_success(outcome)


def probe_duration(outcome: str, spec: HealthCheckSpec) -> float:
    """Seconds from sending a probe to knowing its result, network RTT excluded.

    A healthy target answers at once (0) and so does a refusing one (RST, 0); a
    blackholed one is known dead only when the probe's ``timeout`` runs out.
    """
    return spec.timeout if waits_for_timeout(outcome) else 0.0


def first_probe_at(phase_u: float, spec: HealthCheckSpec) -> float:
    """Time of the first probe for a checker started at a random phase ``u`` in [0, 1)."""
    return phase_u * spec.interval


def detection_time(
    fault_at: float,
    first_probe: float,
    spec: HealthCheckSpec,
    outcome: str = "refuse",
    state: HealthState | None = None,
) -> float:
    """When the machine declares a target down that fails hard at ``fault_at``.

    Runs the machine on the probe schedule: probes start at ``first_probe`` and
    then ``interval`` after each previous probe ended; probes starting at or after
    ``fault_at`` meet the fault ``outcome``, earlier ones succeed at once. Returns
    the time the ``"down"`` transition is known (the end of the deciding probe).
    """
    if is_success(outcome):
        raise ValueError(f"outcome {outcome!r} is not a failure; nothing to detect")
    st = _UP if state is None else state
    t = first_probe
    interval = spec.interval
    if t < fault_at:
        # healthy probes take no time, so the schedule is a lattice up to the fault
        k = int((fault_at - t) // interval)
        t += k * interval
        if t < fault_at:
            st = on_probe(st, True, spec)
            t += interval
    if not st.healthy:
        raise ValueError("the target is already down at the fault; nothing to detect")
    took = probe_duration(outcome, spec)
    while True:
        st, event = probe_step(st, False, spec)
        end = t + took
        if event == "down":
            return end
        t = end + interval
