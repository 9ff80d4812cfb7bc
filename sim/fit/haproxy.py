"""HAProxy's HTTP log format (`option httplog`), as its configuration manual documents it.

    [syslog header] client_ip:port [accept_date] frontend backend/server
    TR/Tw/Tc/Tr/Ta status bytes_read req_cookie res_cookie termination_state
    actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue
    {captured_request_headers} {captured_response_headers} "http_request"

The syslog header (`Feb  6 12:14:14 localhost haproxy[14389]: `) is
present when HAProxy logs to syslog and absent with `log stdout format raw`;
the header blocks appear only when `capture request header` / `capture
response header` are configured (both blocks, or the request block alone).
The date (`%tr`, the accept date `%t` before 1.9) has milliseconds and no zone. Timers may be -1 (aborted),
`Ta` and byte counts may carry a leading `+` (`option logasap`), and a request
line longer than HAProxy's buffer is cut without its closing quote.

The user agent is in the log only when captured (`capture request header
User-Agent len 128`): with several captured headers the one that looks like
a user agent (a `product/version` token) is taken. A connection is the
client's address and port.
"""

from __future__ import annotations

import re

from sim.fit.clock import clf
from sim.fit.lines import Malformed
from sim.fit.records import Request, check_address, host_port

_LINE = re.compile(
    # ` +` between fields: runs of spaces are tolerated (copies of logs are often re-aligned)
    r"(?:^|\s)(\S+:\d+) +\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?)\] +(\S+) +(\S+)/(\S+) +"
    r"(-?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+) +(-?\d+) +(\+?\d+) +(\S+) +(\S+) +(\S{4}) +"
    r"(\d+/\d+/\d+/\d+/\+?\d+) +(\d+/\d+)"
    r"(?: +\{((?:[^}\\]|\\.)*)\})?(?: +\{((?:[^}\\]|\\.)*)\})? +\"(.*)$"
)
_PRODUCT = re.compile(r"[A-Za-z][\w.+-]*/\d")


def user_agent(captured: str | None) -> str:
    if not captured:
        return ""
    values = captured.split("|")
    if len(values) == 1:
        return values[0]
    return next((v for v in values if _PRODUCT.search(v)), "")


def parse_httplog(line: str) -> Request:
    m = _LINE.search(line)
    if not m:
        raise Malformed("not httplog format" if "[" in line else "too few fields")
    address, stamp = m.group(1), m.group(2)
    host, _ = host_port(address)
    check_address(host)
    return Request(clf(stamp), host, address, user_agent(m.group(14)))
