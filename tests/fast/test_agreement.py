"""The fast engine against the model (the reference), scenario by scenario.

Each summary metric of the fast engine must lie within the model's
uncertainty: the difference of the two means within 4 standard errors of
that difference (both engines' replication spread). Where the fast engine
approximates, the test adds the documented tolerance (docs/fast.md):

- dns_queries: resolvers' queries are a Poisson stream in the fast engine;
  a resolver with a few clients whose stubs hold answers (fixed, floor) gets
  them phase-locked in the model, and pooled clients query only when they
  reconnect: up to 60% apart there.
- latency percentiles: a queue law per second (M/M/c, E_n/M/c for round robin)
  instead of each request's queue: 5%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.fast import simulate as fast
from sim.model import simulate as des
from sim.results.schema import affected_clients
from sim.scenario import load_file
from tests.model.scenarios import scenario

TOLERANCE = {"dns_queries": 0.6, "latency_ms_p50": 0.05, "latency_ms_p99": 0.05}
SMALL = {"clients.0.count": 300, "duration": "3m", "dns.resolvers.0.count": 300}


def _metrics(engine, sc, strategy: str, reps: int) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    rows = []
    for k in range(reps):
        out = engine(sc, strategy, np.random.SeedSequence([11, k]), k)
        m = dict(out.metrics)
        m["availability"] = 1.0 - m["failed"] / m["requests"]
        recovery = affected_clients(out.clients)["recovery_s"].to_numpy()
        m["recovery_mean"] = float(np.nanmean(recovery)) if np.isfinite(recovery).any() else math.nan
        m["never_recovered"] = float(np.mean(np.isnan(recovery))) if len(recovery) else 0.0
        # Totals by outcome, compared when a test asks (assert_agree's `also`).
        m["refused"] = float(out.timeline["refused"].sum())
        m["dns_error"] = float(out.timeline["dns_error"].sum())
        m["timeout"] = float(out.timeline["timeout"].sum())
        m["rescued"] = math.nan if out.targets is None else float(out.targets["rescued"].sum())  # multi_a: None
        rows.append(m)
    return {key: np.array([r[key] for r in rows], dtype=float) for key in rows[0]}


def assert_agree(sc, strategy: str, reps: int = 4, skip: tuple[str, ...] = (),  # type: ignore[no-untyped-def]
                 also: tuple[str, ...] = ()) -> None:
    """The summary metrics agree within 4 standard errors (plus TOLERANCE), and the totals
    named in `also` (refused, dns_error, timeout, rescued) too."""
    model, quick = _metrics(des, sc, strategy, reps), _metrics(fast, sc, strategy, reps)
    problems = []
    for key in ("requests", "availability", "clients_affected", "recovery_mean", "never_recovered", "dns_queries",
                "latency_ms_p50", "latency_ms_p99", "dropped", *also):
        if key in skip:
            continue
        a, b = model[key], quick[key]
        if np.isnan(a).all() and np.isnan(b).all():
            continue
        if key == "recovery_mean" and (np.isnan(a).all() or np.isnan(b).all()):
            # No client affected in any replication of one engine: the mean is undefined
            # there. That is agreement only if the other engine's affected clients are as
            # rare (a request lost with a dying instance now and then: one in several runs).
            other = quick if np.isnan(a).all() else model
            if not np.mean(other["clients_affected"]) <= 1.0:
                problems.append(f"{key}: defined in one engine only, with "
                                f"{np.mean(other['clients_affected']):.3g} clients affected")
            continue
        if key == "recovery_mean" and min(np.isfinite(a).sum(), np.isfinite(b).sum()) < 2:
            # Defined in one replication of an engine: no spread to judge the mean by (the
            # standard error was nan, and nan fails every comparison). As rare as that, the
            # clients affected must be rare in both engines.
            most = max(np.mean(model["clients_affected"]), np.mean(quick["clients_affected"]))
            if not most <= 1.0:
                problems.append(f"{key}: defined in fewer than two replications, with {most:.3g} clients affected")
            continue
        ma, mb = np.nanmean(a), np.nanmean(b)
        se = math.sqrt(np.nanvar(a, ddof=1) / len(a) + np.nanvar(b, ddof=1) / len(b))
        allowed = 4.0 * se + TOLERANCE.get(key, 0.0) * abs(ma) + 1e-9
        # A metric with no spread in either engine (a count that is always 1000) needs exact
        # agreement up to a count's own Poisson noise.
        allowed = max(allowed, 3.0 * math.sqrt(abs(ma)) if key in ("requests", "clients_affected", "dropped") else 0.0)
        if not abs(ma - mb) <= allowed:
            problems.append(f"{key}: model {ma:.4g}, fast {mb:.4g}, allowed difference {allowed:.3g}")
    assert not problems, f"{strategy}: " + "; ".join(problems)


CASES = {
    "resolvers honour a 60 s TTL, no stub cache": {},
    "TTL 300 s (some never recover in the run)": {"dns.service_ttl": "300s", "dns.balancer_ttl": "300s"},
    "JVM stub: fixed 30 s": {"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}},
    "TTL stretching resolvers": {"dns.resolvers.0.policy": {"kind": "extend", "extra": {"exp": "60s"}}},
    "blackhole with a retry": {"faults.0.mode": "blackhole", "clients.0.retry": {"attempts": 2, "timeout": "3s"}},
    "pooled connections": {"clients.0.keepalive": "60s"},
    "health-check detection": {"failover.detection": {"interval": "10s", "threshold": 3}},
    "balancer back after 30 s": {"faults.0.for": "30s"},
    "traffic spike": {"faults": [
        {"at": "10s", "kind": "balancer_down", "target": "blue"},
        {"at": "60s", "kind": "traffic", "factor": 3, "for": "30s"},
    ]},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_agrees_with_the_model(case: str, strategy: str) -> None:
    assert_agree(scenario(**{**SMALL, **CASES[case]}), strategy)


def _dead_instance(mode: str, retries: int, **more: object) -> dict:
    return {
        "faults": [{"at": "20s", "kind": "instance_down", "count": 1, "for": "1h", "mode": mode}],
        "clients.0.count": 100, "clients.0.rate": "2/s", "duration": "40s",
        "backends": {"instances": 4, "workers": 100, "service_time": "1ms", "policy": "random", "retries": retries,
                     "health_check": {"interval": "2s", "fall": 3, "rise": 2, "timeout": "1s"}},
        **more,
    }


INSTANCE_CASES = {
    "dead instance, no retry (the model's validation scenario)": _dead_instance("refuse", 0),
    "dead instance, a retry": _dead_instance("refuse", 1),
    "blackholed instance": _dead_instance("blackhole", 0),
    "blackholed instance, a retry (late successes)": _dead_instance("blackhole", 1),
    "two of six instances down, round robin, a retry (the cursor decides who fails)": {
        "faults": [{"at": "20s", "kind": "instance_down", "count": 2, "for": "30s", "mode": "refuse"}],
        "clients.0.count": 300, "dns.resolvers.0.count": 300, "duration": "1m",
        "backends": {"instances": 6, "workers": 100, "service_time": "1ms", "policy": "round_robin", "retries": 1,
                     "health_check": {"interval": "2s", "fall": 3, "rise": 2, "timeout": "1s"}},
    },
    "two of four instances down 30 s, round robin": {
        "faults": [{"at": "20s", "kind": "instance_down", "count": 2, "for": "30s", "mode": "refuse"}],
        "clients.0.count": 300, "dns.resolvers.0.count": 300, "duration": "2m",
        "backends": {"instances": 4, "workers": 100, "service_time": "1ms", "policy": "round_robin"},
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(INSTANCE_CASES))
def test_fast_agrees_on_backend_instance_faults(case: str) -> None:
    assert_agree(scenario(**INSTANCE_CASES[case]), "eip_remap", reps=6)


NEW_STRATEGIES = ("alias_apex", "dns_failover", "vrrp", "anycast")
NEW_CASES = {
    "base": {},
    "long TTLs": {"dns.service_ttl": "300s", "dns.balancer_ttl": "120s"},
    "blackhole": {"faults.0.mode": "blackhole"},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", NEW_STRATEGIES)
@pytest.mark.parametrize("case", list(NEW_CASES))
def test_fast_agrees_on_the_other_strategies(case: str, strategy: str) -> None:
    assert_agree(scenario(**{**SMALL, **NEW_CASES[case], "strategies": [strategy]}), strategy)


MULTI_A_CASES = {
    "first address, no retry": {},
    "a retry (goes to the other address)": {"clients.0.retry": {"attempts": 2, "timeout": "5s"}},
    "pooled connections": {"clients.0.keepalive": "60s"},
    "JVM stub": {"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}},
    "next address": {"clients.0.address_mode": "next"},
    "next address, pooled": {"clients.0.address_mode": "next", "clients.0.keepalive": "60s"},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MULTI_A_CASES))
def test_fast_agrees_on_multi_a(case: str) -> None:
    # dns_queries is not compared where connections are pooled: under multi_a a pooled
    # client looks the name up once after its connection breaks, which the fast engine's
    # query stream (docs/fast.md) does not follow; the model has a few dozen such queries.
    pooled = "keepalive" in str(MULTI_A_CASES[case])
    assert_agree(scenario(**{**SMALL, **MULTI_A_CASES[case], "strategies": ["multi_a"]}), "multi_a", reps=5,
                 skip=("dns_queries",) if pooled else ())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap", "alias_apex", "dns_failover", "anycast", "vrrp", "multi_a"])
def test_fast_agrees_on_the_all_strategies_scenario(strategy: str) -> None:
    sc = load_file("scenarios/all-strategies.yaml").replace(duration="12m", strategies=[strategy])
    assert_agree(sc, strategy, reps=4)


@pytest.mark.slow
@pytest.mark.xfail(reason="known deviation (docs/fast.md): floor stubs alone on their resolver recover later "
                   "in the fast engine (never recovered in 3 min: 26% against the model's 17%)", strict=False)
def test_browser_floor_stub_alone_on_its_resolver() -> None:
    assert_agree(scenario(**{
        **SMALL, "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"}, "clients.0.rate": "1/min",
        "clients.0.count": 1000, "dns.resolvers.0.count": 1000,
    }), "cname_repoint")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_fast_agrees_on_the_default_scenario(strategy: str) -> None:
    sc = load_file("scenarios/elb-blowup.yaml").replace(duration="12m")
    assert_agree(sc, strategy, reps=4)


@pytest.mark.slow
# derandomize: CI sees the same examples every run (a failure is then reproducible, not a coin toss)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    ttl=st.sampled_from(["20s", "60s", "120s"]),
    rate=st.sampled_from(["1/s", "6/min"]),
    stub=st.sampled_from([{"kind": "none"}, {"kind": "honor"}, {"kind": "fixed", "ttl": "30s"}]),
    delay=st.sampled_from(["10s", "40s"]),
    mode=st.sampled_from(["refuse", "blackhole"]),
    strategy=st.sampled_from(["cname_repoint", "eip_remap"]),
)
def test_fast_agrees_on_random_small_scenarios(ttl: str, rate: str, stub: dict, delay: str, mode: str, strategy: str) -> None:
    sc = scenario(**{
        **SMALL, "clients.0.count": 200, "dns.resolvers.0.count": 50, "dns.service_ttl": ttl, "dns.balancer_ttl": ttl,
        "clients.0.rate": rate, "clients.0.stub_cache": stub, "failover.detection": {"delay": delay},
        "faults.0.mode": mode,
    })
    assert_agree(sc, strategy, reps=3)


def _dns_down(**more: object) -> dict:
    return {**SMALL, "faults": [{"at": "30s", "kind": "dns_down", "for": "60s"}], "clients.0.rate": "6/min", **more}


DNS_DOWN_CASES = {
    "an outage shorter than the TTL (resolvers that keep their answer keep working)":
        _dns_down(**{"dns.service_ttl": "300s", "dns.balancer_ttl": "300s"}),
    "JVM stub, a retry": _dns_down(**{"dns.service_ttl": "300s", "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
                                      "clients.0.retry": {"attempts": 2, "timeout": "5s"}}),
    "browser floor stubs, several clients per resolver": _dns_down(**{
        "dns.service_ttl": "120s", "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"},
        "dns.resolvers.0.count": 50}),
    "TTL stretching resolvers": _dns_down(**{"dns.resolvers.0.policy": {"kind": "extend", "extra": {"exp": "60s"}}}),
    "an outage to the end of the run": {**SMALL, "faults": [{"at": "20s", "kind": "dns_down", "for": "10m"}],
                                        "dns.service_ttl": "30s"},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
@pytest.mark.parametrize("case", list(DNS_DOWN_CASES))
def test_fast_agrees_on_dns_down(case: str, strategy: str) -> None:
    # Our authoritative servers down, no balancer fault: a client fails to resolve from its
    # first resolution after its resolver's answer expired until the outage ends.
    assert_agree(scenario(**DNS_DOWN_CASES[case]), strategy)


def _down(at: str, target: str = "blue", span: str | None = None) -> dict:
    return {"at": at, "kind": "balancer_down", "target": target, **({"for": span} if span else {})}


SECOND_FAULT_CASES = {
    "the active fails again after it came back (long TTLs: clients still on it)": {
        "faults": [_down("10s", span="30s"), _down("100s", span="30s")],
        "dns.service_ttl": "300s", "dns.balancer_ttl": "300s"},
    "the standby fails after the failover": {"faults": [_down("10s"), _down("100s", "green", "30s")]},
    "the standby down before the failover reaches it": {"faults": [_down("5s", "green", "60s"), _down("10s")]},
    "a fault too short for the checks, then one they detect": {
        "faults": [_down("10s", span="10s"), _down("60s")], "failover.detection": {"interval": "10s", "threshold": 3}},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
@pytest.mark.parametrize("case", list(SECOND_FAULT_CASES))
def test_fast_agrees_on_a_second_balancer_fault(case: str, strategy: str) -> None:
    # A client's requests meet each fault while they go to its balancer: the active's until
    # the client's switch, the standby's after it; the detector turns on the first fault it sees.
    assert_agree(scenario(**{**SMALL, "clients.0.rate": "6/min", **SECOND_FAULT_CASES[case]}), strategy)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", NEW_STRATEGIES)
@pytest.mark.parametrize("case", ["a fault too short for the checks, then one they detect",
                                  "the standby fails after the failover"])
def test_a_second_balancer_fault_with_the_other_detectors(case: str, strategy: str) -> None:
    # The provider's checkers, the accelerator's checks and VRRP's timer see every fault too.
    sc = scenario(**{**SMALL, "clients.0.rate": "6/min", **SECOND_FAULT_CASES[case], "strategies": [strategy]})
    assert_agree(sc, strategy)


def test_several_balancer_faults_are_refused_only_where_not_modelled() -> None:
    from sim.fast import unsupported

    assert not unsupported(scenario(faults=[_down("10s", span="30s"), _down("100s", "green")]))
    # overlapping faults of one balancer in one mode are the one fault that covers them
    assert not unsupported(scenario(faults=[_down("10s", span="60s"), _down("30s")]))
    mixed = unsupported(scenario(faults=[_down("10s", span="60s"), {**_down("30s"), "mode": "blackhole"}]))
    assert any("faults[1]: overlaps an earlier fault of blue in the other mode" in r for r in mixed), mixed
    blackholed = unsupported(scenario(faults=[{**_down("10s"), "mode": "blackhole"}, _down("100s", "green")]))
    assert any("faults[0]" in r and "blackholed" in r for r in blackholed)
    multi = unsupported(scenario(faults=[_down("10s", span="30s"), _down("100s")], strategies=["multi_a"]))
    assert any("multi_a" in r and "several balancer faults" in r for r in multi)


CHURN = {"faults": [], "balancers.0.nodes": 2, "balancers.0.churn": "60s", "balancers.0.drain": "20s",
         "dns.balancer_ttl": "10s"}
CHURN_CASES = {
    "TTL stretching resolvers (old node lists held past the drain)": {
        **CHURN, "dns.resolvers.0.policy": {"kind": "extend", "extra": {"exp": "60s"}}},
    "pooled connections outliving the drain": {**CHURN, "clients.0.keepalive": "5m", "clients.0.max_connection_age": "2m"},
    "with a balancer fault": {**CHURN, "faults": [_down("100s")],
                              "dns.resolvers.0.policy": {"kind": "extend", "extra": {"exp": "60s"}}},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["eip_remap", "anycast"])
@pytest.mark.parametrize("case", list(CHURN_CASES))
def test_fast_agrees_on_node_churn_behind_static_addresses(case: str, strategy: str) -> None:
    # Static addresses lead to the balancer's front, not to a node: node churn fails no
    # request in the model, where the same churn behind a CNAME fails a third of them (the
    # first case; tests/fast/test_churn.py).
    sc = scenario(**{**SMALL, **CHURN_CASES[case], "strategies": [strategy]})
    assert_agree(sc, strategy)


def test_unsupported_features_are_named() -> None:
    from sim.fast import unsupported

    both = [{"at": "10s", "kind": "balancer_down", "target": "blue"}, {"at": "10s", "kind": "dns_down", "for": "30s"}]
    # Under node churn a dns_down beside the churned balancer's refusing fault is followed
    # (tests/fast/test_churn_migration.py), not beside its blackholing one.
    assert not unsupported(scenario(**{"balancers.0.churn": "1h", "faults": both}))
    hole = [{**both[0], "mode": "blackhole"}, both[1]]
    reasons = unsupported(scenario(**{"balancers.0.churn": "1h", "faults": hole}))
    assert any("balancers[0].churn" in r and "faults[1] (dns_down)" in r for r in reasons), reasons
    # a dns_down with a balancer fault, stale-serving resolvers or pooled connections: every
    # client followed request by request (tests/fast/test_dns_down_combos.py)
    assert not unsupported(scenario(faults=both))
    outage = {"faults": [{"at": "10s", "kind": "dns_down", "for": "30s"}]}
    assert not unsupported(scenario(**outage))
    assert not unsupported(scenario(**outage, **{"dns.resolvers.0.policy": {"kind": "serve_stale"}}))
    assert not unsupported(scenario(**outage, **{"clients.0.keepalive": "60s"}))
    # Every shipped scenario runs with both engines (issue 6), web-migration.yaml's planned
    # changes and elb-blowup-consumer.yaml's browsing sessions too.
    from pathlib import Path

    for path in sorted(Path("scenarios").glob("*.yaml")):
        assert not unsupported(load_file(path)), path
    planned = {"faults": [{"kind": "dns_change", "at": "1m"}, {"kind": "dns_down", "at": "2m", "for": "1m"}],
               "strategies": ["cname_repoint", "multi_a"]}
    reasons = unsupported(scenario(**planned))
    assert any("multi_a publishes one address per balancer, with a planned dns_change" in r for r in reasons), reasons
    # a planned change with a dns_down runs (every client followed: tests/fast/test_dns_down_combos.py)
    assert not any("cname_repoint" in r for r in reasons), reasons


def test_overlapping_traffic_drops_are_named() -> None:
    from sim.fast import unsupported

    surges = [{"at": "10s", "kind": "traffic", "factor": 2, "for": "60s"},
              {"at": "30s", "kind": "traffic", "factor": 0.5, "for": "60s"}]
    assert not unsupported(scenario(faults=surges))  # a surge and a drop add up in both engines
    drops = [{**surges[0], "factor": 0.5}, surges[1]]
    assert any("faults[1]" in r for r in unsupported(scenario(faults=drops)))


# -- the backend fleet: capacity, queueing, autoscaling (sim.fast.fleet) ----------------

_CHECKS = {"interval": "2s", "fall": 3, "rise": 2, "timeout": "1s"}
FLEET_CASES = {
    "autoscaling with a traffic step (least outstanding, a client retry)": {
        "clients.0.count": 100, "clients.0.rate": "0.5/s", "dns.resolvers.0.count": 100, "duration": "4m",
        "clients.0.retry": {"attempts": 2, "timeout": "5s"},
        "backends": {"instances": 2, "workers": 4, "service_time": {"exp": "100ms"}, "queue_limit": 16,
                     "policy": "least_outstanding", "health_check": _CHECKS,
                     "autoscaling": {"min": 2, "max": 8, "target_utilization": 0.6, "period": "20s",
                                     "launch_delay": "30s"}},
        "faults": [{"at": "60s", "kind": "traffic", "factor": 3, "for": "2m"}],
    },
    "overload with shedding, no autoscaling (random)": {
        "clients.0.count": 150, "clients.0.rate": "1/s", "dns.resolvers.0.count": 150, "duration": "1m",
        "backends": {"instances": 3, "workers": 2, "service_time": {"exp": "50ms"}, "queue_limit": 8,
                     "policy": "random", "health_check": _CHECKS},
        "faults": [{"at": "20s", "kind": "traffic", "factor": 1.5, "for": "20s"}],
    },
    "an instance down with queueing (random, a balancer retry)": {
        "clients.0.count": 200, "clients.0.rate": "1/s", "dns.resolvers.0.count": 200, "duration": "90s",
        "backends": {"instances": 4, "workers": 4, "service_time": {"exp": "50ms"}, "queue_limit": 16,
                     "policy": "random", "retries": 1, "health_check": _CHECKS},
        "faults": [{"at": "20s", "kind": "instance_down", "count": 1, "for": "40s", "mode": "refuse"}],
    },
    "instance failures (mtbf 2 min, repair 30 s) and a surge (random)": {
        "clients.0.count": 200, "clients.0.rate": "1/s", "dns.resolvers.0.count": 200, "duration": "3m",
        "backends": {"instances": 6, "workers": 4, "service_time": {"exp": "20ms"}, "queue_limit": 16,
                     "policy": "random", "health_check": _CHECKS,
                     "failures": {"mtbf": "2m", "repair": {"exp": "30s"}}},
        "faults": [{"at": "30s", "kind": "traffic", "factor": 1.5, "for": "1m"}],
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FLEET_CASES))
def test_fast_agrees_on_the_backend_fleet(case: str) -> None:
    assert_agree(scenario(**FLEET_CASES[case]), "eip_remap", reps=6)


@pytest.mark.slow
@pytest.mark.xfail(reason="known deviation (docs/fast.md): under round robin the cursor sends the retries "
                   "off a dead instance unevenly (one dead of four: 44%, 11%, 44% of the requests), so the "
                   "model sheds more while the victim is still called healthy (6 replications: dropped 16 "
                   "against the model's 92, clients affected 19 against 73; latency agrees)", strict=False)
def test_round_robin_retries_off_a_dead_instance_pile_up() -> None:
    sc = scenario(**FLEET_CASES["an instance down with queueing (random, a balancer retry)"])
    assert_agree(sc.with_values({"backends.policy": "round_robin"}), "eip_remap", reps=6)


def test_round_robin_queues_wait_as_the_models() -> None:
    """Four single-worker instances at 70% load under round robin: each takes every fourth
    request, E_4/M/1 (sim.fast.queueing). Latency p50 and p99 within 4 standard errors of
    the difference, without the percentiles' 5% tolerance: M/M/1 per instance was 50% high
    (p50 228 ms against the model's 152)."""
    sc = scenario(**{
        "clients.0.count": 28, "clients.0.rate": "1/s", "dns.resolvers.0.count": 28, "duration": "3m", "faults": [],
        "backends": {"instances": 4, "workers": 1, "service_time": {"exp": "100ms"}, "queue_limit": 1000,
                     "policy": "round_robin"},
    })
    model, quick = _metrics(des, sc, "eip_remap", 8), _metrics(fast, sc, "eip_remap", 8)
    for key in ("latency_ms_p50", "latency_ms_p99"):
        a, b = model[key], quick[key]
        se = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) <= 4.0 * se, (key, a.mean(), b.mean(), se)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_fast_agrees_on_a_balancer_fault_with_an_autoscaled_surge(strategy: str) -> None:
    # Both sources of client failures at once: the dead balancer's window, then full queues.
    case = FLEET_CASES["autoscaling with a traffic step (least outstanding, a client retry)"]
    faults = [{"at": "10s", "kind": "balancer_down", "target": "blue", "mode": "refuse"},
              {"at": "60s", "kind": "traffic", "factor": 2, "for": "2m"}]
    sc = scenario(**{**case, "clients.0.count": 150, "dns.resolvers.0.count": 150, "faults": faults})
    assert_agree(sc, strategy, reps=5)


@pytest.mark.slow
def test_fast_agrees_on_the_spike_autoscaling_scenario() -> None:
    # The spike (minutes 6 to 16) and the scale-in after it, without the last 8 quiet minutes.
    # No balancer fails, so its two strategies are the same run: one is enough.
    sc = load_file("scenarios/spike-autoscaling.yaml").replace(duration="17m")
    assert_agree(sc, "cname_repoint", reps=4)


def test_clients_silent_after_their_switch_never_recover() -> None:
    """A client with no request between its resolver's switch and the end of the run never
    recovers. The fast engine once drew that client's next request a second time and so
    nearly never had one (6 against the model's 56 over these 6 runs); counts agree to their
    Poisson noise."""
    sc = scenario(**{
        **SMALL, "clients.0.count": 2000, "dns.resolvers.0.count": 500, "dns.service_ttl": "120s",
        "dns.balancer_ttl": "120s", "clients.0.rate": "6/min", "failover.detection": {"delay": "10s"},
    })

    def never(engine) -> int:  # type: ignore[no-untyped-def]
        return sum(int(affected_clients(engine(sc, "cname_repoint", np.random.SeedSequence([5, k]), k).clients)["recovery_s"].isna().sum())
                   for k in range(6))

    a, b = never(des), never(fast)
    assert a >= 10  # the case is there to be told apart
    assert abs(a - b) <= 3.0 * math.sqrt(a + b), (a, b)


def _drain_metrics(engine, sc, strategy: str, reps: int, stale_at: list[float]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """Per replication: the drain metrics as the run layer computes them (sim.analysis.drain),
    and the finite part of the drain (mean over clients that switched, the share that never
    did), which stays comparable where drain_s.mean is unbounded in both engines."""
    from sim.analysis.drain import drain_times, replication_drain

    rows = []
    for k in range(reps):
        out = engine(sc, strategy, np.random.SeedSequence([11, k]), k)
        changed = out.metrics["changed_at"]
        row = replication_drain(out.clients, out.targets, changed, stale_at)
        drains = drain_times(out.clients, changed)
        finite = drains[np.isfinite(drains)]
        row["drain_switched_mean"] = float(finite.mean()) if finite.size else math.nan
        row["never_switched"] = float(np.mean(~np.isfinite(drains)))
        row["drain_p50"], row["drain_p90"] = (float(np.percentile(drains, q, method="higher")) for q in (50, 90))
        row["previous_requests"] = float(out.targets["to_previous"].sum())
        row["changed_at"] = changed
        rows.append(row)
    return {key: np.array([r[key] for r in rows], dtype=float) for key in rows[0]}


def assert_drain_agree(sc, strategy: str, reps: int, stale_at: list[float],  # type: ignore[no-untyped-def]
                       skip: tuple[str, ...] = ()) -> None:
    """Every drain metric (but `skip`) within 4 standard errors of the engines' difference (both engines'
    replication spread); one unbounded in both engines agrees, in one only does not."""
    model, quick = _drain_metrics(des, sc, strategy, reps, stale_at), _drain_metrics(fast, sc, strategy, reps, stale_at)
    problems = []
    for key, a in model.items():
        b = quick[key]
        if key in skip:
            continue
        if np.isinf(a).any() or np.isinf(b).any():
            if not (np.isinf(a).all() and np.isinf(b).all()):
                problems.append(f"{key}: unbounded in some replications only (model {a}, fast {b})")
            continue
        if np.isnan(a).all() and np.isnan(b).all():
            continue
        ma, mb = np.nanmean(a), np.nanmean(b)
        se = math.sqrt(np.nanvar(a, ddof=1) / len(a) + np.nanvar(b, ddof=1) / len(b))
        allowed = 4.0 * se + 1e-9
        if key == "previous_requests":
            allowed = max(allowed, 3.0 * math.sqrt(ma))  # a count's own Poisson noise
        if not abs(ma - mb) <= allowed:
            problems.append(f"{key}: model {ma:.4g}, fast {mb:.4g}, allowed difference {allowed:.3g}")
    assert not problems, f"{strategy}: " + "; ".join(problems)


def _planned(kind: str, **more: object) -> dict:
    """A planned change at 60 s under 120 s TTLs, requests every 10 s (the closed-form setting
    of tests/fast/test_targets.py, propagation 0)."""
    return {"duration": "6m", "dns.service_ttl": "120s", "dns.balancer_ttl": "120s", "dns.propagation": "0s",
            "clients.0.count": 1000, "clients.0.rate": "0.1/s", "dns.resolvers.0.count": 1000,
            "faults": [{"kind": kind, "at": "60s"}], "report": {"stale_at": ["30s", "60s"]}, **more}


PLANNED_CASES = {
    "one client per honouring resolver": ("cname_repoint", _planned("dns_change")),
    "stub floor 60 s over a 30 s record": ("cname_repoint", _planned(
        "dns_change", **{"dns.service_ttl": "30s", "dns.balancer_ttl": "30s",
                         "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"}})),
    "TTL-stretching resolvers shared by ten clients, an alias": ("alias_apex", _planned(
        "dns_change", **{"dns.resolvers.0.count": 100, "dns.resolvers.0.policy": {"kind": "extend", "extra": {"exp": "60s"}}})),
    # Ten clients per resolver: a resolver whose only client is pooled fetches when that
    # client opens a connection, which the fast engine does not couple (docs/fast.md).
    "pooled connections through a DNS change, the old one switched off": ("cname_repoint", _planned(
        "dns_change", **{"dns.resolvers.0.count": 100, "clients.0.keepalive": "60s", "clients.0.max_connection_age": "3m", "clients.0.rate": "0.5/s",
                         "faults": [{"kind": "dns_change", "at": "60s"},
                                    {"kind": "balancer_down", "target": "blue", "at": "4m"}]})),
    "address move, pooled connections reset, a retry": ("eip_remap", _planned(
        "address_move", **{"clients.0.keepalive": "60s", "clients.0.retry": {"attempts": 2, "timeout": "5s"}})),
}
# Not modelled: the burst of lookups when every pooled connection is reset at the move
# (each opens a new one and looks the name up): 703 queries in the model, 87 here.
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
def test_both_engines_drain_honouring_stubs_behind_honouring_resolvers_as_the_closed_form(strategy: str) -> None:
    """One client per honouring resolver, each with an honouring stub, requests at r = 1/s over
    T = 60 s TTLs; the balancer refuses from 40 s for 40 s, the failover changes the record at
    c = 62 s, answered from c + p, p = 8 s. In steady state the resolver holds its answer with
    probability P = T / (T + 1/r), R ~ U(0, T) left, and the stub holds the same. A client's
    last request to the previous target comes after c + t (t = 30 s) if its answer outlives
    c + t and a request falls between; or if the answer expires before c + p and its refetch,
    the client's next request, still comes before c + p and gets the old answer for T more
    (and absent, if its first request comes before c + p):
    P ((T - t - (1 - e^{-r (T - t)}) / r) + (p - (1 - e^{-r p}) / r)) / T + (1 - P) (1 - e^{-r p}),
    0.607. The model read 0.684 here (the fast engine 0.585, 8 replications): it primed each
    stub apart from its resolver, and the resolver with a stub cycle's averaged query rate, so
    resolvers fetched at the later of two draws, a phase kept for many TTLs
    (tests/model/test_drain.py). Clients are independent: a binomial share over all of them."""
    rate, ttl, t, p = 1.0, 60.0, 30.0, 8.0
    sc = scenario(**{**SMALL, "strategies": [strategy], "clients.0.stub_cache": {"kind": "honor"},
                     "faults": [{"at": "5s", "kind": "traffic", "factor": 1.0, "for": "1s"},
                                {"at": "40s", "kind": "balancer_down", "target": "blue", "for": "40s"}]})
    held = ttl / (ttl + 1 / rate)
    expected = (held * ((ttl - t - (1 - math.exp(-rate * (ttl - t))) / rate) + (p - (1 - math.exp(-rate * p)) / rate))
                / ttl + (1 - held) * (1 - math.exp(-rate * p)))
    for engine in (des, fast):
        late = []
        for k in range(4):
            out = engine(sc, strategy, np.random.SeedSequence([11, k]), k)
            assert out.metrics["changed_at"] == 62.0
            late.append(out.clients["last_previous_at"].to_numpy(dtype=float) > 62.0 + t)
        share = float(np.mean(np.concatenate(late)))
        se = math.sqrt(expected * (1 - expected) / sum(len(x) for x in late))
        assert abs(share - expected) <= 3.9 * se, (engine.__module__, share, expected, se)


PLANNED_SKIP = {"address move, pooled connections reset, a retry": ("dns_queries",)}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(PLANNED_CASES))
def test_fast_agrees_on_planned_changes(case: str) -> None:
    strategy, changes = PLANNED_CASES[case]
    sc = scenario(**{**changes, "strategies": [strategy]})
    assert_drain_agree(sc, strategy, 4, sc.report.stale_at)
    assert_agree(sc, strategy, 4, skip=PLANNED_SKIP.get(case, ()))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex", "eip_remap"])
def test_fast_agrees_on_the_web_migration_scenario(strategy: str) -> None:
    """scenarios/web-migration.yaml cut to 20 minutes (the change at 5, blue off at 15): every
    cohort, the stretching resolvers, pooled and forever-cached clients."""
    sc = load_file("scenarios/web-migration.yaml").with_values(
        {"duration": "20m", "faults[2].at": "15m", "report.stale_at": ["60s", "5m"]})
    assert_drain_agree(sc, strategy, 4, sc.report.stale_at)
    assert_agree(sc, strategy, 4)


# Overlapping faults of one balancer in one mode: one fault, from the first start to the last
# end, in both engines (sim.model.control stacks them; sim.fast.refusals.merged_faults).
OVERLAP = {"clients.0.count": 300, "duration": "3m", "dns.resolvers.0.count": 100, "clients.0.rate": "0.2/s"}
OVERLAP_CASES = {
    "two that overlap": ("cname_repoint", [_down("30s", span="40s"), _down("50s", span="40s")]),
    "the second inside the first": ("eip_remap", [_down("30s", span="60s"), _down("40s", span="10s")]),
    "the second for good": ("alias_apex", [_down("30s", span="40s"), _down("60s")]),
    "two blackholes": ("cname_repoint", [{**_down("30s", span="40s"), "mode": "blackhole"},
                                         {**_down("50s", span="40s"), "mode": "blackhole"}]),
}


@pytest.mark.parametrize("case", [c if c == "the second inside the first" else pytest.param(c, marks=pytest.mark.slow)
                                  for c in OVERLAP_CASES])
def test_overlapping_faults_of_one_balancer_agree_as_the_one_that_covers_them(case: str) -> None:
    from sim.fast import unsupported

    strategy, faults = OVERLAP_CASES[case]
    sc = scenario(**{**OVERLAP, "faults": faults, "strategies": [strategy]})
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6, also=("refused", "timeout"))


def test_a_fractional_capacity_admits_as_the_models_token_bucket() -> None:
    """A node of 1.5/s: the model's token bucket admits while fewer than 1.5 are in, so two a
    second. The fast engine admitted the floor, one: behind a name (two nodes a balancer, 3/s
    of Poisson requests, the active down at 10 s; 6 replications) it shed 161 requests against
    the model's 65 (availability 37.3% against 58.0%); now 60.5."""
    sc = scenario(**{"clients.0.count": 30, "clients.0.rate": "0.1/s", "dns.resolvers.0.count": 30,
                     "duration": "3m", "balancers.0.capacity": "1.5/s", "balancers.1.capacity": "1.5/s",
                     "balancers.0.nodes": 2, "balancers.1.nodes": 2})
    assert_agree(sc, "cname_repoint", reps=6)
