"""What a parser hands on: one request of an access log, one query of a DNS log."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from sim.fit.lines import Malformed


class Request(NamedTuple):
    t: float  # seconds since the epoch
    client: str  # the client's address as logged (hashed by the estimates, never written out)
    conn: str | None  # what identifies its connection, where the log shows one
    agent: str  # the User-Agent header ("" when the log has none)
    reuse: int | None = None  # nginx $connection_requests: this request's number on its connection


class Query(NamedTuple):
    t: float
    resolver: str  # the querying resolver's address
    name: str  # lower case, no trailing dot
    qtype: str
    subnet: str | None  # EDNS client subnet, where the query carried one


def host_port(text: str) -> tuple[str, str]:
    """`192.0.2.1:443`, `[2001:db8::1]:443` or `2001:db8::1:443` (the port is always last)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise Malformed("bad client address")
    return host, port


_checked: set[str] = set()
_CHECKED_LIMIT = 500_000


def check_address(text: str) -> str:
    """`text` if it is an IPv4 or IPv6 address (remembered: a log repeats its clients)."""
    if text in _checked:
        return text
    try:
        ipaddress.ip_address(text)
    except ValueError as exc:
        raise Malformed("bad client address") from exc
    if len(_checked) >= _CHECKED_LIMIT:
        _checked.clear()
    _checked.add(text)
    return text


def dns_name(text: str) -> str:
    return text.rstrip(".").lower()
