"""Failover strategies as plans of timed actions.

After a fault on the active balancer at t0 a failover goes: detection D, then the
API call C (``change_delay``), then either DNS propagation P (``cname_repoint``,
``alias_apex``, ``multi_a``) or the address move (``eip_remap``'s
``remap_delay``), as docs/design.md's table and docs/scenario.md describe. Three
strategies bring their own detection and need no API call: ``dns_failover`` (the
DNS provider's checkers, then P), ``anycast`` (the accelerator's checks, then the
shift) and ``vrrp`` (the backup's Master_Down timer, then gratuitous ARP); see
docs/strategies.md. A plan only says *when* its control-plane actions happen;
what they do to caches and connections is the engine's business, so the downtime
comes from mechanisms and the formulas stay for the tests.

Detection either comes from health checks (``interval`` x ``threshold``, run through
:mod:`sim.policy.health` against the failed balancer) or from an operator after a
fixed ``delay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from sim.policy.health import HealthCheckSpec
from sim.policy.outcomes import waits_for_timeout
from sim.policy.sampling import Constant, Sampler, draw

__all__ = [
    "DETECTIONS",
    "PLANS",
    "RECORDS",
    "Action",
    "AliasApex",
    "Anycast",
    "AnycastSpec",
    "CnameRepoint",
    "DnsFailover",
    "EipRemap",
    "FailoverPlan",
    "FailoverSpec",
    "MultiA",
    "ProviderChecks",
    "Published",
    "TwoStepPlan",
    "Vrrp",
    "VrrpSpec",
    "detection_bounds",
    "make_plan",
    "operator_detected_at",
    "plan_class",
    "plan_detection_bounds",
]


@dataclass(frozen=True, slots=True)
class Action:
    """A control-plane event of a plan: at time ``at`` (seconds), something of ``kind``."""

    at: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


# Defaults, docs/references.md: the UPSERT/reassociation call itself ~2 s (the
# scenario example); Route 53 propagates "generally within 60 seconds" (mean
# taken as 30 s); Elastic IP reassociation 5-6 s in most tests (NGINX HA guide).
_DEFAULT_CHANGE = Constant(2.0)
_DEFAULT_PROPAGATION = Constant(30.0)
_DEFAULT_REMAP = Constant(5.5)


def _check_checks(interval: float, threshold: int, timeout: float) -> None:
    if not interval > 0 or threshold < 1 or not timeout >= 0:
        raise ValueError(
            f"need interval > 0, threshold >= 1 and timeout >= 0, got {interval!r}, {threshold!r}, {timeout!r}"
        )


@dataclass(frozen=True, slots=True)
class ProviderChecks:
    """``dns_failover``: the health checkers the DNS provider runs (Route 53 style).

    Each checker is a :mod:`sim.policy.health` machine on its own random phase;
    the endpoint counts as healthy while more than ``healthy_share`` of them
    report it healthy.
    """

    # Route 53: every 30 s (or 10 s), failure threshold 3 (1-10), healthy when
    # more than 18% of checkers agree; an HTTP check must connect within 4 s
    # (docs/references.md, "Route 53").
    interval: float = 30.0
    threshold: int = 3
    timeout: float = 4.0
    # [choice] docs/references.md gives no number of checkers: 8.
    checkers: int = 8
    healthy_share: float = 0.18

    def __post_init__(self) -> None:
        _check_checks(self.interval, self.threshold, self.timeout)
        if self.checkers < 1 or not 0 <= self.healthy_share < 1:
            raise ValueError(
                f"need checkers >= 1 and 0 <= healthy_share < 1, got {self.checkers!r}, {self.healthy_share!r}"
            )

    def health_check(self) -> HealthCheckSpec:
        return HealthCheckSpec(self.interval, self.timeout, rise=self.threshold, fall=self.threshold)

    def healthy(self, healthy_checkers: int) -> bool:
        """The provider's verdict from how many checkers see the endpoint healthy."""
        return healthy_checkers > self.healthy_share * self.checkers

    @property
    def down_needed(self) -> int:
        """How many checkers must see the endpoint down before the verdict turns."""
        return next(k for k in range(1, self.checkers + 1) if not self.healthy(self.checkers - k))


@dataclass(frozen=True, slots=True)
class AnycastSpec:
    """``anycast``: the accelerator's health checks and the shift that follows."""

    # Global Accelerator: health checks every 10 or 30 s, threshold 3
    # (docs/references.md); [choice] 30 s of the two.
    interval: float = 30.0
    threshold: int = 3
    # [choice] docs/references.md gives no check timeout for it: Route 53's 4 s connect limit.
    timeout: float = 4.0
    # [choice] docs/references.md has no figure for the shift once the checks decide: 0 s.
    shift_delay: Sampler = Constant(0.0)

    def __post_init__(self) -> None:
        _check_checks(self.interval, self.threshold, self.timeout)

    def health_check(self) -> HealthCheckSpec:
        return HealthCheckSpec(self.interval, self.timeout, rise=self.threshold, fall=self.threshold)


@dataclass(frozen=True, slots=True)
class VrrpSpec:
    """``vrrp``: advertisement interval and the backup's priority (RFC 5798)."""

    # RFC 5798 / keepalived: advert_int 1 s; priority 128 is docs/references.md's worked
    # example (Master_Down_Interval 3.5 s).
    advert_int: float = 1.0
    priority: int = 128
    # [choice] keepalived sends its gratuitous ARPs at once on becoming master
    # (docs/references.md); neighbours are taken to update on the first one: 0 s.
    garp_delay: Sampler = Constant(0.0)

    def __post_init__(self) -> None:
        if not self.advert_int > 0 or not 1 <= self.priority <= 254:
            raise ValueError(
                f"need advert_int > 0 and a backup priority in 1..254, got {self.advert_int!r}, {self.priority!r}"
            )

    @property
    def skew(self) -> float:
        """Skew_Time = (256 - priority) x advert_int / 256 (RFC 5798 6.1)."""
        return (256 - self.priority) * self.advert_int / 256

    @property
    def master_down_interval(self) -> float:
        """Master_Down_Interval = 3 x advert_int + Skew_Time (RFC 5798 6.1)."""
        return 3 * self.advert_int + self.skew


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
    # What the strategies that bring their own detection use (dns_failover,
    # anycast, vrrp); the others ignore them.
    provider: ProviderChecks = ProviderChecks()
    anycast: AnycastSpec = AnycastSpec()
    vrrp: VrrpSpec = VrrpSpec()
    # multi_a: "rotate" answers between resolutions (round-robin DNS) or keep them "fixed".
    answer_order: str = "rotate"

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
        directions (docs/references.md).
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
    check when the fault is a blackhole (``mode="blackhole"``), docs/references.md.
    An operator: ``delay`` exactly.
    """
    if spec.delay is not None:
        return (spec.delay, spec.delay, spec.delay)
    hc = spec.health_check()
    i, f = hc.interval, hc.fall
    extra = f * hc.timeout if waits_for_timeout(mode) else 0.0
    return ((f - 1) * i + extra, (f - 0.5) * i + extra, f * i + extra)


# What a plan publishes at the service name (``Published.record``): a CNAME to
# the balancer's name, an alias answered with the balancer's A records, or A
# records of static addresses.
RECORDS = ("cname", "alias", "addresses")
# Who notices the fault (``detection``): the scenario's own checks or operator,
# the DNS provider's checkers, the accelerator's checks, the VRRP backup's timer.
DETECTIONS = ("scenario", "provider_checks", "accelerator_checks", "master_down")


@dataclass(frozen=True, slots=True)
class Published:
    """What a plan puts in DNS and what its failover moves: all an engine needs
    to know of a strategy besides its timed actions.

    ``record_ttl`` is the TTL of the record at the service name, ``chain_ttl``
    that of the balancer name a CNAME leads to (None without a chain); a
    client's answer lives as long as the shorter (``answer_ttl``).
    ``addresses`` counts the static addresses published: those that move
    (``moves_address``), or one per balancer (``per_balancer``), of which the
    change deletes the failed one.
    """

    record: str
    record_ttl: float
    chain_ttl: float | None
    changes_dns: bool  # otherwise the failover moves addresses
    addresses: int
    per_balancer: bool
    rotate: bool  # answers rotate from one resolution to the next

    @property
    def moves_address(self) -> bool:
        return not self.changes_dns

    @property
    def answer_ttl(self) -> float:
        return self.record_ttl if self.chain_ttl is None else min(self.record_ttl, self.chain_ttl)


class FailoverPlan(Protocol):
    name: str
    spec: FailoverSpec
    detection: str
    effective: str

    def published(self, service_ttl: float, balancer_ttl: float) -> Published: ...

    def actions_after_detection(
        self, detected_at: float, rng: np.random.Generator
    ) -> list[Action]: ...


class TwoStepPlan:
    """A plan of two actions after detection: ``kinds[0]`` after the first delay,
    ``kinds[1]`` after the second; the failover takes effect at ``kinds[1]``
    (``effective``). Subclasses say which delays they draw and what they publish.

    ``detection`` names who notices the fault (one of DETECTIONS):
    ``"scenario"`` (the scenario's ``failover.detection``: health checks or an
    operator), ``"provider_checks"`` (the DNS provider's checkers),
    ``"accelerator_checks"`` (the accelerator's checks) or ``"master_down"`` (a
    VRRP backup's Master_Down timer). ``parts`` is what the failover time is made
    of, in the terms of docs/design.md.

    What is published: ``record`` (one of RECORDS), whose TTL is the scenario's
    ``service_ttl`` or, for an alias, ``balancer_ttl`` (``ttl_from``); a CNAME
    adds the balancer name's own TTL. ``static_addresses`` static addresses are
    published and moved by the failover (0: none), or, with ``per_balancer``,
    one per balancer. A new strategy is a subclass that sets these; no engine
    needs to know its name.
    """

    __slots__ = ("spec",)
    name: ClassVar[str]
    detection: ClassVar[str] = "scenario"
    kinds: ClassVar[tuple[str, str]]
    second_key: ClassVar[str]
    parts: ClassVar[str]
    record: ClassVar[str] = "cname"
    ttl_from: ClassVar[str] = "service"
    static_addresses: ClassVar[int] = 0
    per_balancer: ClassVar[bool] = False

    def __init__(self, spec: FailoverSpec) -> None:
        self.spec = spec

    @property
    def effective(self) -> str:
        """The action after which the new path carries traffic."""
        return self.kinds[1]

    def rotates(self) -> bool:
        """Whether answers with several addresses rotate between resolutions."""
        return True

    def published(self, service_ttl: float, balancer_ttl: float) -> Published:
        record_ttl = balancer_ttl if self.ttl_from == "balancer" else service_ttl
        per_balancer = self.per_balancer
        return Published(
            record=self.record,
            record_ttl=record_ttl,
            chain_ttl=balancer_ttl if self.record == "cname" else None,
            changes_dns=self.static_addresses == 0,
            addresses=2 if per_balancer else self.static_addresses,
            per_balancer=per_balancer,
            rotate=self.rotates(),
        )

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        raise NotImplementedError

    def actions_after_detection(self, detected_at: float, rng: np.random.Generator) -> list[Action]:
        first, second = self.delays(rng)
        at = detected_at + first
        return [
            Action(at, self.kinds[0], {"change": first}),
            Action(at + second, self.kinds[1], {self.second_key: second}),
        ]


class CnameRepoint(TwoStepPlan):
    """Repoint the service CNAME to the standby balancer's name.

    Actions: ``record_changed`` (the UPSERT accepted) after ``change_delay``, then
    ``propagated`` (every authoritative server answers the new data) after
    ``propagation``. Clients still wait out resolver and stub caches after that.
    """

    __slots__ = ()
    name = "cname_repoint"
    kinds = ("record_changed", "propagated")
    second_key = "propagation"
    parts = "D + C + P + R + S (+ K, T)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        change = draw(self.spec.change_delay, rng)
        return change, draw(self.spec.propagation, rng)


class AliasApex(CnameRepoint):
    """Repoint an alias record (Route 53 alias, ANAME, CNAME flattening).

    The same actions as ``cname_repoint``; what differs is in the answers: A
    records carrying the balancer's TTL, so the caches count ``balancer_ttl``,
    and the record may sit at the apex and beside MX.
    """

    __slots__ = ()
    name = "alias_apex"
    record = "alias"
    ttl_from = "balancer"
    parts = "D + C + P + R + S (TTL = balancer_ttl) (+ K, T)"


class MultiA(CnameRepoint):
    """Several A records, one per balancer; failover removes the dead one.

    Actions: ``record_changed`` (the dead address deleted) after ``change_delay``,
    ``propagated`` after ``propagation``. Until then clients that try the next
    address on failure carry on; the others wait for the caches as with a CNAME.
    """

    __slots__ = ()
    name = "multi_a"
    record = "addresses"
    per_balancer = True
    parts = "next-address clients: T only; first-address clients: D + C + P + R + S"

    def rotates(self) -> bool:
        return self.spec.answer_order == "rotate"


class EipRemap(TwoStepPlan):
    """Move the static address from the active balancer to the standby.

    Actions: ``remap_called`` after ``change_delay``, then ``address_moved`` (the
    address answers at the standby; open connections to it are reset) after
    ``remap_delay``.
    """

    __slots__ = ()
    name = "eip_remap"
    record = "addresses"
    static_addresses = 1
    kinds = ("remap_called", "address_moved")
    second_key = "remap"
    parts = "D + C + remap (+ one reset per open connection)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        change = draw(self.spec.change_delay, rng)
        return change, draw(self.spec.remap_delay, rng)


class DnsFailover(TwoStepPlan):
    """Primary and secondary records switched by the provider's own health checks.

    No operator and no API call: ``status_changed`` when the checkers' verdict
    turns (``spec.provider``), then ``propagated`` after ``propagation``; the
    caches then count the record's TTL (``service_ttl``).
    """

    __slots__ = ()
    name = "dns_failover"
    record = "alias"  # answered with the records' addresses, at service_ttl
    detection = "provider_checks"
    kinds = ("status_changed", "propagated")
    second_key = "propagation"
    parts = "D (provider checks) + P + R + S (+ K, T)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return 0.0, draw(self.spec.propagation, rng)


class Anycast(TwoStepPlan):
    """Two static anycast addresses (Global Accelerator style).

    The accelerator's checks (``spec.anycast``) decide; ``status_changed`` then,
    and ``traffic_shifted`` after ``shift_delay``: the same addresses lead to the
    standby, with no DNS change. Connections to the failed site break.
    """

    __slots__ = ()
    name = "anycast"
    record = "addresses"
    static_addresses = 2  # Global Accelerator announces two
    detection = "accelerator_checks"
    kinds = ("status_changed", "traffic_shifted")
    second_key = "shift"
    parts = "D (accelerator checks) + shift (+ one break per open connection)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return 0.0, draw(self.spec.anycast.shift_delay, rng)


class Vrrp(TwoStepPlan):
    """A floating address taken over by the backup (VRRP, keepalived).

    Detection is the backup's Master_Down timer (``spec.vrrp``), not the
    scenario's checks; then ``became_master`` and, after ``garp_delay``,
    ``address_moved`` (gratuitous ARP heard; open connections are reset).
    """

    __slots__ = ()
    name = "vrrp"
    record = "addresses"
    static_addresses = 1
    detection = "master_down"
    kinds = ("became_master", "address_moved")
    second_key = "garp"
    parts = "D (Master_Down timer) + gratuitous ARP (+ one reset per open connection)"

    def delays(self, rng: np.random.Generator) -> tuple[float, float]:
        return 0.0, draw(self.spec.vrrp.garp_delay, rng)


_PLANS: dict[str, type[TwoStepPlan]] = {
    cls.name: cls for cls in (CnameRepoint, EipRemap, AliasApex, DnsFailover, Anycast, Vrrp, MultiA)
}
PLANS: tuple[str, ...] = tuple(_PLANS)


def plan_class(name: str) -> type[TwoStepPlan]:
    """The plan class of strategy ``name`` (for its ``detection`` and ``parts``)."""
    try:
        return _PLANS[name]
    except KeyError:
        raise ValueError(f"unknown failover strategy {name!r}; known: {', '.join(PLANS)}") from None


def make_plan(name: str, spec: FailoverSpec) -> TwoStepPlan:
    """The plan for strategy ``name`` (one of PLANS)."""
    return plan_class(name)(spec)


def plan_detection_bounds(name: str, spec: FailoverSpec, mode: str = "refuse") -> tuple[float, float, float]:
    """Closed-form (min, mean, max) detection time of strategy ``name`` after a hard
    fault, for tests and docs (the model runs the mechanisms, never this).

    - scenario: :func:`detection_bounds`.
    - provider_checks: each of N checkers alone detects at (F - 1) I + U I (+ F x timeout
      for a blackhole), U uniform from its random phase; the verdict turns at the
      k-th of them, k = ``down_needed``, and the k-th of N uniforms has mean
      k / (N + 1).
    - accelerator_checks: one checker, (F - 1/2) I on average.
    - master_down: the timer restarted at the last advertisement, which was sent a
      uniform part of ``advert_int`` before the fault: Master_Down_Interval minus
      that, mean Master_Down_Interval - advert_int / 2.
    """
    kind = plan_class(name).detection
    if kind == "scenario":
        return detection_bounds(spec, mode)
    if kind == "master_down":
        mdi, adv = spec.vrrp.master_down_interval, spec.vrrp.advert_int
        return (mdi - adv, mdi - adv / 2, mdi)
    checks = spec.provider if kind == "provider_checks" else spec.anycast
    hc = checks.health_check()
    i, f = hc.interval, hc.fall
    lo = (f - 1) * i + (f * hc.timeout if waits_for_timeout(mode) else 0.0)
    if kind == "provider_checks":
        n = spec.provider.checkers
        return (lo, lo + spec.provider.down_needed * i / (n + 1), lo + i)
    return (lo, lo + i / 2, lo + i)
