"""Balancer node scaling (`scale_delay`) behind static addresses and behind names: the fast engine against the model."""

from __future__ import annotations

import numpy as np
import pytest

from sim.fast import unsupported
from sim.fast.load import nodes_over_time
from sim.scenario.units import Constant
from tests.fast.test_agreement import SMALL, assert_agree
from tests.model.scenarios import scenario

# 300 clients at 1/s on two nodes of 120/s: 150 a node, so a third node joins 30 s after the
# first check (10 s); a traffic surge to 600/s then wants a fourth and a fifth.
SCALING = {**SMALL, "balancers.0.nodes": 2, "balancers.0.capacity": "120/s", "balancers.0.scale_delay": "30s",
           "faults": [{"at": "60s", "kind": "traffic", "factor": 2.0, "for": "60s"}]}
CASES = {
    "a constant delay, a surge": {},
    "a random delay, a surge": {"balancers.0.scale_delay": {"exp": "20s"}},
    "a balancer fault: the standby scales after the move": {
        "balancers.1.nodes": 2, "balancers.1.capacity": "120/s", "balancers.1.scale_delay": "30s",
        "faults": [{"at": "60s", "kind": "balancer_down", "target": "blue"}]},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["eip_remap", "anycast"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_agrees_on_node_scaling_behind_static_addresses(case: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, **CASES[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy)


def test_node_scaling_sheds_as_the_model_does() -> None:
    # Quick (not slow): the requests shed before the new nodes join, 2 replications.
    from sim.fast import simulate as fast
    from sim.model import simulate as des

    sc = scenario(**{**SCALING, "clients.0.count": 200, "dns.resolvers.0.count": 200, "balancers.0.capacity": "80/s",
                     "duration": "100s", "strategies": ["eip_remap"]})
    runs = {name: [engine(sc, "eip_remap", np.random.SeedSequence([3, k]), k).metrics for k in range(2)]
            for name, engine in (("model", des), ("fast", fast))}
    dropped = {name: np.mean([m["dropped"] for m in ms]) for name, ms in runs.items()}
    # 200/s on 160 until a node joins at 40 s: about 40 x 40 = 1,600; then 400/s on 240 and
    # 320 before the next ones.
    assert dropped["model"] > 1000
    assert abs(dropped["fast"] - dropped["model"]) < 0.1 * dropped["model"], dropped
    # Each shed request is a client's failure (from the surge, the scenario's first fault, on).
    affected = {name: np.mean([m["clients_affected"] for m in ms]) for name, ms in runs.items()}
    assert affected["model"] > 100
    assert abs(affected["fast"] - affected["model"]) < 0.1 * affected["model"], affected


def test_nodes_join_as_the_models_checks_decide() -> None:
    # 300 a second on two nodes of 120 (150 a node): the check at 10 s adds one, 30 s later;
    # 200 a second (100 a node) adds none.
    offered = np.full(120, 300)
    nodes = nodes_over_time(offered, 2, 120.0, Constant(30.0), np.random.default_rng(0))
    assert nodes[39] == 2 and nodes[40] == 3  # decided at 10 s, joined at 40 s
    assert nodes[-1] == 3  # 100 a node: no more
    low = nodes_over_time(np.full(120, 200), 2, 120.0, Constant(30.0), np.random.default_rng(0))
    assert np.all(low == 2)


# Behind a name that resolves to the nodes (no stub cache: every request asks the resolver),
# a new node meets only the requests of clients whose resolver fetched the balancer's records
# after it joined; the old nodes shed the rest. A 300 s balancer TTL leaves most clients on
# the old nodes through the surge.
NAMED = {"a 60 s balancer TTL": {}, "a 300 s balancer TTL": {"dns.balancer_ttl": "300s"}}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("case", list(NAMED))
def test_fast_agrees_on_node_scaling_behind_a_name(case: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, **NAMED[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6)


def test_a_new_node_takes_load_as_resolvers_refetch() -> None:
    # One client at 1/s on each of 2,000 honoring resolvers with a 60 s TTL: a resolver holds
    # the record (60 of every 61 s) until it runs out, uniformly over the 60 s after the join,
    # and its client's next request (Exp(1) later) then lists the third node; a resolver
    # without it fetches at that next request. So y s after the join the share of clients that
    # hold the new answer is 60/61 (y - 1 + e^-y) / 60 + 1/61 (1 - e^-y), a third of it on the
    # new node; all of it from 61 s on (a request Exp(1) after 60 s, most of them).
    from sim.fast.intensity import Intensity
    from sim.fast.population import population, resolver_query_rate
    from sim.fast.scaling import node_shares, reaches
    from sim.scenario import build

    sc = scenario(**{"clients.0.count": 2000, "dns.resolvers.0.count": 2000, "duration": "3m", "faults": [],
                     "strategies": ["alias_apex"]})
    rng = np.random.default_rng(5)
    pop = population(build.compile(sc, "alias_apex"), rng)
    q = resolver_query_rate(pop, 60.0, rng)
    joined = reaches(pop, Intensity(sc), q, [40.0], 60.0, rng)
    shares = node_shares(2, joined, pop.rate, 180)
    assert np.allclose(shares.sum(axis=1), 1.0)
    for x in (5, 20, 40, 55):
        y = x + 0.5  # the middle of the second
        expected = (60 / 61 * (y - 1 + np.exp(-y)) / 60 + (1 - np.exp(-y)) / 61) / 3
        assert abs(shares[40 + x, 2] - expected) < 0.012, (x, shares[40 + x, 2], expected)
    assert np.allclose(shares[110:, 2], 1 / 3, atol=0.005)
    assert np.all(shares[:40, 2] == 0.0)


def test_node_scaling_is_refused_where_the_name_resolves_to_the_nodes() -> None:
    sc = scenario(**{"balancers.0.scale_delay": "30s", "strategies": ["cname_repoint", "eip_remap", "multi_a"],
                     "faults": [{"at": "10s", "kind": "balancer_down", "target": "green"}]})
    reasons = unsupported(sc)
    # With a fault of the standby (followed with one fault, of the active balancer, only).
    assert any("cname_repoint" in r and "balancers[0].scale_delay" in r and "faults[0]" in r for r in reasons)
    # One address per balancer leads to its front.
    assert any("multi_a" in r and "balancers[0].scale_delay" in r for r in reasons)
    assert not unsupported(sc, ["eip_remap"])
    surge = scenario(**{**SCALING, "strategies": ["cname_repoint", "alias_apex"]})
    assert not unsupported(surge)
    # Stubs that hold answers are followed answer by answer (sim.fast.scaling.STUBS).
    for kind in ("honor", "floor", "fixed", "cap"):
        assert not unsupported(scenario(**{**SCALING, "clients.0.stub_cache": STUB_CACHES[kind],
                                           "strategies": ["alias_apex"]}))
    # Kept forever, extended or serving stale too (tests/fast/test_node_scaling_mix.py).
    stub = scenario(**{**SCALING, "clients.0.stub_cache": {"kind": "forever"}, "strategies": ["alias_apex"]})
    assert not unsupported(stub)


# Stub caches: a client sends every request of an answer it holds to one node, position
# (rotation) of it, its rotation one on at each answer kept (sim.model.requests). Primed
# alike, the clients' counts of answers stay close, so after a join the new position takes
# the clients whose count lands on it (sim.fast.scaling.held_shares).
STUB_CACHES = {"honor": {"kind": "honor"}, "floor": {"kind": "floor", "min_ttl": "90s"},
               "fixed": {"kind": "fixed", "ttl": "30s"}, "cap": {"kind": "cap", "max_ttl": "20s"}}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("stub", list(STUB_CACHES))
def test_fast_agrees_on_node_scaling_with_stub_caches(stub: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, "clients.0.stub_cache": STUB_CACHES[stub], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6)


def test_stub_caches_load_the_new_node_as_the_model_does() -> None:
    # Quick (not slow): honouring stubs behind an alias, 3 replications of the surge. Taken as
    # requests without stubs (1/k of each client's requests on each of k nodes) the fast
    # engine dropped 20,403 against the model's 17,020 (6 replications): the model's clients
    # that fetched the new nodes first mostly hold the same position, which is not the new one.
    from sim.fast import simulate as fast
    from sim.model import simulate as des

    sc = scenario(**{**SCALING, "clients.0.stub_cache": {"kind": "honor"}, "strategies": ["alias_apex"]})
    dropped = {name: np.array([engine(sc, "alias_apex", np.random.SeedSequence([11, k]), k).metrics["dropped"]
                               for k in range(3)], dtype=float) for name, engine in (("model", des), ("fast", fast))}
    se = np.sqrt(sum(np.var(d, ddof=1) / len(d) for d in dropped.values()))
    gap = abs(dropped["fast"].mean() - dropped["model"].mean())
    assert gap < max(4 * se, 0.03 * dropped["model"].mean()), dropped


# A planned DNS change away from the scaled active balancer (to the standby, not scaled): the
# answers fetched from the change on hold the standby, and the active's nodes share the load
# of the clients still on it (sim.fast.churn.Move, as churn follows the change).
CHANGE = {**SCALING, "faults": [*SCALING["faults"], {"at": "80s", "kind": "dns_change"}]}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("stub", ["none", "honor"])
def test_fast_agrees_on_node_scaling_through_a_planned_change(stub: str, strategy: str) -> None:
    sc = scenario(**{**CHANGE, "clients.0.stub_cache": {"kind": stub}, "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6)


def test_a_planned_change_is_followed_only_away_from_the_scaled_balancer() -> None:
    assert not unsupported(scenario(**{**CHANGE, "strategies": ["alias_apex"]}))
    # The standby scaling too: its nodes' answers are not followed.
    both = scenario(**{**CHANGE, "balancers.1.scale_delay": "30s", "strategies": ["alias_apex"]})
    assert any("balancers[1].scale_delay" in r and "faults[1]" in r for r in unsupported(both))
    assert not any("balancers[0].scale_delay" in r for r in unsupported(both))


# One fault of the scaled active balancer: its nodes refuse (or drop) every request in the
# engine's window, and the failover's DNS change moves clients to the standby (not scaled),
# followed as the planned change is.
FAULTS = {
    "refusing for the rest of the run": {"at": "90s", "kind": "balancer_down", "target": "blue", "mode": "refuse"},
    "refusing for 40 s": {"at": "90s", "kind": "balancer_down", "target": "blue", "mode": "refuse", "for": "40s"},
    "blackholed": {"at": "90s", "kind": "balancer_down", "target": "blue", "mode": "blackhole"},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fast_agrees_on_node_scaling_through_a_fault_of_the_active(fault: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, "faults": [*SCALING["faults"], FAULTS[fault]], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6)


@pytest.mark.slow
@pytest.mark.parametrize("stub", ["honor", "floor"])
def test_fast_agrees_on_node_scaling_with_stubs_through_a_fault_that_ends(stub: str) -> None:
    sc = scenario(**{**SCALING, "faults": [*SCALING["faults"], FAULTS["refusing for 40 s"]],
                     "clients.0.stub_cache": STUB_CACHES[stub], "strategies": ["alias_apex"]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=6)


def test_a_fault_is_followed_only_of_the_scaled_active_and_alone() -> None:
    fault = {**SCALING, "faults": [*SCALING["faults"], FAULTS["blackholed"]], "strategies": ["alias_apex"]}
    assert not unsupported(scenario(**fault))
    # After a fault for good the active's nodes meet no request: a change later is followed
    # (tests/fast/test_node_scaling_mix.py), and so is a DNS outage alone. With a fault that
    # ends and a planned change, or a DNS outage: refused, the fields named.
    assert not unsupported(scenario(**{**fault, "faults": [*fault["faults"], {"at": "120s", "kind": "dns_change"}]}))
    ends = [*SCALING["faults"], FAULTS["refusing for 40 s"]]
    both = scenario(**{**fault, "faults": [*ends, {"at": "120s", "kind": "dns_change"}]})
    assert any("balancers[0].scale_delay" in r and "faults[2]" in r for r in unsupported(both))
    down = {"at": "90s", "kind": "dns_down", "for": "30s"}
    assert not unsupported(scenario(**{**SCALING, "faults": [*SCALING["faults"], down], "strategies": ["alias_apex"]}))
    outage = scenario(**{**SCALING, "faults": [*ends, down], "strategies": ["alias_apex"]})
    assert any("balancers[0].scale_delay" in r and "faults[2]" in r for r in unsupported(outage))


# Pooled connections (keepalive): a request on an open connection goes to its node; one that
# opens a connection goes through the stub, so a client moves to a new node only when it
# opens a connection with a new answer (sim.fast.scaling._Together._next_query).
POOLED = {
    "an age limit of 60 s, no stub cache": {"clients.0.keepalive": "60s", "clients.0.max_connection_age": "60s"},
    "an age limit of 60 s, honouring stubs": {"clients.0.keepalive": "60s", "clients.0.max_connection_age": "60s",
                                              "clients.0.stub_cache": {"kind": "honor"}},
    "an age limit of 30 s, floor stubs": {"clients.0.keepalive": "60s", "clients.0.max_connection_age": "30s",
                                          "clients.0.stub_cache": {"kind": "floor", "min_ttl": "90s"}},
    "no age limit": {"clients.0.keepalive": "60s"},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(POOLED))
def test_fast_agrees_on_node_scaling_with_pooled_connections(case: str) -> None:
    sc = scenario(**{**SCALING, **POOLED[case], "strategies": ["alias_apex"]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=6)


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fast_agrees_on_node_scaling_with_pooled_connections_through_a_fault(fault: str) -> None:
    sc = scenario(**{**SCALING, **POOLED["an age limit of 60 s, no stub cache"],
                     "faults": [*SCALING["faults"], FAULTS[fault]], "strategies": ["alias_apex"]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=6)


def test_pooled_connections_are_followed_through_faults_and_changes() -> None:
    pooled = {**SCALING, **POOLED["no age limit"], "strategies": ["cname_repoint"]}
    assert not unsupported(scenario(**pooled))
    assert not unsupported(scenario(**{**pooled, "faults": [*SCALING["faults"], FAULTS["blackholed"]]}))
    # Through a planned change too (tests/fast/test_node_scaling_mix.py).
    change = scenario(**{**pooled, "faults": [*SCALING["faults"], {"at": "80s", "kind": "dns_change"}]})
    assert not unsupported(change)
