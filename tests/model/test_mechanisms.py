"""Mechanisms of the model that no closed form covers, each against what must happen."""

from __future__ import annotations

import numpy as np

from sim.model.engine import Replication, simulate
from tests.model.scenarios import scenario


def by_cohort(out) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return out.clients.groupby("cohort").failed.sum().to_dict()


def two_cohorts(**changes):  # type: ignore[no-untyped-def]
    base = {
        "clients": [
            {"name": "honor", "count": 50, "rate": "1/s", "stub_cache": {"kind": "none"}},
            {"name": "once", "count": 50, "rate": "1/s", "stub_cache": {"kind": "forever"}},
        ],
        "dns.resolvers.0.count": 100,
    }
    base.update(changes)
    return scenario(**base)


def churn(drain: str):  # type: ignore[no-untyped-def]
    return two_cohorts(
        **{
            "faults": [{"at": "5s", "kind": "traffic", "factor": 1.0, "for": "1s"}],  # marks "after a fault"
            "balancers": [
                {"name": "blue", "role": "active", "nodes": 2, "churn": "2m", "drain": drain},
                {"name": "green", "role": "standby"},
            ],
            "duration": "10m",
        }
    )


def test_churn_strands_resolve_once_clients_with_no_outage() -> None:
    # ELB replaces node addresses; the old one refuses after the drain (5 min,
    # longer than the 60 s balancer TTL). Clients that resolved once keep
    # sending to it and fail; the others never notice.
    out = simulate(churn("5m"), "cname_repoint", np.random.SeedSequence(1))
    failed = by_cohort(out)
    assert failed.get("once", 0) > 100
    assert failed.get("honor", 0) == 0


def test_churn_with_a_drain_shorter_than_the_ttl_hurts_honouring_clients_too() -> None:
    # Resolvers may hand out a node address for up to balancer_ttl (60 s) after
    # it left DNS: a 30 s drain leaves them pointing at a refusing address.
    out = simulate(churn("30s"), "cname_repoint", np.random.SeedSequence(1))
    assert by_cohort(out).get("honor", 0) > 0


def test_serve_stale_rides_out_dns_down() -> None:
    sc = scenario(
        **{
            "faults": [{"at": "30s", "kind": "dns_down", "for": "2m"}],
            "dns.service_ttl": "20s",
            "dns.resolvers": [
                {"name": "plain", "count": 50, "share": 0.5, "policy": {"kind": "honor"}},
                {"name": "stale", "count": 50, "share": 0.5, "policy": {"kind": "serve_stale", "max_stale": "1h"}},
            ],
            "clients.0.count": 100,
        }
    )
    out = simulate(sc, "eip_remap", np.random.SeedSequence(2))
    failed = out.clients.groupby("resolver_group").failed.sum().to_dict()
    assert failed.get("plain", 0) > 1000  # every expired answer fails for two minutes
    assert failed.get("stale", 0) == 0
    assert out.timeline.dns_error.sum() == out.metrics["failed"]


def test_remap_resets_each_open_connection_once_and_clients_do_not_resolve() -> None:
    # A planned-style move: the balancer fails in blackhole mode only briefly so
    # connections stay open; after the remap each pooled client fails once.
    sc = scenario(
        **{
            "faults": [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "1s"}],
            "failover": {"detection": {"delay": "0s"}, "change_delay": "0s", "remap_delay": "60s"},
            "clients.0": {"name": "pool", "count": 40, "rate": "2/s", "keepalive": "1h", "stub_cache": {"kind": "forever"}},
            "dns.resolvers.0.count": 10,
        }
    )
    out = simulate(sc, "eip_remap", np.random.SeedSequence(3))
    # before the move: refused while blue is down (a second); after: one reset each
    resets = out.timeline.loc[out.timeline.t >= 90, "refused"].sum()
    assert resets == 40
    assert out.metrics["dns_queries"] == 0  # forever stub: nobody resolves again


def test_blackhole_costs_the_attempt_timeout() -> None:
    sc = scenario(
        **{
            "faults": [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "blackhole"}],
            "clients.0.retry": {"attempts": 1, "timeout": "7s"},
            "clients.0.count": 50,
            "dns.resolvers.0.count": 50,
        }
    )
    rep = Replication(sc, "eip_remap", np.random.SeedSequence(4))
    out = rep.run()
    assert out.timeline.timeout.sum() > 0 and out.timeline.refused.sum() == 0
    # no successful request took as long as the timeout: failed ones are not latencies
    assert max(rep.latencies) < 7.0


def test_retries_hide_a_refused_instance() -> None:
    faults = [{"at": "20s", "kind": "instance_down", "count": 1, "for": "1h", "mode": "refuse"}]
    common = {"faults": faults, "clients.0.count": 100, "dns.resolvers.0.count": 10, "duration": "1m"}
    without = simulate(scenario(**common, **{"backends.retries": 0}), "eip_remap", np.random.SeedSequence(5))
    with_retry = simulate(scenario(**common, **{"backends.retries": 1}), "eip_remap", np.random.SeedSequence(5))
    assert without.metrics["failed"] > 0
    assert with_retry.metrics["failed"] == 0


def test_autoscaling_launches_instances_under_a_spike() -> None:
    sc = scenario(
        **{
            "faults": [{"at": "1m", "kind": "traffic", "factor": 3, "for": "10m"}],
            "clients.0.count": 100,
            "clients.0.rate": "1/s",
            "dns.resolvers.0.count": 10,
            "backends": {"instances": 2, "workers": 10, "service_time": {"exp": "50ms"}, "queue_limit": 50,
                         "autoscaling": {"min": 2, "max": 10, "target_utilization": 0.5, "period": "30s", "launch_delay": "1m"}},
            "duration": "16m",
        }
    )
    rep = Replication(sc, "eip_remap", np.random.SeedSequence(6))
    rep.run()
    during = [n for t, n in rep.fleet if 60 + 60 + 30 <= t <= 11 * 60]
    after = [n for t, n in rep.fleet if t > 11 * 60 + 3 * 30]
    # 300/s x 50 ms = 15 busy workers; at a 50% target that needs 3 instances
    # of 10 (more while the launch delay lets queues build)
    assert min(during) >= 3
    # and once the spike is over the fleet shrinks back towards 2
    assert after[-1] < max(during)


def test_balancer_capacity_sheds_beyond_it() -> None:
    sc = scenario(
        **{
            "faults": [],
            "balancers": [
                {"name": "blue", "role": "active", "nodes": 1, "capacity": "50/s"},
                {"name": "green", "role": "standby", "nodes": 1, "capacity": "50/s"},
            ],
            "clients.0.count": 100,
            "dns.resolvers.0.count": 10,
            "duration": "1m",
        }
    )
    out = simulate(sc, "eip_remap", np.random.SeedSequence(7))
    # 100/s offered to a front of 1 node x 50/s: about half shed
    share = out.metrics["dropped"] / out.metrics["requests"]
    assert 0.4 < share < 0.6


def test_node_scaling_adds_a_node_when_offered_load_passes_capacity() -> None:
    """One node at 10 requests a second, offered 15: a third of the requests are shed
    until the balancer adds a node (checked every 10 s, added 5 s later) and the
    resolvers pick up the new node list (TTL 20 s); then 7.5 a node, almost none shed.
    Scaling once counted admitted requests, which never pass capacity: it never fired."""
    sc = scenario(**{
        "duration": "3m", "faults": [], "strategies": ["cname_repoint"],
        "dns.balancer_ttl": "20s", "dns.resolvers.0.count": 150,
        "clients.0.count": 150, "clients.0.rate": "0.1/s",
        "balancers.0.capacity": "10/s", "balancers.0.scale_delay": "5s",
    })
    out = simulate(sc, "cname_repoint", np.random.SeedSequence(2))
    t = out.timeline
    first, last = t[t["t"] < 10], t[t["t"] >= 120]
    assert first["shed"].sum() / first["requests"].sum() > 0.2
    assert last["shed"].sum() / last["requests"].sum() < 0.1


def _overlap_pair(faults_a: list[dict], faults_b: list[dict]):  # type: ignore[no-untyped-def]
    runs = []
    for faults in (faults_a, faults_b):
        sc = scenario(**{"faults": faults, "dns.service_ttl": "20s", "clients.0.count": 60,
                         "dns.resolvers.0.count": 20})
        runs.append(simulate(sc, "eip_remap", np.random.SeedSequence(4)))
    return runs


def test_two_dns_outages_that_overlap_are_one_from_the_first_start_to_the_last_end() -> None:
    """The end of the first outage once brought the servers back while the second was
    still on: the pair must read as the one outage that covers both, request by request."""
    two, one = _overlap_pair([{"at": "30s", "kind": "dns_down", "for": "60s"},
                              {"at": "60s", "kind": "dns_down", "for": "60s"}],
                             [{"at": "30s", "kind": "dns_down", "for": "90s"}])
    late = two.timeline.t.between(95, 119)
    assert two.timeline.loc[late, "dns_error"].sum() > 0  # still down after the first one's end
    assert two.timeline.dns_error.tolist() == one.timeline.dns_error.tolist()
    assert two.metrics["failed"] == one.metrics["failed"]


def test_two_faults_of_one_balancer_that_overlap_hold_it_down_until_the_last_ends() -> None:
    two, one = _overlap_pair(
        [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "20s"},
         {"at": "40s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "20s"}],
        [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "30s"}])
    assert two.timeline.refused.tolist() == one.timeline.refused.tolist()
    assert two.metrics["failed"] == one.metrics["failed"]
    # recovery from the start of the one outage: the second fault's start is no new moment
    # a client's failure counts from (Scenario.fault_times)
    assert two.clients.recovery_s.fillna(-1).tolist() == one.clients.recovery_s.fillna(-1).tolist()
    nested, single = _overlap_pair(
        [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "60s"},
         {"at": "40s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "10s"}],
        [{"at": "30s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "60s"}])
    assert nested.clients.recovery_s.fillna(-1).tolist() == single.clients.recovery_s.fillna(-1).tolist()


def test_the_latest_fault_on_holds_its_mode_when_one_of_the_same_mode_ends_first() -> None:
    """refuse 30-90 s, blackhole 40-80 s, refuse 50-60 s: when the third ends, the blackhole
    (the latest still on) holds until 80 s, then the first refusal until 90 s."""
    down = {"kind": "balancer_down", "target": "blue"}
    sc = scenario(**{"faults": [{**down, "at": "30s", "for": "60s", "mode": "refuse"},
                                {**down, "at": "40s", "for": "40s", "mode": "blackhole"},
                                {**down, "at": "50s", "for": "10s", "mode": "refuse"}],
                     "failover": {"detection": {"delay": "200s"}}, "clients.0.count": 60,
                     "dns.resolvers.0.count": 20, "duration": "2m"})
    t = simulate(sc, "cname_repoint", np.random.SeedSequence(4)).timeline.set_index("t")
    assert t.loc[51:59, "refused"].sum() > 0 and t.loc[51:59, "timeout"].sum() == 0
    assert t.loc[61:79, "timeout"].sum() > 0 and t.loc[61:79, "refused"].sum() == 0
    assert t.loc[81:89, "refused"].sum() > 0 and t.loc[81:89, "timeout"].sum() == 0
