"""What the lab builds from a Deployment, without processes: what it supports (by
mechanism), what its authoritative server publishes before and after the
failover, and what it refuses to run without the model's trace."""

from __future__ import annotations

import numpy as np
import pytest

import sim.lab
from sim.lab.world import Site, initial_answer, service_record, unsupported
from sim.policy.failover import PLANS, CnameRepoint, EipRemap, TwoStepPlan, plan_class
from sim.replication import ClientState, Trace
from sim.scenario import build, load_data
from tests.lab.scenarios import PLANNED, PLANNED_MOVE, SMALL

SITE = Site("10.0.0.11", "10.0.0.12", "10.0.0.10", "blue.elb.example.net.", "green.elb.example.net.")
RUNS = ("cname_repoint", "eip_remap", "alias_apex", "vrrp", "multi_a")


def _scenario(**changes: object):  # type: ignore[no-untyped-def]
    return load_data({**SMALL, "strategies": list(PLANS), **changes}, "lab-deployment")


class _TimerOnly(CnameRepoint):
    """A Master_Down timer in front of a CNAME change: nothing for the timer to take over."""

    __slots__ = ()
    name = "timer_then_cname"
    detection = "master_down"


class _TwoMoving(EipRemap):
    __slots__ = ()
    name = "two_moving"
    static_addresses = 2


def test_the_lab_names_what_it_cannot_run_by_plan_and_mechanism() -> None:
    sc = _scenario()
    reasons = unsupported(sc)
    assert not [r for r in reasons if any(f"strategies: {s}:" in r for s in RUNS)], reasons
    dns_failover = [r for r in reasons if r.startswith("strategies: dns_failover:")]
    anycast = [r for r in reasons if r.startswith("strategies: anycast:")]
    assert len(dns_failover) == 1 and "DNS provider's health checkers" in dns_failover[0], reasons
    assert any("accelerator" in r for r in anycast) and any("2 moving addresses" in r for r in anycast), reasons
    # Plans the lab never heard of, by what they are.
    odd = unsupported(sc, [_TimerOnly, _TwoMoving])
    assert odd == ["strategies: timer_then_cname: a Master_Down timer with no moving address to take over",
                   "strategies: two_moving: 2 moving addresses (the lab moves one, between two sim.core processes)"]


def test_a_strategy_is_a_name_a_plan_class_a_plan_or_a_deployment() -> None:
    sc = _scenario()
    for name in PLANS:
        deployment = build.compile(sc, name)
        forms = [[name], [plan_class(name)], [deployment.plan], [deployment]]
        assert len({tuple(unsupported(sc, form)) for form in forms}) == 1, name
    assert sim.lab.unsupported is unsupported


def _published(sc, strategy):  # type: ignore[no-untyped-def]
    return build.compile(sc, strategy).published


def test_what_the_service_name_answers_before_and_after_the_failover() -> None:
    sc = _scenario(dns=dict(SMALL["dns"], service_ttl="30s", balancer_ttl="20s"))
    expected = {
        # strategy: (before, after, initial answer)
        "cname_repoint": (("CNAME", [SITE.active_name], 30.0), ("CNAME", [SITE.standby_name], 30.0), [SITE.active]),
        "alias_apex": (("A", [SITE.active], 20.0), ("A", [SITE.standby], 20.0), [SITE.active]),
        "multi_a": (("A", [SITE.active, SITE.standby], 30.0), ("A", [SITE.standby], 30.0),
                    [SITE.active, SITE.standby]),
        "eip_remap": (("A", [SITE.shared], 30.0), ("A", [SITE.shared], 30.0), [SITE.shared]),
        "vrrp": (("A", [SITE.shared], 30.0), ("A", [SITE.shared], 30.0), [SITE.shared]),
    }
    for strategy, (before, after, answer) in expected.items():
        published = _published(sc, strategy)
        got = [tuple(service_record(published, SITE, failed_over=f).values()) for f in (False, True)]
        assert got == [before, after], strategy
        assert initial_answer(published, SITE) == answer, strategy


def test_answers_rotate_unless_the_plan_keeps_them_fixed() -> None:
    sc = _scenario()
    assert all(_published(sc, s).rotate for s in RUNS)
    fixed = _scenario(failover={**SMALL["failover"], "multi_a": {"order": "fixed"}})
    assert not _published(fixed, "multi_a").rotate and _published(fixed, "cname_repoint").rotate


def test_a_plan_of_static_addresses_that_does_not_move_them_is_repointed_in_dns() -> None:
    """No name in the lab for it: A records of the active, then of the standby, at the service TTL."""

    class RepointedAddress(CnameRepoint):
        __slots__ = ()
        name = "repointed_address"
        record = "addresses"

    sc = _scenario()
    published = _published(sc, RepointedAddress)
    assert service_record(published, SITE) == {"type": "A", "values": [SITE.active], "ttl": sc.dns.service_ttl}
    assert service_record(published, SITE, True)["values"] == [SITE.standby]
    assert unsupported(sc, [RepointedAddress]) == []
    assert issubclass(RepointedAddress, TwoStepPlan)


def test_replicate_needs_the_models_trace_of_the_same_scenario() -> None:
    sc = load_data(SMALL, "lab-small")
    seed = np.random.SeedSequence(3)
    with pytest.raises(TypeError, match=r"sim\.model\.trace"):
        sim.lab.replicate(sc, "cname_repoint", seed)
    rng = np.random.default_rng(0)
    other = Trace(clients=[], caches=[[]], arrival_seeds=[1], resolver_seeds=[1], failover=rng, faults=rng)
    with pytest.raises(ValueError, match="the trace is not of this scenario"):
        sim.lab.replicate(sc, "cname_repoint", seed, trace=other)
    farm = load_data({**SMALL, "dns": {**SMALL["dns"], "resolvers": [{**SMALL["dns"]["resolvers"][0], "caches": 2}]}},
                     "lab-farm")
    flat = Trace(clients=[ClientState(0, None, 0, None)] * 18, caches=[[]] * 6, arrival_seeds=[1],
                 resolver_seeds=[1] * 6, failover=rng, faults=rng)
    with pytest.raises(ValueError, match="no state for each cache"):
        sim.lab.replicate(farm, "cname_repoint", seed, trace=flat)
    with pytest.raises(ValueError, match="compiled for scenario"):
        sim.lab.replicate(sc, build.compile(_scenario(), "cname_repoint"), seed, trace=other)


def test_the_lab_runs_planned_changes_of_both_kinds() -> None:
    assert unsupported(load_data(PLANNED, "lab-planned")) == []
    assert unsupported(load_data(PLANNED_MOVE, "lab-planned-move")) == []


def test_the_lab_names_the_resolver_mechanisms_it_does_not_build() -> None:
    dns = {**SMALL["dns"], "resolvers": [
        {"name": "farm", "count": 2, "share": 0.5, "caches": 3, "prefetch": True},
        {"name": "stale", "count": 2, "share": 0.5, "serve_expired": {"client_timeout": "0s"},
         "policy": {"kind": "fixed", "ttl": "30s"}},
    ]}
    reasons = unsupported(_scenario(dns=dns), ["cname_repoint"])
    # a farm and prefetch on an unbound group run (several unbound, unbound's own option);
    # serve-expired on our forwarder does not
    assert reasons == ["dns.resolvers[1].serve_expired, with policy fixed (served by our forwarder, not unbound)"]
    # a farm of our forwarders runs too, each cache drawing from its own stream (Farm.cache_seed)
    dns["resolvers"][1] = {**dns["resolvers"][1], "serve_expired": None, "caches": 2}
    assert unsupported(_scenario(dns=dns), ["cname_repoint"]) == []
    dns["resolvers"][1] = {**dns["resolvers"][1], "prefetch": True}
    assert unsupported(_scenario(dns=dns), ["cname_repoint"]) == [
        "dns.resolvers[1].prefetch, with policy fixed (served by our forwarder, not unbound)"]


def test_the_lab_runs_restarts_stub_grace_and_sessions() -> None:
    cohort = {**SMALL["clients"][0], "restart": {"every": {"exp": "10s"}}, "stub_grace": "20s"}
    assert unsupported(load_data({**SMALL, "clients": [cohort]}, "lab-lifecycle")) == []
    sessions = {**{k: v for k, v in cohort.items() if k != "rate"},
                "sessions": {"requests": {"exp": 5}, "think": {"exp": "5s"}, "gap": {"exp": "60s"}}}
    assert unsupported(load_data({**SMALL, "clients": [sessions]}, "lab-sessions")) == []


def test_the_lab_names_overlapping_faults_of_the_active_balancer() -> None:
    faults = [{"at": "15s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "10s"},
              {"at": "20s", "kind": "balancer_down", "target": "blue", "mode": "blackhole", "for": "10s"},
              {"at": "40s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "5s"},
              {"at": "20s", "kind": "dns_down", "for": "10s"}, {"at": "25s", "kind": "dns_down", "for": "10s"}]
    assert unsupported(load_data({**SMALL, "faults": faults}, "lab-overlap")) == [
        "faults[1]: a fault of the active balancer that overlaps another of it"]
