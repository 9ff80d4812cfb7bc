"""The v1 scenario contract (docs/scenario.md) as pydantic models.

Values are converted to seconds and events per second here, once; the engines
never parse a unit. Defaults carry their source beside them
(docs/references.md is the project's list of sourced figures).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from sim.scenario import limits as lim
from sim.scenario.limits import at_most
from sim.scenario.units import (
    Constant,
    Distribution,
    Uniform,
    format_duration,
    format_period_rate,
    parse_distribution,
    parse_duration,
    parse_fraction,
    parse_incident_rate,
    parse_rate,
)


def _show_duration(seconds: float) -> str | None:
    return format_duration(seconds)


def _show_rate(rate: float) -> str:
    return f"{rate:g}/s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(_show_duration, when_used="json-unless-none"),
]
Rate = Annotated[float, BeforeValidator(parse_rate), PlainSerializer(_show_rate, when_used="json")]
Dist = Annotated[
    Distribution,
    PlainValidator(parse_distribution),
    PlainSerializer(lambda d: d.describe(), when_used="json"),
]
PositiveDuration = Annotated[Duration, Field(gt=0)]


def _lifetime(value: Any) -> float:
    if isinstance(value, str) and value.strip() in ("never", "inf"):
        return math.inf
    return parse_duration(value)


# A duration that may be `never` (no limit), such as a connection's maximum age.
Lifetime = Annotated[
    float,
    BeforeValidator(_lifetime),
    Field(gt=0),
    PlainSerializer(lambda s: "never" if math.isinf(s) else format_duration(s), when_used="json"),
]
NonNegativeDuration = Annotated[Duration, Field(ge=0)]

# Every strategy the engines know (docs/strategies.md); a scenario that names
# none runs the seed's two, as before issue 9.
STRATEGIES = ("cname_repoint", "eip_remap", "alias_apex", "dns_failover", "anycast", "vrrp", "multi_a")
DEFAULT_STRATEGIES = ("cname_repoint", "eip_remap")
StrategyName = Literal["cname_repoint", "eip_remap", "alias_apex", "dns_failover", "anycast", "vrrp", "multi_a"]
AddressMode = Literal["first", "next"]
BalancingPolicy = Literal["round_robin", "random", "least_outstanding", "p2c"]
FaultMode = Literal["refuse", "blackhole"]


class Strict(BaseModel):
    # A typo must not pass silently (docs/scenario.md: unknown keys are errors).
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- DNS caches --------------------------------------------------------------


class Honor(Strict):
    kind: Literal["honor"]


class NoCache(Strict):
    kind: Literal["none"]


class Floor(Strict):
    kind: Literal["floor"]
    min_ttl: PositiveDuration


class Cap(Strict):
    kind: Literal["cap"]
    max_ttl: PositiveDuration


class Fixed(Strict):
    kind: Literal["fixed"]
    ttl: PositiveDuration


class Forever(Strict):
    kind: Literal["forever"]


class Extend(Strict):
    kind: Literal["extend"]
    extra: Dist


class ServeStale(Strict):
    kind: Literal["serve_stale"]
    # BIND's max-stale-ttl default is one day (docs/references.md, BIND).
    max_stale: PositiveDuration = 86400.0


CachePolicy = Annotated[
    Honor | NoCache | Floor | Cap | Fixed | Forever | Extend | ServeStale,
    Field(discriminator="kind"),
]
CACHE_KINDS = ("honor", "none", "floor", "cap", "fixed", "forever", "extend", "serve_stale")


# --- DNS ---------------------------------------------------------------------

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA", "PTR", "ALIAS"]


class Record(Strict):
    name: str = Field(min_length=1)
    type: RecordType
    value: str = Field(min_length=1)
    ttl: PositiveDuration = 3600.0


class ServeExpired(Strict):
    # unbound's current defaults (docs/references.md, "unbound"): serve-expired-client-timeout
    # 1800 ms, serve-expired-reply-ttl 30 s, serve-expired-ttl 86400 s (`never`: unbound's 0).
    client_timeout: NonNegativeDuration = 1.8
    reply_ttl: PositiveDuration = 30.0
    ttl: Lifetime = 86400.0


class ResolverGroup(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    count: Annotated[int, Field(gt=0), at_most(lim.MAX_RESOLVERS, lim.RESOLVERS_REASON)]
    share: float = Field(gt=0, le=1)
    policy: CachePolicy = Honor(kind="honor")
    # One cache per resolver address unless the group is a farm (docs/references.md,
    # "Resolver farms"); `sticky`: the share of a client's queries sent to its own cache.
    caches: Annotated[int, Field(ge=1), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 1
    sticky: float = Field(default=0.0, ge=0, le=1)
    # unbound's prefetch and serve-expired are off by default (docs/references.md, "unbound").
    prefetch: bool = False
    serve_expired: ServeExpired | None = None

    @model_validator(mode="after")
    def _farm(self) -> ResolverGroup:
        if self.sticky > 0 and self.caches == 1:
            raise ValueError(f"sticky: {self.sticky:g} needs caches > 1 (a single cache is every client's own)")
        if self.serve_expired is not None and self.policy.kind == "serve_stale":
            raise ValueError("serve_expired: set it or policy serve_stale, not both "
                             "(serve_expired.ttl is the stale limit; use policy honor, cap or floor with it)")
        return self


class Dns(Strict):
    zone: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+\.?$")
    service_name: str = "www"
    service_ttl: PositiveDuration = 300.0
    # ELB/ALB A records carry 60 s (docs/references.md, "ELB/ALB").
    balancer_ttl: PositiveDuration = 60.0
    # Route 53: changes reach all its name servers "generally within 60 seconds".
    propagation: Dist = Uniform(0.0, 60.0)
    records: list[Record] = Field(default=[], max_length=lim.MAX_RECORDS)
    resolvers: list[ResolverGroup] = Field(
        default_factory=lambda: [ResolverGroup(name="isp", count=100, share=1.0)],
        min_length=1,
        max_length=lim.MAX_RESOLVER_GROUPS,
    )

    @model_validator(mode="after")
    def _shares(self) -> Dns:
        total = sum(group.share for group in self.resolvers)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"resolvers: resolver shares must sum to 1, got {total:.12g}")
        _unique([g.name for g in self.resolvers], "resolvers", "resolver group")
        total = sum(g.count for g in self.resolvers)
        if total > lim.MAX_RESOLVERS:
            raise ValueError(f"resolvers: {total:,} in all; at most {lim.MAX_RESOLVERS:,} ({lim.RESOLVERS_REASON})")
        return self


# --- clients -----------------------------------------------------------------


class Retry(Strict):
    attempts: Annotated[int, Field(ge=1), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 1
    # Linux connect() to a blackholed address gives up after ~127 s; 10 s is
    # a typical client-side timeout (requests, browsers' fetch stalls).
    timeout: PositiveDuration = 10.0


class Restart(Strict):
    # Gaps between a client's restarts (docs/scenario.md, `clients[].restart`);
    # no default: how often a fleet is redeployed is the scenario's to say [choice].
    every: Dist

    @model_validator(mode="after")
    def _positive(self) -> Restart:
        mean = float(self.every.mean)
        if not (mean > 0 and math.isfinite(mean)):
            raise ValueError(f"every: the mean gap between restarts must be above 0 s, got {mean:g}s")
        return self


class Sessions(Strict):
    # A session's requests (each draw rounded up, at least 1), the think time
    # between them and the gap between sessions (docs/scenario.md,
    # `clients[].sessions`; no default: docs/references.md, "Browsers").
    requests: Dist
    think: Dist
    gap: Dist

    @model_validator(mode="after")
    def _gap(self) -> Sessions:
        if not float(self.gap.mean) > 0:
            raise ValueError("gap: the mean gap between sessions must be above 0 s")
        return self

    def policy(self) -> Any:
        from sim.policy.sessions import Sessions as SessionPolicy

        return SessionPolicy(self.requests, self.think, self.gap)


class Cohort(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    count: Annotated[int | None, Field(gt=0), at_most(lim.MAX_CLIENTS, lim.CLIENTS_REASON)] = None
    share: float | None = Field(default=None, gt=0, le=1)
    # Requests per second per client, Poisson; with `sessions`, implied by them (and not given).
    rate: Annotated[Rate, Field(gt=0), at_most(lim.MAX_CLIENT_RATE, lim.RATE_REASON)] | None = None
    # glibc, Go and Node keep no answer cache (docs/references.md, "Caches").
    stub_cache: CachePolicy = NoCache(kind="none")
    keepalive: NonNegativeDuration = 0.0
    max_connection_age: Lifetime = math.inf
    retry: Retry = Retry()
    resolver_group: str | None = None
    # What a failed connect does within one attempt (docs/strategies.md):
    # `first` gives up (the attempt fails; many clients, Node), `next` tries the
    # answer's next address (python-requests after a connect timeout, Happy
    # Eyeballs after 250 ms; docs/references.md, "Attempts against a dead address").
    # `first` is the model's behaviour before issue 9.
    address_mode: AddressMode = "first"
    # `next` only: how long a blackholed connect lasts before the next address is
    # tried; unset: the attempt timeout (python-requests). Happy Eyeballs: 250ms (RFC 8305).
    fallback_delay: PositiveDuration | None = None
    # Process restarts clear the stub cache and the connections (docs/scenario.md);
    # none by default, as before issue 18.
    restart: Restart | None = None
    # Firefox serves an expired host-cache entry for up to its grace period and
    # refreshes it behind the request (network.dnsCacheExpirationGracePeriod, 60 s;
    # docs/references.md, "Browsers"). 0: no grace, as before issue 18.
    stub_grace: NonNegativeDuration = 0.0
    # People arrive, browse in bursts and leave, instead of Poisson requests.
    sessions: Sessions | None = None

    @model_validator(mode="after")
    def _count_or_share(self) -> Cohort:
        if (self.count is None) == (self.share is None):
            raise ValueError("give exactly one of count or share (share needs a top-level population)")
        if self.sessions is None:
            if self.rate is None:
                raise ValueError("rate: required (requests per second per client), unless sessions are given")
        elif self.rate is not None:
            raise ValueError("give rate or sessions, not both: sessions imply the rate")
        else:
            rate = self.sessions.policy().rate
            if not (0 < rate <= lim.MAX_CLIENT_RATE):
                raise ValueError(f"sessions: they imply {rate:g} requests/s per client; expected above 0 "
                                 f"and at most {lim.MAX_CLIENT_RATE:g} ({lim.RATE_REASON})")
            object.__setattr__(self, "rate", rate)  # frozen: the implied rate, set once here
        return self

    @property
    def implied_fields(self) -> tuple[str, ...]:
        """Fields derived from others (with sessions, the rate), left out when written back."""
        return ("rate",) if self.sessions is not None else ()

    @model_serializer(mode="wrap")
    def _without_implied_rate(self, handler: SerializerFunctionWrapHandler) -> Any:
        # With sessions the rate is theirs: written back it would be given twice.
        out = handler(self)
        if self.sessions is not None and isinstance(out, dict):
            out.pop("rate", None)
        return out


# --- balancers and backends --------------------------------------------------


class Balancer(Strict):
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    role: Literal["active", "standby"]
    nodes: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 2
    capacity: Annotated[Rate, Field(gt=0)] = 5000.0
    churn: PositiveDuration | None = None
    # ELB keeps a deregistered node answering for its connection-draining
    # time, 300 s by default.
    drain: NonNegativeDuration = 300.0
    scale_delay: Dist | None = None


class HealthCheck(Strict):
    # HAProxy defaults: inter 2s, fall 3, rise 2 (docs/references.md, "Balancers").
    interval: PositiveDuration = 2.0
    rise: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 2
    fall: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 3
    timeout: PositiveDuration = 2.0


class Failures(Strict):
    mtbf: PositiveDuration
    repair: Dist


class Autoscaling(Strict):
    min: Annotated[int, Field(gt=0), at_most(lim.MAX_INSTANCES, lim.FLEET_REASON)]
    max: Annotated[int, Field(gt=0), at_most(lim.MAX_INSTANCES, lim.FLEET_REASON)]
    target_utilization: float = Field(default=0.6, gt=0, le=1)
    period: PositiveDuration = 60.0
    launch_delay: Dist = Constant(180.0)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self


class Backends(Strict):
    instances: Annotated[int, Field(gt=0), at_most(lim.MAX_INSTANCES, lim.FLEET_REASON)] = 6
    workers: Annotated[int, Field(gt=0), at_most(lim.MAX_WORKERS, lim.FLEET_REASON)] = 16
    service_time: Dist = Field(default_factory=lambda: parse_distribution({"exp": "20ms"}))
    queue_limit: Annotated[int, Field(ge=0), at_most(lim.MAX_QUEUE, lim.FLEET_REASON)] = 256
    policy: BalancingPolicy = "round_robin"
    retries: Annotated[int, Field(ge=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 0
    health_check: HealthCheck = HealthCheck()
    failures: Failures | None = None
    autoscaling: Autoscaling | None = None


# --- faults ------------------------------------------------------------------


class BalancerDown(Strict):
    kind: Literal["balancer_down"]
    at: NonNegativeDuration
    target: str
    mode: FaultMode = "refuse"
    # None: the balancer stays down for the rest of the run.
    for_: PositiveDuration | None = Field(default=None, alias="for")


class InstanceDown(Strict):
    kind: Literal["instance_down"]
    at: NonNegativeDuration
    count: int = Field(default=1, gt=0)
    for_: PositiveDuration = Field(alias="for")
    mode: FaultMode = "refuse"


class Traffic(Strict):
    kind: Literal["traffic"]
    at: NonNegativeDuration
    factor: Annotated[float, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)]
    for_: PositiveDuration = Field(alias="for")


class DnsDown(Strict):
    kind: Literal["dns_down"]
    at: NonNegativeDuration
    for_: PositiveDuration = Field(alias="for")


class DnsChange(Strict):
    """A planned DNS change: at `at` the operator publishes what the strategy's
    failover would (the record its plan publishes after a failover), visible after
    the plan's propagation, while the old target keeps serving."""

    kind: Literal["dns_change"]
    at: NonNegativeDuration


class AddressMove(Strict):
    """A planned address move, for the strategies whose failover moves an address
    instead of changing DNS: at `at` the address is moved to the standby, which
    answers on it after the plan's own delay (remap, gratuitous ARP, shift)."""

    kind: Literal["address_move"]
    at: NonNegativeDuration


# The planned changes, by the kind of change a strategy's failover makes.
PLANNED = {"dns_change": True, "address_move": False}  # kind -> whether it changes DNS

Fault = Annotated[
    BalancerDown | InstanceDown | Traffic | DnsDown | DnsChange | AddressMove, Field(discriminator="kind")
]


# --- failover ----------------------------------------------------------------


class HealthCheckDetection(Strict):
    # Route 53 fast health checks: every 10 s, failure threshold 3.
    interval: PositiveDuration = 10.0
    threshold: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 3
    # Route 53 HTTP check: connect within 4 s (docs/references.md).
    timeout: PositiveDuration = 4.0


class OperatorDetection(Strict):
    delay: NonNegativeDuration


class ProviderChecks(Strict):
    """dns_failover: the DNS provider's own checkers."""

    # Route 53: every 30 s (or 10 s), failure threshold 3 (1-10), healthy when
    # more than 18% of checkers agree, connect within 4 s (docs/references.md).
    interval: PositiveDuration = 30.0
    threshold: int = Field(default=3, ge=1, le=10)
    timeout: NonNegativeDuration = 4.0
    # [choice] docs/references.md gives no number of checkers.
    checkers: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 8
    healthy_share: float = Field(default=0.18, ge=0, lt=1)


class AnycastChecks(Strict):
    """anycast: the accelerator's checks and the traffic shift after them."""

    # Global Accelerator: every 10 or 30 s, threshold 3 (docs/references.md); [choice] 30 s.
    interval: PositiveDuration = 30.0
    threshold: Annotated[int, Field(gt=0), at_most(lim.MAX_SMALL, lim.SMALL_REASON)] = 3
    # [choice] no figure in docs/references.md: Route 53's 4 s connect limit.
    timeout: NonNegativeDuration = 4.0
    # [choice] no figure in docs/references.md for the shift itself.
    shift_delay: Dist = Constant(0.0)


class Vrrp(Strict):
    """vrrp: Master_Down_Interval = 3 x advert_int + (256 - priority) / 256 x advert_int."""

    # RFC 5798 / keepalived advert_int 1 s; priority 128: docs/references.md's example (3.5 s).
    advert_int: PositiveDuration = 1.0
    priority: int = Field(default=128, ge=1, le=254)
    # [choice] keepalived sends gratuitous ARPs at once; heard on the first.
    garp_delay: Dist = Constant(0.0)


class MultiA(Strict):
    # [choice] `rotate`: each answer a client gets starts one address further on,
    # as the model treats every multi-address answer; `fixed`: the active first.
    order: Literal["rotate", "fixed"] = "rotate"


class Failover(Strict):
    detection: HealthCheckDetection | OperatorDetection = HealthCheckDetection()
    change_delay: Dist = Constant(2.0)
    # Elastic IP reassociation: 5-6 s in most tests (NGINX HA guide).
    remap_delay: Dist = Uniform(5.0, 6.0)
    # Used only by the strategy of the same name (docs/strategies.md).
    provider_checks: ProviderChecks = ProviderChecks()
    anycast: AnycastChecks = AnycastChecks()
    vrrp: Vrrp = Vrrp()
    multi_a: MultiA = MultiA()


# --- expectations (for `failover-sim check`) --------------------------------


class Baseline(Strict):
    # Allowed worsening relative to the stored baseline: 0.1 lets the metric
    # be 10% worse than the baseline's value before the expectation fails.
    tolerance: float = Field(default=0.0, ge=0)


class Expectation(Strict):
    strategy: StrategyName
    # A name from docs/scenario.md: `availability`, `recovery_s.p99`, `stale_requests@1m`.
    metric: str = Field(pattern=r"^[a-z0-9_]+(@[0-9a-z.]+)?(\.[a-z0-9_]+)?$")
    op: Literal[">=", "<=", ">", "<", "=="]
    # The bound; with vs_baseline the bound comes from the stored baseline instead.
    value: float | None = None
    vs_baseline: Baseline | None = None

    @model_validator(mode="after")
    def _bound(self) -> Expectation:
        if (self.value is None) == (self.vs_baseline is None):
            raise ValueError("give exactly one of value (a fixed bound) or vs_baseline (the stored baseline)")
        if self.vs_baseline is not None and self.op == "==":
            raise ValueError("op: == has no direction to apply a baseline tolerance in; use >= or <=")
        return self


# --- what a run reports beyond the defaults ------------------------------------


class Report(Strict):
    # [choice] A minute, five and fifteen after a planned change: the times a
    # migration plan asks about (is traffic gone after a TTL, after a few, after
    # a quarter of an hour); each names a metric, stale_requests@1m and so on.
    stale_at: list[PositiveDuration] = Field(default_factory=lambda: [60.0, 300.0, 900.0], max_length=16)

# --- planning (issue 20): how often, what is promised, what an outage costs --
# docs/scenario.md, "Planning". No default rate or price: nothing published
# gives one (docs/references.md, "Planning inputs"); outputs that need one say so.


def _incident_rate(value: Any) -> float:
    if isinstance(value, dict):
        if set(value) != {"mtbf"}:
            raise ValueError(f"expected a rate per period such as 2/year or {{mtbf: DURATION}}, got {value!r}")
        mtbf = parse_duration(value["mtbf"])
        if mtbf <= 0:
            raise ValueError(f"mtbf: expected a duration > 0, got {value['mtbf']!r}")
        return 1.0 / mtbf
    return parse_incident_rate(value)


# Derived from the Fault union so a new fault kind can be given a rate at once.
FAULT_KINDS: tuple[str, ...] = tuple(
    get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(Fault)[0])
)
IncidentRate = Annotated[
    float, BeforeValidator(_incident_rate), Field(gt=0), PlainSerializer(format_period_rate, when_used="json")
]
Share = Annotated[float, BeforeValidator(parse_fraction), PlainSerializer(lambda x: f"{100 * x:.10g}%", when_used="json")]


class Slo(Strict):
    availability: Share
    # The ELB SLA's monthly billing cycle, taken as 30 d (docs/references.md, "Planning inputs").
    window: PositiveDuration = 30 * 86400.0


class Cost(Strict):
    # USD; unset: the expected outage cost is not computed (docs/scenario.md, "Planning").
    per_failed_request: float | None = Field(default=None, ge=0)
    per_minute_down: float | None = Field(default=None, ge=0)
    # Overrides of `failover-sim strategies`' prices, by key (checked when a run prices them).
    prices: dict[str, Annotated[float, Field(ge=0)]] = {}


Incidents = dict[Literal[FAULT_KINDS], IncidentRate]  # type: ignore[valid-type]


# --- the scenario ------------------------------------------------------------


class Scenario(Strict):
    version: Literal[1]
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    description: str = ""
    seed: int = Field(default=0, ge=0)
    duration: Annotated[PositiveDuration, at_most(lim.MAX_HORIZON, lim.HORIZON_REASON)] = 3600.0
    warmup: Annotated[NonNegativeDuration, at_most(lim.MAX_HORIZON, lim.HORIZON_REASON)] = 0.0
    replications: Annotated[int, Field(gt=0), at_most(lim.MAX_REPLICATIONS, lim.REPLICATIONS_REASON)] = 10
    strategies: list[StrategyName] = Field(default_factory=lambda: list(DEFAULT_STRATEGIES), min_length=1)
    # Network round-trip time added to every exchange; zero unless set
    # (docs/scenario.md, "Time").
    rtt: NonNegativeDuration = 0.0
    population: Annotated[int | None, Field(gt=0), at_most(lim.MAX_CLIENTS, lim.CLIENTS_REASON)] = None
    dns: Dns
    clients: list[Cohort] = Field(min_length=1, max_length=lim.MAX_COHORTS)
    balancers: list[Balancer] = Field(min_length=2, max_length=lim.MAX_LIST_ITEMS)
    backends: Backends = Backends()
    faults: list[Fault] = Field(default=[], max_length=lim.MAX_LIST_ITEMS)
    failover: Failover = Failover()
    report: Report = Report()
    expect: list[Expectation] = Field(default=[], max_length=lim.MAX_LIST_ITEMS)
    # Planning (docs/scenario.md, "Planning"): rates per fault kind, the SLO, prices.
    incidents: Incidents = {}
    slo: Slo | None = None
    cost: Cost = Cost()

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        # Messages start with the exact field path: the loader lifts it out so
        # an error names `faults[1].target`, not just the scenario.
        _unique(self.strategies, "strategies", "strategy")
        _unique([c.name for c in self.clients], "clients", "client cohort")
        _unique([b.name for b in self.balancers], "balancers", "balancer")
        self._check_cohort_sizes()
        if self.end > lim.MAX_HORIZON:
            raise ValueError(
                f"duration: warmup + duration is {format_duration(self.end)}; at most 30d ({lim.HORIZON_REASON})"
            )
        roles = [b.role for b in self.balancers]
        if roles.count("active") != 1 or roles.count("standby") < 1:
            raise ValueError(
                f"balancers: expected exactly one with role active and at least one standby, got roles {roles}"
            )
        names = sorted(b.name for b in self.balancers)
        groups = sorted(g.name for g in self.dns.resolvers)
        for i, fault in enumerate(self.faults):
            if isinstance(fault, BalancerDown) and fault.target not in names:
                raise ValueError(f"faults[{i}].target: {fault.target!r} is not a balancer; expected one of {names}")
            if isinstance(fault, InstanceDown) and fault.count > self.backends.instances:
                raise ValueError(
                    f"faults[{i}].count: {fault.count} exceeds backends.instances ({self.backends.instances})"
                )
            if fault.at >= self.end:
                raise ValueError(
                    f"faults[{i}].at: {format_duration(fault.at)} is not before the end of the run "
                    f"(warmup + duration = {format_duration(self.end)})"
                )
        self._check_planned_changes()
        for i, cohort in enumerate(self.clients):
            if cohort.resolver_group is not None and cohort.resolver_group not in groups:
                raise ValueError(
                    f"clients[{i}].resolver_group: {cohort.resolver_group!r} is not a resolver group; expected one of {groups}"
                )
        for i, exp in enumerate(self.expect):
            if exp.strategy not in self.strategies:
                raise ValueError(f"expect[{i}].strategy: {exp.strategy!r} is not run; strategies are {self.strategies}")
        return self

    def _check_planned_changes(self) -> None:
        """At most one planned change of each kind, and each strategy run finds the
        kind its failover makes (a DNS change, or an address move)."""
        from sim.policy.failover import plan_class

        planned = [(i, f.kind) for i, f in enumerate(self.faults) if f.kind in PLANNED]
        kinds = [k for _, k in planned]
        for i, kind in planned:
            if kinds.count(kind) > 1:
                raise ValueError(f"faults[{i}].kind: one {kind} per scenario; this one is the second")
        for i, kind in planned:
            for name in self.strategies:
                changes_dns = plan_class(name).static_addresses == 0
                fitting = "dns_change" if changes_dns else "address_move"
                if kind != fitting and fitting not in kinds:
                    what = "changes DNS" if changes_dns else "moves an address"
                    raise ValueError(
                        f"faults[{i}].kind: {kind} does not fit strategy {name}, whose failover {what}; "
                        f"add a {fitting} fault for it, or remove {name} from strategies"
                    )

    def fault_times(self, changes_dns: bool) -> list[float]:
        """When a client's failures may start being counted, for a strategy that changes
        DNS (or moves an address): the faults, and the planned change it makes (the
        other kind does not apply to it), in order."""
        planned = self.planned_change(changes_dns)
        return sorted([f.at for i, f in enumerate(self.faults) if f.kind not in PLANNED and not self.already_down(i)]
                      + ([planned.at] if planned else []))

    def already_down(self, i: int) -> bool:
        """Is fault `i` a balancer_down of a balancer, or a dns_down of our servers, that an
        earlier fault holds down when it starts? Overlapping faults of one component are one
        (the engines stack them), so its start is no new moment a client's failure counts from."""
        f = self.faults[i]
        if not isinstance(f, BalancerDown | DnsDown):
            return False
        for j, g in enumerate(self.faults):
            if j == i or type(g) is not type(f) or (isinstance(f, BalancerDown) and g.target != f.target):
                continue
            end = math.inf if g.for_ is None else g.at + g.for_
            if g.at < f.at < end or (g.at == f.at and j < i):
                return True
        return False

    @property
    def planned_at(self) -> float | None:
        """The earliest planned change (either kind), for the drain figure; None without one."""
        return min((f.at for f in self.faults if f.kind in PLANNED), default=None)

    def planned_change(self, changes_dns: bool) -> DnsChange | AddressMove | None:
        """The planned change a strategy that changes DNS (or moves an address) makes, if any."""
        kind = "dns_change" if changes_dns else "address_move"
        return next((f for f in self.faults if f.kind == kind), None)  # type: ignore[return-value]

    def _check_cohort_sizes(self) -> None:
        shares = [c.share for c in self.clients if c.share is not None]
        if not shares:
            if self.population is not None:
                raise ValueError("population: only used with cohort shares; every cohort here gives a count")
            total = sum(c.count or 0 for c in self.clients)
            if total > lim.MAX_CLIENTS:
                raise ValueError(f"clients: {total:,} in all; at most {lim.MAX_CLIENTS:,} ({lim.CLIENTS_REASON})")
            return
        if len(shares) != len(self.clients):
            raise ValueError("clients: give every cohort a count, or every cohort a share, not a mix")
        if self.population is None:
            raise ValueError("population: cohort shares need a top-level population (the total number of clients)")
        total = sum(shares)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"clients: cohort shares must sum to 1, got {total:.12g}")

    # -- derived views --------------------------------------------------------

    def cohort_sizes(self) -> dict[str, int]:
        """Clients per cohort, shares turned into counts by largest remainder."""
        if self.population is None or self.clients[0].count is not None:
            return {c.name: int(c.count or 0) for c in self.clients}
        exact = [c.share * self.population for c in self.clients if c.share is not None]
        counts = [math.floor(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: self.population - sum(counts)]:
            counts[i] += 1
        return {c.name: n for c, n in zip(self.clients, counts, strict=True)}

    @property
    def active(self) -> Balancer:
        return next(b for b in self.balancers if b.role == "active")

    @property
    def standby(self) -> Balancer:
        return next(b for b in self.balancers if b.role == "standby")

    @property
    def end(self) -> float:
        return self.warmup + self.duration

    def to_document(self) -> dict[str, Any]:
        """The scenario with every default filled in, in the units a user writes."""
        return self.model_dump(mode="json", by_alias=True)

    # -- edits (sim/scenario/edit.py): new, revalidated copies ---------------

    def replace(self, **changes: Any) -> Scenario:
        """A copy with top-level fields replaced, validated again: `s.replace(duration="30m")`.

        Raises ScenarioError naming the field of any invalid value.
        """
        from sim.scenario.edit import replace

        return replace(self, **changes)

    def with_values(self, changes: dict[str, object]) -> Scenario:
        """A copy with values set at paths, validated again: `s.with_values({"dns.records[1].ttl": "30s"})`.

        Paths use dots and `[i]` indices; an unknown path is a ScenarioError naming it.
        """
        from sim.scenario.edit import with_values

        return with_values(self, changes)


def _unique(names: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{path}[{i}]: {what} {name!r} appears twice; names must be unique")
        seen.add(name)
