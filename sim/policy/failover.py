"""Failover strategies as plans of timed actions.

After a fault on the active balancer at t0 a failover goes: detection D, then the
API call C (``change_delay``), then either DNS propagation P (``cname_repoint``) or
the address move (``eip_remap``'s ``remap_delay``), as DESIGN.md's table and
scenario-v1.md describe. A plan only says *when* its control-plane actions happen;
what they do to caches and connections is the engine's business, so the downtime
comes from mechanisms and the formulas stay for the tests.

Detection either comes from health checks (``interval`` x ``threshold``, run through
:mod:`sim.policy.health` against the failed balancer) or from an operator after a
fixed ``delay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sim.policy.health import HealthCheckSpec
from sim.policy.outcomes import waits_for_timeout
from sim.policy.sampling import Constant, Sampler, draw

__all__ = [
    "PLANS",
    "Action",
    "CnameRepoint",
    "EipRemap",
    "FailoverPlan",
    "FailoverSpec",
    "detection_bounds",
    "make_plan",
    "operator_detected_at",
]


@dataclass(frozen=True, slots=True)
class Action:
    """A control-plane event of a plan: at time ``at`` (seconds), something of ``kind``."""

    at: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


# Defaults, REFERENCES.md: the UPSERT/reassociation call itself ~2 s (the
# scenario example); Route 53 propagates "generally within 60 seconds" (mean
# taken as 30 s); Elastic IP reassociation 5-6 s in most tests (NGINX HA guide).
_DEFAULT_CHANGE = Constant(2.0)
_DEFAULT_PROPAGATION = Constant(30.0)
_DEFAULT_REMAP = Constant(5.5)


@dataclass(frozen=True, slots=True)
class FailoverSpec:
    """How a failover is detected and how long its steps take.

    Give either health-check detection (``interval`` and ``threshold``, optional
    ``timeout`` per check) or an operator ``delay``. Without ``timeout`` a check is
    bounded by ``interval``, as HAProxy does when ``timeout check`` is unset.
    """

    interval: float | None = None
    threshold: int | None = None
    timeout: float | None = None
    delay: float | None = None
    change_delay: Sampler = _DEFAULT_CHANGE
    propagation: Sampler = _DEFAULT_PROPAGATION
    remap_delay: Sampler = _DEFAULT_REMAP

    def __post_init__(self) -> None:
        checks = self.interval is not None or self.threshold is not None
        if checks == (self.delay is not None):
            raise ValueError(
                "failover detection needs either health checks (interval and threshold) "
                "or an operator delay, not both and not neither"
            )
        if checks:
            if self.interval is None or self.threshold is None:
                raise ValueError("health-check detection needs both interval and threshold")
            if not self.interval > 0 or self.threshold < 1:
                raise ValueError(
                    f"need interval > 0 and threshold >= 1, got {self.interval!r}, {self.threshold!r}"
                )
            if self.timeout is not None and not self.timeout >= 0:
                raise ValueError(f"timeout must be >= 0 seconds, got {self.timeout!r}")
        elif not self.delay >= 0:  # type: ignore[operator]
            raise ValueError(f"delay must be >= 0 seconds, got {self.delay!r}")

    @property
    def detection(self) -> str:
        """``"health_check"`` or ``"operator"``."""
        return "operator" if self.delay is not None else "health_check"

    def health_check(self) -> HealthCheckSpec:
        """The checker the engine runs against the active balancer.

        ``rise`` equals the threshold: Route 53 has one failure threshold for both
        directions (REFERENCES.md).
        """
        if self.interval is None or self.threshold is None:
            raise ValueError("this failover is detected by an operator delay, not health checks")
        timeout = self.interval if self.timeout is None else self.timeout
        return HealthCheckSpec(
            interval=self.interval, timeout=timeout, rise=self.threshold, fall=self.threshold
        )


def operator_detected_at(fault_at: float, spec: FailoverSpec) -> float:
    """When an operator acts on a fault at ``fault_at``: ``fault_at + delay``."""
    if spec.delay is None:
        raise ValueError("this failover is detected by health checks; run sim.policy.health")
    return fault_at + spec.delay


def detection_bounds(spec: FailoverSpec, mode: str = "refuse") -> tuple[float, float, float]:
    """Closed-form (min, mean, max) detection time after a hard fault, for tests and docs.

    Health checks at interval I with threshold F, started at a random phase:
    (F - 1) I .. F I, mean (F - 1/2) I, plus the check timeout once per failed
    check when the fault is a blackhole (``mode="blackhole"``), REFERENCES.md.
    An operator: ``delay`` exactly.
    """
    if spec.delay is not None:
        return (spec.delay, spec.delay, spec.delay)
    hc = spec.health_check()
    i, f = hc.interval, hc.fall
    extra = f * hc.timeout if waits_for_timeout(mode) else 0.0
    return ((f - 1) * i + extra, (f - 0.5) * i + extra, f * i + extra)


class FailoverPlan(Protocol):
    name: str
    spec: FailoverSpec

    def actions_after_detection(
        self, detected_at: float, rng: np.random.Generator
    ) -> list[Action]: ...


class CnameRepoint:
    """Repoint the service CNAME to the standby balancer's name.

    Actions: ``record_changed`` (the UPSERT accepted) after ``change_delay``, then
    ``propagated`` (every authoritative server answers the new data) after
    ``propagation``. Clients still wait out resolver and stub caches after that.
    """

    __slots__ = ("spec",)
    name = "cname_repoint"

    def __init__(self, spec: FailoverSpec) -> None:
        self.spec = spec

    def actions_after_detection(self, detected_at: float, rng: np.random.Generator) -> list[Action]:
        change = draw(self.spec.change_delay, rng)
        prop = draw(self.spec.propagation, rng)
        changed = detected_at + change
        return [
            Action(changed, "record_changed", {"change": change}),
            Action(changed + prop, "propagated", {"propagation": prop}),
        ]


class EipRemap:
    """Move the static address from the active balancer to the standby.

    Actions: ``remap_called`` after ``change_delay``, then ``address_moved`` (the
    address answers at the standby; open connections to it are reset) after
    ``remap_delay``.
    """

    __slots__ = ("spec",)
    name = "eip_remap"

    def __init__(self, spec: FailoverSpec) -> None:
        self.spec = spec

    def actions_after_detection(self, detected_at: float, rng: np.random.Generator) -> list[Action]:
        change = draw(self.spec.change_delay, rng)
        remap = draw(self.spec.remap_delay, rng)
        called = detected_at + change
        return [
            Action(called, "remap_called", {"change": change}),
            Action(called + remap, "address_moved", {"remap": remap}),
        ]


_PLANS: dict[str, type[CnameRepoint] | type[EipRemap]] = {
    "cname_repoint": CnameRepoint,
    "eip_remap": EipRemap,
}
PLANS: tuple[str, ...] = tuple(_PLANS)


def make_plan(name: str, spec: FailoverSpec) -> CnameRepoint | EipRemap:
    """The plan for strategy ``name`` (cname_repoint | eip_remap)."""
    try:
        cls = _PLANS[name]
    except KeyError:
        raise ValueError(f"unknown failover strategy {name!r}; known: {', '.join(PLANS)}") from None
    return cls(spec)
