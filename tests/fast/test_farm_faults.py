"""Clients followed request by request (sim.fast.lookups: Poisson clients behind a resolver
farm, browsing sessions) through the faults the follower meets in their requests, against
the model: a planned `dns_change` or `address_move` (a first attempt from the change on goes
to the previous target or the current one, per the answer or the address it used), several
balancer faults that refuse (a try to the active or the standby inside one of its faults
fails), a blackholed balancer (a try known failed after the client's timeout, its retry
then), and a `dns_down` (a lookup that needs our authoritative servers while they are down
fails, unless the resolver serves the expired answer). The metrics each case moves:
availability, affected clients and recovery (tests.fast.test_agreement.assert_agree), the
drain, stale shares and the clients that went back to the old answer
(tests.fast.test_farms.assert_drain_agrees).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from sim.fast import simulate as fast
from sim.fast import unsupported
from sim.model import simulate as des
from tests.fast.test_agreement import assert_agree
from tests.fast.test_farms import assert_drain_agrees
from tests.model.scenarios import scenario

# A farm of four caches, half the picks sticky, 3 clients a resolver at 0.2/s: each cache
# holds the old answer at the change and a client meets old and new ones until the last turns.
FARM = {"clients.0.count": 300, "duration": "3m", "dns.resolvers.0.count": 100, "dns.resolvers.0.caches": 4,
        "dns.resolvers.0.sticky": 0.5, "clients.0.rate": "0.2/s"}
PLANNED = [{"at": "30s", "kind": "dns_change"}]
BROWSING = {"name": "web", "count": 300, "sessions": {"requests": {"exp": 10}, "think": {"exp": "5s"}, "gap": {"exp": "60s"}},
            "stub_cache": {"kind": "floor", "min_ttl": "60s"}, "retry": {"attempts": 1, "timeout": "10s"}}
MIXED = [{"name": "api", "count": 150, "rate": "0.2/s", "stub_cache": {"kind": "none"},
          "retry": {"attempts": 1, "timeout": "10s"}}, BROWSING]


def _down(target: str, at: str, for_: str | None = None) -> dict[str, str]:
    return {"at": at, "kind": "balancer_down", "target": target, **({} if for_ is None else {"for": for_})}


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # planned changes (the old balancer serves on: no failure, only where requests go)
    "farm, 75% sticky, 0.1/s, planned dns_change": ("alias_apex", {
        **FARM, "dns.resolvers.0.sticky": 0.75, "clients.0.rate": "0.1/s", "faults": PLANNED}),
    "farm, random picks, 1/s, 30 clients a resolver, planned dns_change": ("cname_repoint", {
        **FARM, "dns.resolvers.0.sticky": 0.0, "clients.0.rate": "1/s", "dns.resolvers.0.count": 10,
        "faults": PLANNED}),
    # every pooled connection is reset once at the move: one failure per client
    "farm, 90% sticky, fixed 30 s stub, idle sockets 60 s, planned address_move": ("eip_remap", {
        **FARM, "dns.resolvers.0.sticky": 0.9, "clients.0.rate": "1/s", "dns.resolvers.0.count": 10,
        "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}, "clients.0.keepalive": "60s",
        "faults": [{"at": "30s", "kind": "address_move"}]}),
    # pooled connections through the change (and the old balancer switched off 70 s later):
    # the follower keeps them; the Poisson path's pooled switches crashed on their rate of 0
    "farm, idle sockets 10 s up to 60 s old, planned dns_change, then the active down": ("cname_repoint", {
        **FARM, "clients.0.keepalive": "10s", "clients.0.max_connection_age": "60s",
        "faults": [*PLANNED, _down("blue", "100s")]}),
    "farm, Poisson clients and browsing sessions, planned dns_change": ("cname_repoint", {
        **FARM, "dns.resolvers.0.count": 20, "clients": MIXED, "faults": PLANNED}),
    "browsing sessions and Poisson clients on plain shared resolvers, planned dns_change": ("cname_repoint", {
        "duration": "3m", "dns.resolvers.0.count": 20, "clients": MIXED, "faults": PLANNED}),
    # several balancer faults, each met in the requests
    "farm, planned dns_change, then the standby down 30 s": ("cname_repoint", {
        **FARM, "faults": [*PLANNED, _down("green", "60s", "30s")]}),
    "farm, the failover, then the standby down 30 s": ("cname_repoint", {
        **FARM, "faults": [_down("blue", "10s"), _down("green", "90s", "30s")]}),
    "farm, the active down 5 s, then 60 s": ("cname_repoint", {
        **FARM, "faults": [_down("blue", "10s", "5s"), _down("blue", "40s", "60s")]}),
    "browsing sessions, idle sockets 300 s, a retry, the failover, then the standby down 30 s": ("eip_remap", {
        "duration": "3m", "dns.resolvers.0.count": 10,
        "clients": [{**BROWSING, "keepalive": "300s", "retry": {"attempts": 2, "timeout": "10s"}}],
        "faults": [_down("blue", "10s"), _down("green", "60s", "30s")]}),
}
# About two seconds each in CI (a planned change with the standby's fault; pooled connections
# through a planned change, which crashed); the others (up to seven seconds) are `slow`.
QUICK = ("farm, planned dns_change, then the standby down 30 s",
         "farm, idle sockets 10 s up to 60 s old, planned dns_change, then the active down")


@pytest.mark.parametrize("case", [c if c in QUICK else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_followed_clients_meet_planned_changes_and_balancer_faults_as_in_the_model(case: str) -> None:
    strategy, changes = CASES[case]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6)
    assert_drain_agrees(sc, strategy)


def test_poisson_clients_meet_the_standby_s_fault_after_a_planned_change() -> None:
    """Plain resolvers, Poisson clients: a planned DNS change, then the standby down for 30 s.
    Until this release the fast engine took the standby's span from the failover's switches
    only, so with no failover no client was ever on the standby: no failure at all, against
    the model's 10% of requests."""
    sc = scenario(**{"clients.0.count": 300, "clients.0.rate": "0.2/s", "duration": "3m", "dns.resolvers.0.count": 300,
                     "faults": [*PLANNED, _down("green", "60s", "30s")], "strategies": ["cname_repoint"]})
    assert not unsupported(sc)
    assert_agree(sc, "cname_repoint", reps=6)
    assert_drain_agrees(sc, "cname_repoint")


OUTAGE = [{"at": "30s", "kind": "dns_down", "for": "60s"}]
DNS_DOWN: dict[str, tuple[str, dict[str, Any]]] = {
    # a cache whose answer expired in the outage fails its lookups; the next pick may not
    "farm, TTL 300 s, a 60 s outage": ("cname_repoint", {
        **FARM, "dns.service_ttl": "300s", "dns.balancer_ttl": "300s", "faults": OUTAGE}),
    "farm, TTL 60 s, a 60 s outage": ("eip_remap", {**FARM, "faults": OUTAGE}),
    # the retry comes at once and may draw a cache that still holds the answer
    "farm, fixed 30 s stub, a retry": ("cname_repoint", {
        **FARM, "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
        "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "faults": OUTAGE}),
    # a failed refresh leaves the answer in grace: only a stub past its grace fails
    "farm, fixed 20 s stub with 60 s of grace": ("cname_repoint", {
        **FARM, "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s",
        "faults": OUTAGE}),
    # a pooled connection carries requests through the outage without a lookup
    "farm, idle sockets 10 s": ("cname_repoint", {**FARM, "clients.0.keepalive": "10s", "faults": OUTAGE}),
    # RFC 8767: an answer expired less than 40 s ago is served (30 s TTL) while nothing answers
    "farm, serve_stale resolvers, max_stale 40 s": ("cname_repoint", {
        **FARM, "dns.resolvers.0.policy": {"kind": "serve_stale", "max_stale": "40s"}, "faults": OUTAGE}),
    "browsing sessions, floor 60 s stubs, 30 clients a resolver": ("cname_repoint", {
        "duration": "3m", "dns.resolvers.0.count": 10, "clients": [BROWSING], "faults": OUTAGE}),
    "browsing sessions, no stub cache, a resolver each, an outage to the end of the run": ("eip_remap", {
        "duration": "3m", "dns.resolvers.0.count": 300, "clients": [{**BROWSING, "stub_cache": {"kind": "none"}}],
        "faults": [{"at": "20s", "kind": "dns_down", "for": "10m"}]}),
}


@pytest.mark.parametrize("case", [c if c == "farm, TTL 300 s, a 60 s outage" else pytest.param(c, marks=pytest.mark.slow)
                                  for c in DNS_DOWN])
def test_followed_clients_meet_a_dns_outage_as_in_the_model(case: str) -> None:
    strategy, changes = DNS_DOWN[case]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6)


def test_what_a_dns_outage_still_refuses_is_named() -> None:
    """A followed cohort on resolvers shared with Poisson clients (such a resolver turns at one
    drawn moment, with no expiry for the outage to meet); pooled connections with restarts and
    stale-serving resolvers of clients not followed."""
    web = {**BROWSING, "count": 30}
    api = {"name": "api", "count": 30, "rate": "1/s"}
    shared = unsupported(scenario(faults=OUTAGE, clients=[web, api]))
    assert any("clients[0].sessions with a dns_down (faults[0]), on resolvers shared with clients not followed"
               in r for r in shared), shared
    assert not unsupported(scenario(faults=OUTAGE, clients=[{**web, "stub_grace": "60s", "keepalive": "10s"}]))
    assert not unsupported(scenario(**{**FARM, "faults": OUTAGE, "clients.0.stub_grace": "60s"}))
    # Pooled connections run (sim.fast.pooled_fault), not with restarts that close them.
    assert not unsupported(scenario(faults=OUTAGE, clients=[{**api, "keepalive": "10s"}]))
    pooled = unsupported(scenario(faults=OUTAGE, clients=[{**api, "keepalive": "10s", "restart": {"every": {"exp": "10m"}}}]))
    assert any("clients[0].keepalive and restart, with a dns_down" in r for r in pooled), pooled
    stale = {"dns.resolvers.0.policy": {"kind": "serve_stale"}, "faults": OUTAGE}
    assert not unsupported(scenario(**{**FARM, **stale}))
    assert any("dns.resolvers[0].policy: serve_stale, with a dns_down" in r for r in unsupported(scenario(**stale)))


def _hole(**more: Any) -> dict[str, Any]:
    return {"at": "10s", "kind": "balancer_down", "target": "blue", "mode": "blackhole", **more}


TWO_TRIES = {"attempts": 2, "timeout": "3s"}
BLACKHOLE: dict[str, tuple[str, dict[str, Any]]] = {
    # the retry comes 3 s later, when the client's answer (or the cache it draws) may have turned
    "farm, two tries 3 s apart": ("cname_repoint", {**FARM, "clients.0.retry": TWO_TRIES, "faults": [_hole()]}),
    # the balancer back at 40 s: a retry that starts then gets through, late
    "farm, the active back after 30 s, three tries 10 s apart": ("eip_remap", {
        **FARM, "clients.0.retry": {"attempts": 3, "timeout": "10s"}, "faults": [_hole(**{"for": "30s"})]}),
    "farm, idle sockets 60 s, two tries 3 s apart": ("cname_repoint", {
        **FARM, "clients.0.keepalive": "60s", "clients.0.retry": TWO_TRIES, "faults": [_hole()]}),
    "farm, a planned dns_change, then the active blackholed": ("cname_repoint", {
        **FARM, "clients.0.retry": TWO_TRIES, "faults": [*PLANNED, _hole(at="60s")]}),
    # an idle connection the move resets fails at once (refused), one used in the fault waits
    # out the timeout: each failure known when it is, and counted by its own outcome
    "browsing sessions, idle sockets 300 s, one try of 10 s": ("eip_remap", {
        "duration": "3m", "dns.resolvers.0.count": 10, "faults": [_hole()],
        "clients": [{**BROWSING, "keepalive": "300s", "retry": {"attempts": 1, "timeout": "10s"}}]}),
    "farm, idle sockets 60 s, two tries 3 s apart, an address move": ("eip_remap", {
        **FARM, "clients.0.keepalive": "60s", "clients.0.retry": TWO_TRIES, "faults": [_hole()]}),
    "browsing sessions, fixed 60 s stubs with 60 s of grace, two tries 10 s apart": ("cname_repoint", {
        "duration": "3m", "dns.resolvers.0.count": 10, "faults": [_hole()],
        "clients": [{**BROWSING, "stub_cache": {"kind": "fixed", "ttl": "60s"}, "stub_grace": "60s",
                     "retry": {"attempts": 2, "timeout": "10s"}}]}),
}


@pytest.mark.parametrize("case", [c if c == "farm, two tries 3 s apart" else pytest.param(c, marks=pytest.mark.slow)
                                  for c in BLACKHOLE])
def test_followed_clients_wait_out_a_blackhole_as_in_the_model(case: str) -> None:
    strategy, changes = BLACKHOLE[case]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    assert not unsupported(sc, [strategy])
    assert_agree(sc, strategy, reps=6)
    assert_drain_agrees(sc, strategy)


def test_a_reset_under_a_blackhole_is_a_refusal_known_at_once() -> None:
    """Browsing sessions with idle sockets under eip_remap and a blackhole: a connection idle
    through the fault is reset at its first use after the move, a refusal known at once; one
    used in the fault waits out the timeout. The timeline counts each by its own outcome, as
    the model does (6 replications, 4 SE)."""
    strategy, changes = BLACKHOLE["browsing sessions, idle sockets 300 s, one try of 10 s"]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    got = {}
    for name, engine in (("model", des), ("fast", fast)):
        rows = [engine(sc, strategy, np.random.SeedSequence([11, k]), k).timeline for k in range(6)]
        got[name] = {c: np.array([float(t[c].sum()) for t in rows]) for c in ("refused", "timeout")}
    for column in ("refused", "timeout"):
        a, b = got["model"][column], got["fast"][column]
        se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert a.mean() > 10, (column, a)  # both kinds happen
        assert abs(a.mean() - b.mean()) <= 4 * se, (column, a.mean(), b.mean())


def test_what_a_blackhole_still_refuses_is_named() -> None:
    """A blackhole of the standby (the engine waits out a blackhole in the active's window)."""
    pooled = {**FARM, "clients.0.keepalive": "60s", "faults": [_hole()]}
    assert not unsupported(scenario(**pooled), ["cname_repoint", "eip_remap"])
    standby = unsupported(scenario(**{**FARM, "faults": [*PLANNED, _hole(target="green")],
                                      "strategies": ["cname_repoint"]}))
    assert any("faults[1]: a blackholed balancer_down of green, not the active balancer" in r for r in standby), standby
