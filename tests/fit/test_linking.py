"""Resolvers weighted by the clients behind them (EDNS client subnet), and `forever` told from quiet.

The logs are those of a simulated population (tests/fit/ecs_synthetic.py):
each resolver a cache of its policy in front of client networks of known
size, so the clients behind each policy are known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

import sim
from sim.fit.forever import FOREVER_TTLS
from sim.fit.linking import link
from sim.fit.networks import NetworkTally
from sim.fit.run import fit
from sim.fit.writer import scenario_text
from tests.fit.ecs_synthetic import Group, write_logs

TTL, SPAN, RATE = 60.0, 1800.0, 0.1


def _groups() -> list[Group]:
    return [
        Group("honor", TTL, 16, 4.0),
        Group("floor", 300.0, 8, 16.0),
        Group("cap", 20.0, 8, 8.0),
        Group("forever", math.inf, 4, 6.0),
        # what the fit must not call: a resolver whose clients went quiet (they send in the first
        # 40 s only), and a forever one whose clients are browsers (their lookups do not show)
        Group("quiet", TTL, 3, 3.0, active=40.0),
        Group("hidden", math.inf, 2, 4.0, family="browser"),
    ]


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    groups = _groups()
    access, dns = write_logs(tmp_path_factory.mktemp("ecs"), groups, SPAN, RATE, np.random.default_rng(23))
    return fit([access], [dns], service="www.example.com", ttl=TTL), {g.policy: g for g in groups}


def test_client_shares_are_the_clients_behind_each_policy(linked: tuple) -> None:
    result, groups = linked
    r = result.resolvers
    assert r.basis == "clients"
    classified = ("honor", "floor", "cap", "forever")
    clients = {p: sum(groups[p].clients) for p in classified}
    total = sum(clients.values())
    expected = {p: groups[p].resolvers * groups[p].clients_mean for p in classified}
    for p in classified:
        share = r.client_share[p]
        # every network sits behind one resolver and every client was seen: the link is exact
        assert share.value == pytest.approx(clients[p] / total, abs=1e-9)
        # and the population's share (its mean network sizes) is within the interval and 5 points
        truth = expected[p] / sum(expected.values())
        assert share.low <= truth <= share.high and abs(share.value - truth) <= 0.05, (p, share, truth)
        # equal rates per client: the requests behind each policy are its clients' share too
        assert r.request_share[p].low <= truth <= r.request_share[p].high
    # the share of resolvers is far from the clients' (what weighting by clients changes)
    assert abs(r.count_share["honor"].value - r.client_share["honor"].value) > 0.15
    # each network is one resolver's, so every client seen is linked
    assert r.linked.clients == r.access_clients == sum(c.seen for c in result.cohorts)


def test_forever_is_told_from_quiet_and_from_hidden(linked: tuple) -> None:
    result, groups = linked
    policies = [x.policy for x in result.resolvers.resolvers]
    assert policies.count("forever") == groups["forever"].resolvers
    assert policies.count("honor") == groups["honor"].resolvers
    assert policies.count("floor") == groups["floor"].resolvers and policies.count("cap") == groups["cap"].resolvers
    # quiet and hidden resolvers that asked are left unclassified, never called forever
    assert policies.count(None) == len(policies) - sum(groups[p].resolvers for p in ("honor", "floor", "cap", "forever"))
    assert policies.count(None) >= groups["hidden"].resolvers
    bound = result.resolvers.value["forever"]
    assert bound.low >= FOREVER_TTLS * TTL and bound.high <= SPAN


def test_the_scenario_says_how_each_share_was_converted(linked: tuple) -> None:
    result, _ = linked
    text = scenario_text(result, service="www.example.com")
    groups = {g.name: g for g in sim.load(yaml.safe_load(text)).dns.resolvers}
    assert groups["forever"].policy.kind == "forever"
    for p, g in groups.items():
        assert g.share == pytest.approx(result.resolvers.client_share[p].value, abs=1e-5)
    assert "share of the access log's clients behind each group, linked by EDNS client subnet" in text
    assert "10.0." not in text and "192.0." not in text


def test_a_network_behind_two_resolvers_is_split_by_its_queries() -> None:
    networks = NetworkTally({(4, 24)})
    for i in range(10):
        networks.add(0.0, f"10.1.2.{i}", "runtime", True)
    networks.add(0.0, "10.9.9.9", "runtime", True)  # a network no resolver asked for
    key = hash("10.1.2.0/24")
    weights, linked = link({1: {key: 3}, 2: {key: 1}}, networks)
    assert weights[1].clients == pytest.approx(7.5) and weights[2].clients == pytest.approx(2.5)
    assert weights[1].exclusive == () and (linked.clients, linked.split, linked.networks) == (10, 10, 1)


@pytest.mark.parametrize(("line", "prefix"), [
    ("1.0 2026-12-02T14:00:01.500Z Z1 www.example.com A NOERROR UDP FRA6 192.0.2.1 10.1.2.0/24", (4, 24)),
    ("02-Dec-2026 14:00:01.500 queries: info: client @0x7f3a1c0 192.0.2.1#53211 (www.example.com): "
     "query: www.example.com IN A +E(0)K (192.0.2.53) [ECS 10.1.2.0/24/0]", (4, 24)),
    ("1.0 2026-12-02T14:00:01.500Z Z1 www.example.com AAAA NOERROR UDP FRA6 192.0.2.1 2001:db8:1:200::/56", (6, 56)),
])
def test_each_dns_format_s_subnet_meets_the_access_log_s_network(line: str, prefix: tuple[int, int]) -> None:
    from sim.fit.bind import parse_querylog
    from sim.fit.resolvers import QueryTally
    from sim.fit.route53 import parse_query_log

    tally = QueryTally()
    tally.add(parse_querylog(line) if "queries:" in line else parse_query_log(line))
    assert tally.prefixes == {prefix}
    networks = NetworkTally(tally.prefixes)
    client = "10.1.2.77" if prefix[0] == 4 else "2001:db8:1:2ff::9"
    networks.add(0.0, client, "cli", True)
    networks.add(0.0, "10.1.3.1" if prefix[0] == 4 else "2001:db8:1:300::1", "cli", True)  # the next network
    weights, linked = link(tally.ecs["www.example.com"], networks)
    assert [w.clients for w in weights.values()] == [1.0] and linked.clients == 1


def test_the_report_gives_every_share_side_by_side(linked: tuple, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sim.fit.report import write_report

    md, _ = write_report(linked[0], tmp_path, "linked")
    text = md.read_text()
    assert "| share of queries | share of resolvers | share of clients | share of requests |" in text
    assert "the scenario's share is the share of clients (EDNS client subnet)" in text
    assert "Linked clients by family and the policy of their resolvers" in text
    assert "10.0." not in text and "192.0." not in text


def test_each_family_s_clients_by_the_policy_behind_them(linked: tuple) -> None:
    from sim.fit.resolvers import by_family

    result, groups = linked
    families = by_family(result.resolvers.resolvers)
    # the browsers sit behind the resolve-once resolvers their stub caches hide: unclassified
    seen = {c.family: c.seen for c in result.cohorts}
    assert families["browser"] == {"unclassified": seen["browser"]}
    for p in ("honor", "floor", "cap", "forever"):
        assert families["runtime"][p] == sum(groups[p].clients)


def test_too_few_resolvers_with_subnets_keep_the_share_of_resolvers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    groups = [Group("honor", TTL, 10, 2.0, ecs=False), Group("floor", 300.0, 5, 6.0), Group("cap", 20.0, 5, 3.0)]
    access, dns = write_logs(tmp_path, groups, 1200.0, RATE, np.random.default_rng(29))
    r = fit([access], [dns], service="www.example.com", ttl=TTL).resolvers
    assert r.basis == "resolvers" and sorted(r.client_share) == ["cap", "floor"]  # weighed where subnets link them
    assert r.client_share["floor"].value == pytest.approx(sum(groups[1].clients) / sum(groups[1].clients + groups[2].clients))
    text = scenario_text(fit([access], [dns], service="www.example.com", ttl=TTL), service="www.example.com")
    assert "share = share of resolvers, not of clients: client subnets from 10 of the 20 classified resolvers" in text
    shares = {g.name: g.share for g in sim.load(yaml.safe_load(text)).dns.resolvers}
    assert shares == pytest.approx({"honor": 0.5, "floor": 0.25, "cap": 0.25})
