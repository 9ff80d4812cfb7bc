"""sim.fit.nginx: the combined format, with and without $connection $connection_requests."""

from __future__ import annotations

import pytest

from sim.fit.lines import Malformed
from sim.fit.nginx import parse_combined
from tests.fit.logtext import CHROME, NGINX, T0


@pytest.mark.parametrize("client", ["198.51.100.7", "2001:db8::7"])
def test_combined_line_with_quoted_spaces(client: str) -> None:
    r = parse_combined(NGINX.format(client=client, agent=CHROME))
    assert (r.t, r.client, r.conn, r.agent, r.reuse) == (pytest.approx(T0), client, None, CHROME, None)


def test_with_connection_and_its_request_number() -> None:
    r = parse_combined(NGINX.format(client="198.51.100.7", agent="curl/8.5.0") + " 1234 7")
    assert (r.conn, r.reuse) == ("1234", 7)


def test_an_escaped_quote_inside_a_field() -> None:
    line = NGINX.format(client="198.51.100.7", agent=r"odd \x22agent\x22 \"x\"")
    assert parse_combined(line).agent == r"odd \x22agent\x22 \"x\""


@pytest.mark.parametrize("line", [
    "198.51.100.7 - - [02/Dec/2026:15:00:01 +0100] \"GET / HTTP/1.1\" 200",
    NGINX.format(client="198.51.100.7", agent="x").replace("200 2326", "OK 2326"),
    NGINX.format(client="not-an-address", agent="x"),
    NGINX.format(client="198.51.100.7", agent="x").replace("02/Dec/2026", "02/Foo/2026"),
])
def test_malformed(line: str) -> None:
    with pytest.raises(Malformed):
        parse_combined(line)
