"""Scenario settings turned into the sim.policy objects every engine drives.

Kept here, beside the contract, so the model, the fast engine and the lab
build their decisions the same way from the same fields. `compile` is the one
place a strategy is decided: it turns a scenario and a strategy (a name, or a
plan class of sim.policy.failover) into a `Deployment`, and the engines read
that object; none of them holds a strategy's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sim.policy.attempts import ConnectionReuse, RetryRule
from sim.policy.cache import CachePolicy, make_cache_policy
from sim.policy.failover import (
    AnycastSpec,
    FailoverPlan,
    FailoverSpec,
    ProviderChecks,
    Published,
    VrrpSpec,
    plan_class,
)
from sim.policy.health import HealthCheckSpec
from sim.policy.resolver import Farm, ResolverSetup, ServeExpired
from sim.policy.restarts import Restarts
from sim.policy.sessions import Sessions
from sim.scenario import models as m


def cache_policy(spec: m.Honor | m.NoCache | m.Floor | m.Cap | m.Fixed | m.Forever | m.Extend | m.ServeStale) -> CachePolicy:
    params = spec.model_dump(exclude={"kind"})
    if isinstance(spec, m.Extend):
        params["extra"] = spec.extra
    return make_cache_policy(spec.kind, **params)


def resolver_setup(group: m.ResolverGroup) -> ResolverSetup:
    """A resolver group's farm, prefetch and serve-expired, as the policies engines use."""
    served = group.serve_expired
    return ResolverSetup(
        farm=Farm(caches=group.caches, sticky=group.sticky),
        prefetch=group.prefetch,
        serve_expired=None if served is None else ServeExpired(served.client_timeout, served.reply_ttl, served.ttl),
    )


def health_check(spec: m.HealthCheck) -> HealthCheckSpec:
    return HealthCheckSpec(interval=spec.interval, timeout=spec.timeout, rise=spec.rise, fall=spec.fall)


def failover(spec: m.Failover, propagation: object) -> FailoverSpec:
    detection = spec.detection
    if isinstance(detection, m.OperatorDetection):
        return FailoverSpec(
            delay=detection.delay,
            change_delay=spec.change_delay,
            propagation=propagation,  # type: ignore[arg-type]
            remap_delay=spec.remap_delay,
        )
    return FailoverSpec(
        interval=detection.interval,
        threshold=detection.threshold,
        timeout=detection.timeout,
        change_delay=spec.change_delay,
        propagation=propagation,  # type: ignore[arg-type]
        remap_delay=spec.remap_delay,
    )


def scenario_failover(scenario: m.Scenario) -> FailoverSpec:
    """The scenario's FailoverSpec with the fields of the strategies that bring their own
    detection (dns_failover's provider checks, anycast's, vrrp's timer): what every engine drives."""
    f = scenario.failover
    p, a, v = f.provider_checks, f.anycast, f.vrrp
    return replace(
        failover(f, scenario.dns.propagation),
        provider=ProviderChecks(p.interval, p.threshold, p.timeout, p.checkers, p.healthy_share),
        anycast=AnycastSpec(a.interval, a.threshold, a.timeout, a.shift_delay),
        vrrp=VrrpSpec(v.advert_int, v.priority, v.garp_delay),
        answer_order=f.multi_a.order,
    )


def retry(cohort: m.Cohort) -> RetryRule:
    return RetryRule(attempts=cohort.retry.attempts, timeout=cohort.retry.timeout)


def reuse(cohort: m.Cohort) -> ConnectionReuse:
    return ConnectionReuse(keepalive=cohort.keepalive, max_age=cohort.max_connection_age)


@dataclass(frozen=True)
class Deployment:
    """A scenario with one strategy decided: every policy object an engine needs, built once.

    ``strategy`` is the plan's name, for labels only; engines branch on what the
    plan publishes (``published``) and who detects (``plan.detection``), never on it.
    """

    scenario: m.Scenario
    plan: FailoverPlan
    failover: FailoverSpec
    published: Published
    resolver_policies: dict[str, CachePolicy]  # per resolver group
    resolver_setups: dict[str, ResolverSetup]  # per resolver group: farm, prefetch, serve-expired
    stubs: dict[str, CachePolicy]  # per cohort
    retries: dict[str, RetryRule]  # per cohort
    reuse: dict[str, ConnectionReuse]  # per cohort
    backend_check: HealthCheckSpec
    restarts: dict[str, Restarts | None] = field(default_factory=dict)  # per cohort; None: never restarts
    sessions: dict[str, Sessions | None] = field(default_factory=dict)  # per cohort; None: Poisson requests

    @property
    def strategy(self) -> str:
        return self.plan.name

    def detector_check(self) -> HealthCheckSpec:
        """The checks of a detector that is one checker (the scenario's, or an accelerator's)."""
        if self.plan.detection == "accelerator_checks":
            return self.failover.anycast.health_check()
        return self.failover.health_check()


def compile(scenario: m.Scenario, strategy: str | type | FailoverPlan) -> Deployment:  # noqa: A001
    """Decide `strategy` for `scenario`: a name (one of sim.policy.failover.PLANS), a
    plan class, or a plan already made (its spec then stands as given)."""
    if isinstance(strategy, Deployment):
        return strategy
    spec = scenario_failover(scenario)
    if isinstance(strategy, str):
        plan: FailoverPlan = plan_class(strategy)(spec)
    elif isinstance(strategy, type):
        plan = strategy(spec)
    else:
        plan, spec = strategy, strategy.spec
    return Deployment(
        scenario=scenario,
        plan=plan,
        failover=spec,
        published=plan.published(scenario.dns.service_ttl, scenario.dns.balancer_ttl),
        resolver_policies={g.name: cache_policy(g.policy) for g in scenario.dns.resolvers},
        resolver_setups={g.name: resolver_setup(g) for g in scenario.dns.resolvers},
        stubs={c.name: cache_policy(c.stub_cache) for c in scenario.clients},
        retries={c.name: retry(c) for c in scenario.clients},
        reuse={c.name: reuse(c) for c in scenario.clients},
        backend_check=health_check(scenario.backends.health_check),
        restarts={c.name: None if c.restart is None else Restarts(c.restart.every) for c in scenario.clients},
        sessions={c.name: None if c.sessions is None else c.sessions.policy() for c in scenario.clients},
    )
