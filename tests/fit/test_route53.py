"""sim.fit.route53: public DNS query log lines as AWS documents them."""

from __future__ import annotations

import pytest

from sim.fit.lines import Malformed
from sim.fit.route53 import parse_query_log
from tests.fit.logtext import ROUTE53, T0


@pytest.mark.parametrize("resolver", ["192.0.2.53", "2001:db8::53"])
def test_query_line(resolver: str) -> None:
    q = parse_query_log(ROUTE53.format(client=resolver))
    assert q == (pytest.approx(T0), resolver, "www.example.com", "A", None)


def test_client_subnet_trailing_dot_and_a_cloudwatch_timestamp_first() -> None:
    line = ROUTE53.format(client="192.0.2.53").replace("www.example.com", "WWW.example.com.").replace(" -", " 198.51.100.0/24")
    q = parse_query_log("2026-12-02T14:00:02.000Z " + line)
    assert (q.name, q.subnet) == ("www.example.com", "198.51.100.0/24")


@pytest.mark.parametrize("line", [
    "1.0 2026-12-02T14:00:01.500Z Z1 www.example.com A",
    ROUTE53.format(client="-"),
    ROUTE53.format(client="resolver"),
    ROUTE53.format(client="192.0.2.53").replace("2026-12-02T14:00:01.500Z", "today"),
    "x " + ROUTE53.format(client="192.0.2.53").replace("1.0 ", "v1 "),
])
def test_malformed(line: str) -> None:
    with pytest.raises(Malformed):
        parse_query_log(line)
