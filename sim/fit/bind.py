"""BIND's query log (the `queries` category), as the BIND 9 reference manual documents it.

    02-Dec-2026 14:00:00.123 queries: info: client @0x7f3a1c0 192.0.2.1#53211
    (www.example.com): query: www.example.com IN A +E(0)K (192.0.2.53) [ECS 198.51.100.0/24/0]

The client object (`@0x...`) appears from BIND 9.11 on, the `(name)` after
the address from 9.10 on, `view NAME:` with views; flags follow the type,
then the server address in brackets, then `[ECS address/source/scope]` when
the query carried a client subnet. The time is the file channel's
`print-time` (`dd-Mon-yyyy hh:mm:ss.mmm` or ISO 8601); a line sent through
syslog instead starts with the syslog time (`Dec  2 14:00:00`, no year,
taken as 1970: the fit uses differences only). Lines of other categories
(a timestamp, no query) are skipped, not counted as malformed.
"""

from __future__ import annotations

import re

from sim.fit.clock import MONTHS, bind_time, iso8601
from sim.fit.lines import Malformed
from sim.fit.records import Query, check_address, dns_name

_QUERY = re.compile(
    r"client (?:@0x[0-9a-fA-F]+ )?(\S+)#\d+(?: \([^)]*\))?:(?: view [^:]+:)? query: "
    r"(\S+) (\S+) (\S+) [-+]\S*(?: \([^)]*\))?(?: \[ECS ([^\]]+)\])?"
)
_DATED = re.compile(r"(\d{2}-\w{3}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?) ")
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\S+) ")
_SYSLOG = re.compile(r"(\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}(?:\.\d+)?) ")


def _time(line: str) -> float:
    if m := _DATED.match(line):
        return bind_time(m.group(1))
    if m := _ISO.match(line):
        return iso8601(m.group(1))
    if (m := _SYSLOG.match(line)) and m.group(1) in MONTHS:
        mon, day, h, mi, s = m.groups()
        return bind_time(f"{int(day):02d}-{mon}-1970 {h}:{mi}:{s}")
    raise Malformed("no timestamp")


def parse_querylog(line: str) -> Query | None:
    m = _QUERY.search(line)
    if not m:
        if "query:" in line or "queries:" in line:
            raise Malformed("not querylog format")
        _time(line)  # a line with no timestamp is not BIND's at all
        return None  # another category's line
    resolver, name, _qclass, qtype, subnet = m.groups()
    check_address(resolver)
    # ECS is logged as address/source/scope: the client network is address/source
    network = "/".join(subnet.split("/")[:2]) if subnet else None
    return Query(_time(line), resolver, dns_name(name), qtype.upper(), network)
