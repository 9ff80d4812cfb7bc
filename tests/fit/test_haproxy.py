"""sim.fit.haproxy: `option httplog` lines as HAProxy's configuration manual shows them."""

from __future__ import annotations

import pytest

from sim.fit.haproxy import parse_httplog, user_agent
from sim.fit.lines import Malformed
from tests.fit.logtext import CHROME, HAPROXY, T0

# The manual's own example (section 8.2.3), its client unchanged.
MANUAL = ("Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in "
          'static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"')


def test_the_manuals_example() -> None:
    r = parse_httplog(MANUAL)
    assert (r.client, r.conn, r.agent) == ("10.0.1.2", "10.0.1.2:33317", "1wt.eu")


@pytest.mark.parametrize("client", ["198.51.100.7", "2001:db8::7"])
def test_captured_user_agent_with_spaces(client: str) -> None:
    r = parse_httplog(HAPROXY.format(client=client, agent=CHROME))
    assert (r.t, r.client, r.conn, r.agent) == (pytest.approx(T0), client, f"{client}:33317", CHROME)


def test_raw_stdout_without_syslog_header_and_without_captures() -> None:
    line = HAPROXY.format(client="198.51.100.7", agent="x").split(": ", 1)[1]
    line = line.replace(" {www.example.com|x} {}", "")
    r = parse_httplog(line)
    assert (r.client, r.agent) == ("198.51.100.7", "")


def test_aborted_timers_logasap_and_a_request_cut_without_its_quote() -> None:
    line = HAPROXY.format(client="198.51.100.7", agent="curl/8.5.0").replace("10/0/30/69/109 200 2750", "-1/-1/-1/-1/+1 -1 +0")
    r = parse_httplog(line[:-10])
    assert r.agent == "curl/8.5.0"


def test_padded_fields() -> None:
    line = MANUAL.replace("10/0/30/69/109 200", "0/0/0/-1/63387    504").replace("{1wt.eu} {}", "")
    assert parse_httplog(line).client == "10.0.1.2"


def test_user_agent_among_several_captured_headers() -> None:
    assert user_agent("www.example.com|curl/8.5.0|-") == "curl/8.5.0"
    assert user_agent("www.example.com|-") == ""
    assert user_agent(None) == ""


@pytest.mark.parametrize("line", [
    "Dec  2 14:00:01 lb haproxy[1]: Connect from 198.51.100.7:33317 to 10.0.0.1:80 (www/HTTP)",
    HAPROXY.format(client="198.51.100.7", agent="x").replace("---- ", ""),
    HAPROXY.format(client="198.51.100.7", agent="x").replace("02/Dec/2026", "02/Foo/2026"),
    "garbage",
])
def test_malformed(line: str) -> None:
    with pytest.raises(Malformed):
        parse_httplog(line)
