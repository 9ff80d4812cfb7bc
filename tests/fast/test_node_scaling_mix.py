"""Node scaling behind a name with the populations' clients and the faults around a change: the
fast engine against the model (sim.fast.scaling; tests/fast/test_node_scaling.py holds the
mechanism's first cases and the surge used here).

Stubs kept `forever` (resolve-once proxies), restarts, `extend` and `serve_stale` stubs are
followed answer by answer as the other stubs (sim.fast.scaling._Together): a `forever` stub
holds the node it was primed on until its process restarts, a restart empties the stub and
closes the connection, so the first request after it asks. Faults: from the active
balancer's first fault with no end its nodes meet no request, so a `dns_down` or a fault of
the standby after it leaves them alone, and a planned change followed by switching the old
balancer off is the planned change until then; a fault of the standby that ends before the
first change meets nobody (every client is on the active).
"""

from __future__ import annotations

import pytest

from sim.fast import unsupported
from tests.fast.test_agreement import assert_agree, assert_drain_agree
from tests.fast.test_node_scaling import FAULTS, SCALING
from tests.fast.test_pooled_planned import CHANGE as PLANNED_OFF
from tests.fast.test_pooled_planned import POOLED as PLANNED_POOLED
from tests.model.scenarios import scenario

RESTART = {"every": {"exp": "60s"}}  # a restart a minute: many in a 3 min run
FOREVER = {"kind": "forever"}
STUBS = {
    "forever": {"clients.0.stub_cache": FOREVER},
    "forever, restarts": {"clients.0.stub_cache": FOREVER, "clients.0.restart": RESTART},
    "forever, restarts, pooled": {"clients.0.stub_cache": FOREVER, "clients.0.restart": RESTART,
                                  "clients.0.keepalive": "60s"},
    "fixed 30 s, restarts": {"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}, "clients.0.restart": RESTART},
    "extend": {"clients.0.stub_cache": {"kind": "extend", "extra": {"exp": "30s"}}},
    "serve_stale": {"clients.0.stub_cache": {"kind": "serve_stale"}},
}
# The resolvers' queries under the surge with restarts or extended stubs are apart with no
# scaling too (model / fast, 6 replications: fixed 30 s with restarts 783 / 677, extend 558 /
# 499, forever with restarts and pooled connections 447 / 352): not this mechanism's.
SKIP = {"forever, restarts": ("dns_queries",), "forever, restarts, pooled": ("dns_queries",),
        "fixed 30 s, restarts": ("dns_queries",), "extend": ("dns_queries",)}
# With no DNS outage a serve_stale stub is an honouring one (the model's runs are the same);
# behind a CNAME the recovery of honouring stubs drifts apart with more replications (4.04 s /
# 4.76 s, 4.9 SE, at 12), as in test_fast_agrees_on_node_scaling_with_stub_caches: not this case's.
SKIP_CNAME = {"serve_stale": ("recovery_mean",)}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("stub", list(STUBS))
def test_fast_agrees_on_node_scaling_with_stubs_kept_forever_restarted_or_extended(stub: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, **STUBS[stub], "strategies": [strategy]})
    assert not unsupported(sc)
    skip = SKIP.get(stub, ()) + (SKIP_CNAME.get(stub, ()) if strategy == "cname_repoint" else ())
    assert_agree(sc, strategy, reps=6, skip=skip)


def test_forever_stubs_that_restart_take_the_new_nodes() -> None:
    # Quick (not slow): with a restart a minute the proxies fetch the new nodes (model 19,048
    # dropped, 6 replications); held on their first nodes, as if the restarts were not
    # followed, they drop 28,700 (the model's with no restarts).
    sc = scenario(**{**SCALING, **STUBS["forever, restarts"], "strategies": ["alias_apex"]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=3, skip=("dns_queries",))


CHANGE_AT = {"at": "80s", "kind": "dns_change"}
OFF = {"at": "130s", "kind": "balancer_down", "target": "blue", "mode": "refuse"}
LATER = {
    "a planned change, the old balancer switched off": {"faults": [*SCALING["faults"], CHANGE_AT, OFF],
                                                       "report": {"stale_at": ["20s", "40s"]}},
    "the same with honouring stubs": {"faults": [*SCALING["faults"], CHANGE_AT, OFF],
                                      "clients.0.stub_cache": {"kind": "honor"},
                                      "report": {"stale_at": ["20s", "40s"]}},
    "the active down, then a dns_down": {"faults": [*SCALING["faults"], FAULTS["refusing for the rest of the run"],
                                                    {"at": "120s", "kind": "dns_down", "for": "30s"}]},
    "the active blackholed, then a planned change": {"faults": [*SCALING["faults"], FAULTS["blackholed"],
                                                                 {"at": "120s", "kind": "dns_change"}]},
    "the standby down for 30 s, then the active for good": {
        "faults": [*SCALING["faults"], {"at": "50s", "kind": "balancer_down", "target": "green", "mode": "refuse",
                                        "for": "30s"}, FAULTS["refusing for the rest of the run"]]},
    "the standby down for 20 s, then a planned change, honouring stubs": {
        "clients.0.stub_cache": {"kind": "honor"},
        "faults": [*SCALING["faults"], {"at": "50s", "kind": "balancer_down", "target": "green", "mode": "refuse",
                                        "for": "20s"}, CHANGE_AT]},
    "the active down, then the standby for 20 s": {
        "faults": [*SCALING["faults"], FAULTS["refusing for the rest of the run"],
                   {"at": "120s", "kind": "balancer_down", "target": "green", "mode": "refuse", "for": "20s"}]},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("case", list(LATER))
def test_fast_agrees_on_node_scaling_through_faults_after_a_change(case: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, **LATER[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6, also=("refused", "dns_error"))
    if sc.report.stale_at:
        assert_drain_agree(sc, strategy, 6, sc.report.stale_at)


def test_a_planned_change_and_the_switch_off_shed_as_the_model() -> None:
    # Quick (not slow): 3 replications of the planned change with the old balancer off.
    sc = scenario(**{**SCALING, **LATER["a planned change, the old balancer switched off"],
                     "strategies": ["alias_apex"]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=3, also=("refused",))


# Pooled connections through a planned change: a client moves to the standby when it opens a
# connection with its resolver's new answer (sim.fast.scaling._Together with the change's Move).
# tests/fast/test_pooled_planned.py's clients (1000 every 20 s, keepalive 30 s, age 3 min, ten
# on each resolver, blue off at 4 min) on two nodes of 20/s, a twofold surge from 30 s to 180 s.
# Apart with no scaling too (sim.fast.pooled, docs/fast.md), so not compared: the clients
# affected (model / fast, 4 replications, alias_apex: 971 / 997 with no scaling, 945 / 978
# with), the resolvers' queries under the surge (511 / 562, 511 / 556) and, with honouring
# stubs, the requests to the old balancer (9,530 / 9,168 with and without: the same runs);
# drain_s.mean is unbounded where one client sends nothing after the change (as in
# test_pooled_planned). With one client a resolver, which
# the fast engine does not couple to the pooled client's opens, and requests every second on a
# 60 s keepalive and age limit, the drain is apart with no scaling too (never switched in the
# run's 100 s after the change: 6% in the model, 10% here).
POOLED_CHANGE = {
    "no stub cache": {**PLANNED_POOLED, "balancers.0.nodes": 2, "balancers.0.capacity": "20/s",
                      "balancers.0.scale_delay": "30s",
                      "faults": [*PLANNED_OFF, {"at": "30s", "kind": "traffic", "factor": 2.0, "for": "150s"}]},
}
POOLED_CHANGE["honouring stubs"] = {**POOLED_CHANGE["no stub cache"], "clients.0.stub_cache": {"kind": "honor"}}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("case", list(POOLED_CHANGE))
def test_fast_agrees_on_node_scaling_with_pooled_connections_through_a_planned_change(case: str, strategy: str) -> None:
    sc = scenario(**{**POOLED_CHANGE[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_drain_agree(sc, strategy, 4, sc.report.stale_at, skip=("drain_s.mean", "previous_requests"))
    assert_agree(sc, strategy, 4, skip=("clients_affected", "dns_queries"), also=("refused",))


def test_what_stays_refused_with_node_scaling_is_named() -> None:
    fine = [scenario(**{**SCALING, **case, "strategies": ["cname_repoint"]}) for case in (*STUBS.values(), *LATER.values())]
    fine += [scenario(**{**case, "strategies": ["cname_repoint"]}) for case in POOLED_CHANGE.values()]
    assert not any(unsupported(sc) for sc in fine)
    # Two faults before the active's fault for good: a dns_down, then the planned change.
    two = scenario(**{**SCALING, "strategies": ["alias_apex"],
                      "faults": [*SCALING["faults"], {"at": "70s", "kind": "dns_down", "for": "20s"}, CHANGE_AT, OFF]})
    reasons = unsupported(two)
    assert {r.split("faults[")[1][0] for r in reasons if "scale_delay" in r} == {"1", "2"}, reasons
    # A fault of the active that ends, then one for good: refused (the two before the second).
    back = scenario(**{**SCALING, "strategies": ["alias_apex"],
                       "faults": [*SCALING["faults"], FAULTS["refusing for 40 s"],
                                  {**OFF, "at": "150s"}]})
    assert any("balancers[0].scale_delay" in r and "faults[1]" in r for r in unsupported(back))
    # A fault of the standby that ends before the first change meets nobody (every client is on
    # the active); one that lasts past it is refused.
    standby = {**SCALING, "strategies": ["alias_apex"]}
    alone = [*SCALING["faults"], {**OFF, "target": "green", "for": "20s"}]
    assert not unsupported(scenario(**{**standby, "faults": alone}))
    across = [*SCALING["faults"], {**OFF, "at": "70s", "target": "green", "for": "20s"}, CHANGE_AT]
    assert any("balancers[0].scale_delay" in r and "faults[1]" in r for r in unsupported(scenario(**{**standby, "faults": across})))
    # Sessions are not followed.
    sessions = scenario(**{**SCALING, "strategies": ["alias_apex"],
                           "clients.0.sessions": {"requests": {"exp": 1.477}, "think": {"exp": "20s"}, "gap": "1m"},
                           "clients.0.rate": None})
    assert any("clients[0].sessions" in r for r in unsupported(sessions))


# Our DNS down in the surge, before any change: a resolver cannot fetch our zone's records in
# it (behind an alias the nodes' list, behind a CNAME the CNAME), so its clients keep their
# nodes or fail to resolve, on no node, until their first request after it.
OUTAGE = {"at": "70s", "kind": "dns_down", "for": "30s"}
DNS_DOWN = {
    "no stub cache": {"faults": [*SCALING["faults"], OUTAGE]},
    "honouring stubs": {"faults": [*SCALING["faults"], OUTAGE], "clients.0.stub_cache": {"kind": "honor"}},
    "floor 90 s stubs": {"faults": [*SCALING["faults"], OUTAGE],
                         "clients.0.stub_cache": {"kind": "floor", "min_ttl": "90s"}},
    "then the active down for good": {"faults": [*SCALING["faults"], {**OUTAGE, "at": "50s"},
                                                 FAULTS["refusing for the rest of the run"]]},
}
# The resolvers' queries through a dns_down, not compared: with floor stubs apart with no
# scaling and no shedding too (model / fast, alias_apex, 6 replications: 490 / 383); with no
# stub cache or honouring ones 887 / 900 (3.4 to 4.2 SE), 887 / 893 with no scaling (1.4 SE;
# the dns stream is drawn at another point). The failed lookups, apart with no scaling too
# (4,487 / 4,949, 4.4 SE), are not in the summary metrics compared.
SKIP_DNS_DOWN = {"floor 90 s stubs": ("dns_queries",), "no stub cache": ("dns_queries",),
                 "honouring stubs": ("dns_queries",)}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("case", list(DNS_DOWN))
def test_fast_agrees_on_node_scaling_through_a_dns_down(case: str, strategy: str) -> None:
    sc = scenario(**{**SCALING, **DNS_DOWN[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6, skip=SKIP_DNS_DOWN.get(case, ()))


# The standby scaling after the failover (the active down at 30 s, the surge on the standby):
# a client is on the standby from its first answer fetched after the change, and meets the
# nodes of that answer (sim.fast.scaling.held_shares, `arriving`). The active not scaled.
STANDBY = {**SCALING, "balancers.0.scale_delay": None, "balancers.0.capacity": "1000/s",
           "balancers.1.nodes": 2, "balancers.1.capacity": "120/s", "balancers.1.scale_delay": "30s",
           "faults": [*SCALING["faults"], {**FAULTS["refusing for the rest of the run"], "at": "30s"}]}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("stub", ["none", "honor"])
def test_fast_agrees_on_the_standby_scaling_after_the_failover(stub: str, strategy: str) -> None:
    sc = scenario(**{**STANDBY, "clients.0.stub_cache": {"kind": stub}, "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, reps=6, also=("refused",))


def test_the_standby_scaling_is_followed_through_the_failover_only() -> None:
    assert not unsupported(scenario(**{**STANDBY, "strategies": ["alias_apex"]}))
    # Through a planned change the fast engine shed more on the arriving standby (alias_apex,
    # change at 80 s, 6 replications: 1,844 dropped in the model, 2,102 here, 4.7 SE).
    change = scenario(**{**STANDBY, "faults": [*SCALING["faults"], CHANGE_AT], "strategies": ["alias_apex"]})
    assert any("balancers[1].scale_delay" in r and "faults[1]" in r for r in unsupported(change))
    # Both balancers scaling: refused.
    both = scenario(**{**STANDBY, "balancers.0.scale_delay": "30s", "strategies": ["alias_apex"]})
    assert any("balancers[1].scale_delay" in r for r in unsupported(both))


def test_a_dns_down_with_no_change_sheds_on_the_active() -> None:
    # Quick (not slow): our DNS down from 70 s for 30 s in the surge, two nodes of 120/s, no
    # scaling, no change: every client stays on the active. The engine took the outage
    # window's first request after it as a move to the standby, and so shed nothing from the
    # outage's end (model 24,166 dropped, fast 13,086, 4 replications; now 23,829).
    sc = scenario(**{**SCALING, "balancers.0.scale_delay": None, "strategies": ["alias_apex"],
                     "faults": [*SCALING["faults"], {"at": "70s", "kind": "dns_down", "for": "30s"}]})
    assert not unsupported(sc)
    assert_agree(sc, "alias_apex", reps=3)
