"""sim.fit.aws: ALB and Classic Load Balancer access-log lines as AWS documents them."""

from __future__ import annotations

import pytest

from sim.fit.aws import parse_alb, parse_elb
from sim.fit.lines import Malformed
from tests.fit.logtext import ALB, CHROME, ELB, T0


@pytest.mark.parametrize("client", ["198.51.100.7", "2001:db8::7"])
def test_alb_line_with_quoted_spaces_and_connection_trace(client: str) -> None:
    r = parse_alb(ALB.format(client=client, agent=CHROME))
    assert (r.t, r.client, r.conn, r.agent) == (pytest.approx(T0), client, "TID_1234abcd5678ef90", CHROME)


def test_alb_bracketed_ipv6_and_an_older_line_without_the_later_fields() -> None:
    line = ALB.format(client="[2001:db8::7]", agent="curl/8.5.0")
    older = line[: line.index(" ECDHE")] + " - -"
    r = parse_alb(older)
    assert (r.client, r.conn, r.agent) == ("2001:db8::7", "[2001:db8::7]:2817", "curl/8.5.0")


def test_classic_elb_line() -> None:
    r = parse_elb(ELB.format(client="198.51.100.7", agent="Java/17.0.2"))
    assert (r.t, r.client, r.conn, r.agent) == (pytest.approx(T0), "198.51.100.7", "198.51.100.7:2817", "Java/17.0.2")


def test_a_dash_user_agent_is_empty() -> None:
    assert parse_elb(ELB.format(client="198.51.100.7", agent="-")).agent == ""


@pytest.mark.parametrize(("line", "kind"), [
    ("h2 2026-12-02T14:00:01Z app/x", "too few fields"),
    (ALB.format(client="198.51.100.7", agent="x").replace("h2 ", "gopher ", 1), "unknown request type"),
    (ALB.format(client="-", agent="x").replace("-:2817", "-"), "no client address"),
    (ALB.format(client="300.1.1.1", agent="x"), "bad client address"),
    (ALB.format(client="198.51.100.7", agent="x").replace("2026-12-02T14:00:01.500000Z", "noon", 1), "bad timestamp"),
])
def test_malformed_alb_lines_say_why(line: str, kind: str) -> None:
    with pytest.raises(Malformed) as exc:
        parse_alb(line)
    assert exc.value.kind == kind


def test_an_alb_line_is_not_a_classic_one() -> None:
    with pytest.raises(Malformed):
        parse_elb(ALB.format(client="198.51.100.7", agent="x"))
