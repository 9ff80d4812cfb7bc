"""The scenario fields and zone rules of the five strategies of issue 9."""

from __future__ import annotations

import pytest

from sim.scenario import STRATEGIES, ScenarioError, load_text, strategy_refusals
from sim.scenario.zones import (
    STRATEGY_RECORD_TYPE,
    ZoneRecord,
    balancer_pointers,
    strategies_at,
)
from tests.scenario.test_loader import MINIMAL

NEW = ("alias_apex", "dns_failover", "anycast", "vrrp", "multi_a")


def test_new_fields_are_optional_with_sourced_defaults() -> None:
    s = load_text(MINIMAL)
    assert s.strategies == ["cname_repoint", "eip_remap"]  # unchanged for existing scenarios
    p = s.failover.provider_checks
    assert (p.interval, p.threshold, p.timeout, p.healthy_share) == (30.0, 3, 4.0, 0.18)  # Route 53
    a = s.failover.anycast
    assert (a.interval, a.threshold) == (30.0, 3)  # Global Accelerator
    v = s.failover.vrrp
    assert (v.advert_int, v.priority) == (1.0, 128)  # docs/references.md's 3.5 s example
    assert s.failover.multi_a.order == "rotate"
    assert s.clients[0].address_mode == "first" and s.clients[0].fallback_delay is None


def test_every_strategy_is_known_everywhere() -> None:
    assert set(STRATEGIES) == set(STRATEGY_RECORD_TYPE)
    s = load_text(MINIMAL + f"strategies: [{', '.join(STRATEGIES)}]\n")
    assert s.strategies == list(STRATEGIES)


def test_new_fields_parse_units() -> None:
    s = load_text(
        MINIMAL.replace("  - {name: web, count: 10, rate: 1/s}", "  - {name: web, count: 10, rate: 1/s, address_mode: next, fallback_delay: 250ms}")
        + "failover:\n  vrrp: {advert_int: 2s, priority: 200, garp_delay: 100ms}\n"
        "  provider_checks: {interval: 10s, threshold: 2, checkers: 16}\n"
        "  anycast: {interval: 10s, shift_delay: {uniform: [0s, 2s]}}\n  multi_a: {order: fixed}\n"
    )
    assert s.clients[0].address_mode == "next" and s.clients[0].fallback_delay == 0.25
    assert s.failover.vrrp.advert_int == 2.0 and s.failover.vrrp.garp_delay.mean == pytest.approx(0.1)
    assert s.failover.provider_checks.checkers == 16
    assert s.failover.anycast.shift_delay.mean == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("failover:\n  vrrp: {priority: 255}\n", "failover.vrrp.priority"),
        ("failover:\n  provider_checks: {threshold: 11}\n", "failover.provider_checks.threshold"),
        ("failover:\n  provider_checks: {healthy_share: 1}\n", "failover.provider_checks.healthy_share"),
        ("failover:\n  multi_a: {order: random}\n", "failover.multi_a.order"),
        ("strategies: [gslb]\n", "strategies"),
    ],
)
def test_bad_values_name_their_field(extra: str, path: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_text(MINIMAL + extra)
    assert path in str(err.value)


def test_bad_address_mode_names_its_field() -> None:
    with pytest.raises(ScenarioError) as err:
        load_text(MINIMAL.replace("rate: 1/s}", "rate: 1/s, address_mode: last}"))
    assert "clients[0].address_mode" in str(err.value)


def test_at_the_apex_beside_mx_only_the_cname_is_refused() -> None:
    s = load_text(
        MINIMAL.replace("  zone: example.com", '  zone: example.com\n  service_name: "@"\n  records:\n    - {name: "@", type: MX, value: 10 mail.example.com.}')
        + f"strategies: [{', '.join(STRATEGIES)}]\n"
    )
    refusals = strategy_refusals(s)
    assert refusals["cname_repoint"]
    assert all(refusals[name] == [] for name in ("eip_remap", *NEW))


def test_a_cname_already_at_the_service_name_refuses_the_address_strategies() -> None:
    s = load_text(
        MINIMAL.replace("  zone: example.com", "  zone: example.com\n  records:\n    - {name: www, type: CNAME, value: other.example.net.}")
        + "strategies: [vrrp, alias_apex]\n"
    )
    refusals = strategy_refusals(s)
    assert refusals["vrrp"] and "coexist" in refusals["vrrp"][0].rule
    assert refusals["alias_apex"]


ZONE = [
    ZoneRecord("@", "SOA"),
    ZoneRecord("@", "NS", "ns1"),
    ZoneRecord("@", "MX", "10 mail"),
    ZoneRecord("@", "A", "192.0.2.10"),
    ZoneRecord("www", "CNAME", "web-1.us-east-1.elb.amazonaws.com."),
    ZoneRecord("api", "CNAME", "api-9.elb.eu-west-1.amazonaws.com."),
    ZoneRecord("api", "TXT", "x"),
    ZoneRecord("docs", "CNAME", "readthedocs.io."),
    ZoneRecord("mail", "A", "192.0.2.25"),
    ZoneRecord("ns1", "A", "192.0.2.53"),
]


def test_balancer_pointers_skip_mail_and_name_servers_and_other_cnames() -> None:
    found = balancer_pointers(ZONE)
    assert set(found) == {"@", "www", "api"}
    assert found["www"].startswith("CNAME to web-1") and found["@"].startswith("A records")


def test_strategies_at_each_name() -> None:
    at_apex = strategies_at(ZONE, "@")
    assert at_apex["cname_repoint"] and all(not at_apex[s] for s in ("eip_remap", *NEW))
    at_www = strategies_at(ZONE, "www")
    assert not any(at_www.values())  # the CNAME is replaced, nothing else lives there
    at_api = strategies_at(ZONE, "api")  # beside TXT: only the CNAME conflicts
    assert at_api["cname_repoint"] and "TXT" in at_api["cname_repoint"][0].rule
    assert not at_api["multi_a"]
