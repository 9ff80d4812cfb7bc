"""Route 53 public DNS query logs, as AWS's "Logging DNS queries" page documents them.

One query per line, space-separated: `version query_timestamp
hosted_zone_id query_name query_type response_code protocol edge_location
resolver_ip edns_client_subnet` (`-` when the query had no client subnet),
for example `1.0 2017-12-13T08:16:02.130Z Z123412341234 example.com A
NOERROR UDP FRA6 192.168.1.1 -`. CloudWatch Logs exports may put the
event's own timestamp first; a line whose first field is not a version is
read from its second field on.
"""

from __future__ import annotations

from sim.fit.clock import iso8601
from sim.fit.lines import Malformed
from sim.fit.records import Query, check_address, dns_name

FIELDS = 10


def _is_version(token: str) -> bool:
    major, dot, minor = token.partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit()


def parse_query_log(line: str) -> Query:
    tokens = line.split()
    if tokens and not _is_version(tokens[0]) and len(tokens) > FIELDS:
        tokens = tokens[1:]
    if len(tokens) < FIELDS:
        raise Malformed("too few fields")
    if not _is_version(tokens[0]):
        raise Malformed("no log format version")
    resolver = tokens[8]
    if resolver == "-":
        raise Malformed("no resolver address")
    check_address(resolver)
    subnet = tokens[9]
    return Query(iso8601(tokens[1]), resolver, dns_name(tokens[3]), tokens[4].upper(),
                 None if subnet == "-" else subnet)
