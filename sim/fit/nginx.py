"""nginx's `combined` log format, optionally with `$connection $connection_requests` appended.

`$remote_addr - $remote_user [$time_local] "$request" $status
$body_bytes_sent "$http_referer" "$http_user_agent"` (nginx's
ngx_http_log_module documents it; nginx writes a `"` inside a field as
`\\x22`, so quoted fields hold no bare quote). With the two extra
variables the log shows connections: `$connection` is the connection's
serial number, `$connection_requests` this request's number on it.
"""

from __future__ import annotations

import re

from sim.fit.clock import clf
from sim.fit.lines import Malformed
from sim.fit.records import Request, check_address

_Q = r'"((?:[^"\\]|\\.)*)"'
_LINE = re.compile(
    rf"(\S+) \S+ \S+ \[([^\]]+)\] {_Q} (\d{{3}}) (\d+|-) {_Q} {_Q}(?: (\d+) (\d+))?\s*$"
)


def parse_combined(line: str) -> Request:
    m = _LINE.match(line)
    if not m:
        raise Malformed("not combined format" if '"' in line else "too few fields")
    address, stamp, _request, _status, _size, _referer, agent, conn, nreq = m.groups()
    check_address(address)
    return Request(clf(stamp), address, conn, "" if agent == "-" else agent, int(nreq) if nreq else None)
