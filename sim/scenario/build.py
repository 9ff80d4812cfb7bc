"""Scenario settings turned into the sim.policy objects every engine drives.

Kept here, beside the contract, so the model, the fast engine and the lab
build their decisions the same way from the same fields.
"""

from __future__ import annotations

from sim.policy.attempts import ConnectionReuse, RetryRule
from sim.policy.cache import CachePolicy, make_cache_policy
from sim.policy.failover import FailoverSpec
from sim.policy.health import HealthCheckSpec
from sim.scenario import models as m


def cache_policy(spec: m.Honor | m.NoCache | m.Floor | m.Cap | m.Fixed | m.Forever | m.Extend | m.ServeStale) -> CachePolicy:
    params = spec.model_dump(exclude={"kind"})
    if isinstance(spec, m.Extend):
        params["extra"] = spec.extra
    return make_cache_policy(spec.kind, **params)


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
    from dataclasses import replace

    from sim.policy.failover import AnycastSpec, ProviderChecks, VrrpSpec

    f = scenario.failover
    p, a, v = f.provider_checks, f.anycast, f.vrrp
    return replace(
        failover(f, scenario.dns.propagation),
        provider=ProviderChecks(p.interval, p.threshold, p.timeout, p.checkers, p.healthy_share),
        anycast=AnycastSpec(a.interval, a.threshold, a.timeout, a.shift_delay),
        vrrp=VrrpSpec(v.advert_int, v.priority, v.garp_delay),
    )


def retry(cohort: m.Cohort) -> RetryRule:
    return RetryRule(attempts=cohort.retry.attempts, timeout=cohort.retry.timeout)


def reuse(cohort: m.Cohort) -> ConnectionReuse:
    return ConnectionReuse(keepalive=cohort.keepalive, max_age=cohort.max_connection_age)
