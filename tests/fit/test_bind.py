"""sim.fit.bind: BIND query-log lines, old and new, file channel and syslog."""

from __future__ import annotations

import pytest

from sim.fit.bind import parse_querylog
from sim.fit.lines import Malformed
from tests.fit.logtext import BIND, T0


@pytest.mark.parametrize("resolver", ["192.0.2.1", "2001:db8::1"])
def test_query_line(resolver: str) -> None:
    assert parse_querylog(BIND.format(client=resolver)) == (pytest.approx(T0), resolver, "www.example.com", "A", None)


def test_client_subnet_view_and_iso_time() -> None:
    line = ("2026-12-02T14:00:01.500Z queries: info: client @0x7f 192.0.2.1#5 (www.example.com): view ext: "
            "query: www.example.com IN AAAA -E(0)DC (192.0.2.53) [ECS 198.51.100.0/24/0]")
    q = parse_querylog(line)
    assert (q.t, q.qtype, q.subnet) == (pytest.approx(T0), "AAAA", "198.51.100.0/24")


def test_the_pre_9_10_form_through_syslog() -> None:
    q = parse_querylog("Dec  2 14:00:01 ns1 named[99]: client 192.0.2.1#53311: query: www.example.com IN A -EDC (192.0.2.53)")
    assert (q.resolver, q.name) == ("192.0.2.1", "www.example.com")
    assert q.t % 86400 == 14 * 3600 + 1


def test_other_categories_are_skipped_not_malformed() -> None:
    assert parse_querylog("02-Dec-2026 14:00:01.500 general: info: zone example.com/IN: loaded serial 1") is None


@pytest.mark.parametrize("line", [
    "02-Dec-2026 14:00:01.500 queries: info: client 192.0.2.1#5: query: (truncated",
    BIND.format(client="not-an-ip"),
    BIND.format(client="192.0.2.1").replace("02-Dec-2026 14:00:01.500", "sometime"),
])
def test_malformed(line: str) -> None:
    with pytest.raises(Malformed):
        parse_querylog(line)
