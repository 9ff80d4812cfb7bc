"""Client networks: what links the access log's clients to the resolvers behind them.

A query that carries EDNS client subnet (RFC 7871) names the network of the
client whose lookup made the resolver ask (`198.51.100.0/24`: the address
cut to the resolver's source prefix, /24 and /56 at the large public
resolvers). The access log names the clients. Cut each client's address to
the same prefix lengths and the two meet: a network's clients are behind
the resolvers its subnet was seen from.

Only read when the DNS log carries client subnets (the DNS logs are read
first, so the prefix lengths are known): the cost is one `ipaddress` call per
distinct client address, none per request. Networks are kept as salted hashes
of their text (`hash` of a `str` is salted per process), like the clients.

Per network it keeps the distinct clients and their requests (the weights),
and the times of the last `LAST` lookups its clients must have made: a
request of a family without a stub cache (`NO_STUB`) that opens a new
connection looks the name up (a reused connection needs no lookup). Those
are what tell a resolver that keeps an answer past the end of the log from
one whose clients went quiet (sim.fit.forever).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field

# Families whose stub cache is none (sim.fit.writer's NO_CACHE): every new connection is a lookup
NO_STUB = frozenset({"runtime", "cli", "other", "unknown"})
LAST = 3  # lookup times kept per network: sim.fit.forever asks for at least this many past a bound
_CACHE_LIMIT = 200_000
_keys: dict[str, int | None] = {}


def subnet_key(text: str) -> int | None:
    """The salted hash of a logged client subnet's network (`198.51.100.7/24` and
    `198.51.100.0/24` are one network); None when it is not a subnet."""
    found = _keys.get(text, 0)
    if found != 0:
        return found
    try:
        net: ipaddress.IPv4Network | ipaddress.IPv6Network | None = ipaddress.ip_network(text, strict=False)
    except ValueError:
        net = None
    # a /0 subnet is the resolver saying "no client information" (RFC 7871, 7.1.2)
    key = hash(str(net)) if net is not None and net.prefixlen > 0 else None
    if len(_keys) >= _CACHE_LIMIT:
        _keys.clear()
    _keys[text] = key
    return key


def prefix_of(text: str) -> tuple[int, int] | None:
    """(IP version, prefix length) of a logged client subnet."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return (net.version, net.prefixlen) if net.prefixlen > 0 else None


@dataclass
class Network:
    clients: set[tuple[int, str]] = field(default_factory=set)  # (address hash, family)
    requests: int = 0
    lookups: list[float] = field(default_factory=list)  # the last LAST lookup times, ascending


class NetworkTally:
    """Clients per network, at the prefix lengths the DNS log's client subnets use."""

    def __init__(self, prefixes: set[tuple[int, int]]) -> None:
        self.prefixes = sorted(prefixes)
        self.networks: dict[int, Network] = defaultdict(Network)
        self._of: dict[int, tuple[int, ...]] = {}  # address hash -> its networks' keys

    def _networks(self, client: str) -> tuple[int, ...]:
        key = hash(client)
        found = self._of.get(key)
        if found is None:
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                address = None
            found = tuple(hash(str(ipaddress.ip_network(f"{address}/{length}", strict=False)))
                          for version, length in self.prefixes if address is not None and address.version == version)
            self._of[key] = found
        return found

    def add(self, t: float, client: str, fam: str, new_connection: bool) -> None:
        lookup = new_connection and fam in NO_STUB
        who = (hash(client), fam)
        for key in self._networks(client):
            n = self.networks[key]
            n.clients.add(who)
            n.requests += 1
            if lookup:
                n.lookups.append(t)
                if len(n.lookups) > LAST:
                    n.lookups.sort()
                    del n.lookups[0]

    @property
    def clients(self) -> int:
        return len({who for n in self.networks.values() for who in n.clients})
