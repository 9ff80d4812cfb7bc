"""Pooled connections (keep-alive) through a balancer fault, against the model (issue 17).

A pooled client asks its resolver only when it opens a connection, so before
the fault its resolver is mostly empty; from the fault on every request breaks
its connection and looks the name up, so most resolvers fetch at their client's
first failure and hold the old answer a whole TTL from there
(sim.fast.pooled_fault). Once the fault ends, a client whose answer has not
turned opens a connection to the old balancer and keeps it to its age limit
(sim.fast.pooled.reopened_after). Before the fix (the resolvers drawn from steady state
at the change at the outage's query rate): failed 11,738 against the model's
11,997, recovery mean 39.9 s against 40.9 s (22 standard errors), switches at
99.9 s against the model's stay on the old balancer to the run's end.
"""

from __future__ import annotations

import pytest

from sim.fast import unsupported
from tests.fast.test_agreement import SMALL, assert_agree, assert_drain_agree
from tests.fast.test_churn import BACK, BY_REQUEST, OUTAGE, STRETCH
from tests.model.scenarios import scenario

MARK = {"at": "5s", "kind": "traffic", "factor": 1.0, "for": "1s"}  # failures counted from here
POOLED = {**SMALL, "clients.0.stub_cache": {"kind": "honor"}, "clients.0.keepalive": "60s",
          "clients.0.max_connection_age": "2m"}
CASES = {
    "refusing from 40 s for 40 s": {
        "faults": [MARK, {"at": "40s", "kind": "balancer_down", "target": "blue", "for": "40s"}]},
    "refusing from 40 s for 40 s, past the connections' age (6 min)": {
        "faults": [MARK, {"at": "40s", "kind": "balancer_down", "target": "blue", "for": "40s"}], "duration": "6m"},
    "no stub cache, a retry, refusing from 40 s for 60 s": {
        "clients.0.stub_cache": {"kind": "none"}, "clients.0.retry": {"attempts": 2, "timeout": "5s"},
        "faults": [MARK, {"at": "40s", "kind": "balancer_down", "target": "blue", "for": "60s"}]},
    "refusing from 10 s to the end, no age limit": {
        "clients.0.stub_cache": {"kind": "none"}, "clients.0.max_connection_age": "1000h",
        "faults": [{"at": "10s", "kind": "balancer_down", "target": "blue"}]},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex", "dns_failover"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_agrees_on_pooled_connections_through_a_balancer_fault(case: str, strategy: str) -> None:
    sc = scenario(**{**POOLED, **CASES[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, also=("refused",))
    if "6 min" in case and strategy != "dns_failover":  # dns_failover sends nothing to the old balancer
        assert_drain_agree(sc, strategy, 4, [30.0, 60.0])


# Our authoritative servers down from 30 s for 60 s, no balancer fault: a pooled connection
# carries requests through the outage with no lookup; its client fails from its first request
# that opens a connection once its resolver's answer ran out, until the outage ends.
OUTAGE_CASES = {
    "honouring stubs": {"faults": [{"at": "30s", "kind": "dns_down", "for": "60s"}]},
    "no stub cache, a 30 s TTL, a retry": {
        "faults": [{"at": "30s", "kind": "dns_down", "for": "60s"}], "clients.0.stub_cache": {"kind": "none"},
        "dns.service_ttl": "30s", "dns.balancer_ttl": "30s", "clients.0.retry": {"attempts": 2, "timeout": "5s"}},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
@pytest.mark.parametrize("case", list(OUTAGE_CASES))
def test_fast_agrees_on_pooled_connections_through_a_dns_outage(case: str, strategy: str) -> None:
    sc = scenario(**{**POOLED, **OUTAGE_CASES[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, also=("dns_error",))


# Node churn on the active balancer behind a name (tests/fast/test_churn.py's setting: two
# nodes replaced every 60 s, 20 s of drain, a 10 s TTL on the nodes' records; thirty resolvers
# of ten clients), pooled connections followed request by request (sim.fast.churn_requests),
# through the churned balancer refusing from 40 s for 40 s and through our DNS down from 40 s
# for 40 s. Under the outage a pooled client fails from its first lookup in vain: its
# connection dropped by a retired node, its age or an idle gap, and behind a CNAME only once
# the CNAME ran out (the nodes' records are the provider's).
POOLED_CHURN = {"clients.0.keepalive": "60s", "clients.0.max_connection_age": "2m"}
CHURN_CASES = {
    "honouring stubs, the balancer refusing for 40 s": {
        **BACK, **POOLED_CHURN, "clients.0.stub_cache": {"kind": "honor"}},
    "honouring stubs, TTL stretching resolvers, the balancer refusing for 40 s": {
        **BACK, **STRETCH, **POOLED_CHURN, "clients.0.stub_cache": {"kind": "honor"}},
    "fixed stubs, three nodes, a retry, the balancer refusing for 40 s": {
        **BACK, **STRETCH, **POOLED_CHURN, "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
        "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "balancers.0.nodes": 3},
    "honouring stubs, our DNS down for 40 s": {
        **OUTAGE, **POOLED_CHURN, "clients.0.stub_cache": {"kind": "honor"}},
    "fixed stubs, three nodes, a retry, our DNS down for 40 s": {
        **OUTAGE, **STRETCH, **POOLED_CHURN, "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
        "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "balancers.0.nodes": 3},
}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex", "dns_failover"])
@pytest.mark.parametrize("case", list(CHURN_CASES))
def test_fast_agrees_on_pooled_connections_through_churn_and_a_fault(case: str, strategy: str) -> None:
    sc = scenario(**{**BY_REQUEST, **CHURN_CASES[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_agree(sc, strategy, also=("refused", "dns_error", "rescued"))
