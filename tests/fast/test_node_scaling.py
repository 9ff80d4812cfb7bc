"""Balancer node scaling (`scale_delay`) behind static addresses: the fast engine against the model."""

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


def test_node_scaling_is_refused_where_the_name_resolves_to_the_nodes() -> None:
    sc = scenario(**{"balancers.0.scale_delay": "30s", "strategies": ["cname_repoint", "eip_remap", "multi_a"]})
    reasons = unsupported(sc)
    assert any("cname_repoint" in r and "balancers[0].scale_delay" in r for r in reasons)
    assert any("multi_a" in r and "balancers[0].scale_delay" in r for r in reasons)
    assert not unsupported(sc, ["eip_remap"])
