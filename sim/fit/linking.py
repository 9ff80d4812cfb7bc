"""Resolvers weighted by the clients behind them, where EDNS client subnet links the two logs.

A resolver's queries for the service name name the client networks it asks
for (sim.fit.networks); the access log says how many clients, and requests,
each network holds. A resolver's weight is the clients of the networks it
asked for. A network seen from several resolvers (a site with two resolvers
in its resolv.conf, or behind an anycast farm) has its clients split over
them by its queries to each: with one cached answer per resolver, a query
carries the subnet of the client whose lookup found the cache expired, so a
network's queries go to its resolvers in proportion to its lookups through
them, give or take their cache lifetimes.

What the weights miss: networks whose clients never made a resolver ask
within the log (a resolver's subnets are the triggering clients', a sample),
clients whose resolvers send no client subnet, and answers scoped to a subnet
(a zone that answers per client network makes a resolver keep one answer per
subnet). `Linked` says how many of the access log's clients were linked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sim.fit.networks import NetworkTally


@dataclass(frozen=True)
class Weight:
    clients: float  # access-log clients behind the resolver (split networks: its part)
    requests: float
    exclusive: tuple[int, ...]  # networks whose queries for the name all came to this resolver
    families: dict[str, float] = field(default_factory=dict)  # its clients by user-agent family


@dataclass(frozen=True)
class Linked:
    clients: int  # distinct access-log clients in a network some resolver asked for
    split: int  # of them, in networks seen from more than one resolver
    networks: int  # distinct client networks in the DNS log's queries for the name
    with_clients: int  # of them, holding at least one access-log client


def link(ecs: dict[int, dict[int, int]], networks: NetworkTally) -> tuple[dict[int, Weight], Linked]:
    """`ecs`: resolver -> network -> queries for the service name carrying that subnet."""
    by_network: dict[int, dict[int, int]] = defaultdict(dict)
    for resolver, nets in ecs.items():
        for net, n in nets.items():
            by_network[net][resolver] = n
    clients: dict[int, float] = defaultdict(float)
    requests: dict[int, float] = defaultdict(float)
    exclusive: dict[int, list[int]] = defaultdict(list)
    families: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    linked, split, with_clients = set(), set(), 0
    for net, resolvers in by_network.items():
        if len(resolvers) == 1:
            exclusive[next(iter(resolvers))].append(net)
        found = networks.networks.get(net)
        if found is None or not found.clients:
            continue
        with_clients += 1
        linked |= found.clients
        if len(resolvers) > 1:
            split |= found.clients
        total = sum(resolvers.values())
        by_family: dict[str, int] = defaultdict(int)
        for _, fam in found.clients:
            by_family[fam] += 1
        for resolver, n in resolvers.items():
            clients[resolver] += len(found.clients) * n / total
            requests[resolver] += found.requests * n / total
            for fam, k in by_family.items():
                families[resolver][fam] += k * n / total
    weights = {r: Weight(clients[r], requests[r], tuple(exclusive[r]), dict(families[r])) for r in ecs}
    return weights, Linked(len(linked), len(split), len(by_network), with_clients)
