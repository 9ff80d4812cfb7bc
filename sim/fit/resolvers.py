"""Resolvers from the authoritative server's query log: how many, their share, how long they cache.

A resolver asks again for the service name when its cached answer has
expired and one of its clients asks: each gap between its queries (per
record type) is its cache lifetime L plus the wait for the next client
lookup. So the shortest gap estimates L, and the spread of the gaps above
it says whether L itself varies. Per resolver, against the TTL:

- `cap`: L below (1 - `TOLERANCE`) x TTL (kept at most L, `max_ttl: L`);
- `floor`: L above (1 + `TOLERANCE`) x TTL (kept at least L, `min_ttl: L`);
- `extend` (stretching): the mean gap exceeds the shortest by more than
  `STRETCH` x max(TTL, L): it keeps the answer a varying time past the
  TTL; `extra` is its mean gap less the TTL and less the wait for the next
  lookup (`lookup_wait`). The mean, not the median: a
  stretch drawn afresh per answer (an exponential one, say) shows in the
  mean excess over the shortest gap with half the scatter of the median's,
  which on the few gaps a short log holds (5 or so, each a TTL plus a
  stretch) missed a third of the stretchers (tests/fit/test_resolvers.py
  holds the chance at its closed form);
- `honor` otherwise.

Each gap is a lifetime plus the wait, after expiry, for the next client
lookup that reaches the resolver. Where the lifetime is known, the TTL of an
honouring resolver, the rest of its mean gap is that wait:
`lookup_wait` is the median over honouring resolvers of their mean gap less
the TTL, and a stretcher's extra has it taken off (the clients spread over
the resolvers alike, as the share of resolvers already assumes; docs/fit.md).

Gaps under `DUPLICATE` (a retransmission, or A and AAAA racing) are
dropped. A resolver with fewer than `MIN_GAPS` gaps cannot be classified:
it is counted, and its queries are left out of the policy shares.

A resolver with too few gaps whose clients, linked to it by EDNS client
subnet, went on looking the name up long past its one query is `forever`
(sim.fit.forever says how it is told from a quiet one).

Shares are given three ways: of resolvers, of their queries for the service
name, and, where the queries carry EDNS client subnet, of the access log's
clients and requests behind them (sim.fit.linking). docs/fit.md says which
the scenario's `share` is and why.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from sim.fit.estimate import Estimate, quantile_interval, ratio_share
from sim.fit.forever import is_forever, kept_at_least
from sim.fit.linking import Linked, link
from sim.fit.networks import NetworkTally, prefix_of, subnet_key
from sim.fit.records import Query

TOLERANCE = 0.15  # [choice] docs/references.md, "Fitting logs": a lifetime within 15% of the TTL is honouring it
STRETCH = 0.35  # [choice] docs/references.md, "Fitting logs": mean gap over the shortest by 0.35 TTL: the lifetime itself varies
DUPLICATE = 1.0  # s; [choice] docs/references.md, "Fitting logs"
MIN_GAPS = 3  # [choice] docs/references.md, "Fitting logs"
POLICIES = ("honor", "floor", "cap", "extend", "forever")
ECS_COVERAGE = 0.9  # [choice] docs/references.md, "Fitting logs": shares by clients when 90% of classified resolvers send client subnets
MAX_SUBNETS = 1_000_000  # (name, resolver, network) triples kept; past it subnets are counted as dropped


class QueryTally:
    def __init__(self) -> None:
        self.times: dict[str, dict[tuple[int, str], list[float]]] = defaultdict(lambda: defaultdict(list))
        self.names: dict[str, int] = defaultdict(int)
        # name -> resolver -> network -> queries carrying that client subnet
        self.ecs: dict[str, dict[int, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
        self.prefixes: set[tuple[int, int]] = set()  # (IP version, source prefix length) seen
        self.kept, self.dropped = 0, 0

    def add(self, q: Query) -> None:
        self.names[q.name] += 1
        key = hash(q.resolver)
        self.times[q.name][(key, q.qtype)].append(q.t)
        if q.subnet:
            self._subnet(q.name, key, q.subnet)

    def _subnet(self, name: str, resolver: int, subnet: str) -> None:
        net = subnet_key(subnet)
        if net is None:
            return
        nets = self.ecs[name].get(resolver)
        if nets is None or net not in nets:
            if self.kept >= MAX_SUBNETS:
                self.dropped += 1
                return
            self.kept += 1
            nets = self.ecs[name][resolver]
            prefix = prefix_of(subnet)
            if prefix is not None:
                self.prefixes.add(prefix)
        nets[net] = nets.get(net, 0) + 1

    def busiest_name(self) -> str | None:
        return max(self.names, key=self.names.__getitem__) if self.names else None


@dataclass(frozen=True)
class Resolver:
    key: int  # a hash of its address, never the address
    queries: int
    policy: str | None  # None: too few gaps
    lifetime: float  # shortest gap (s); forever: how long it kept its last answer at least
    mean_gap: float
    gaps: np.ndarray
    last: float = math.nan  # its last query's time
    clients: float = math.nan  # access-log clients behind it (sim.fit.linking); nan: it sent no client subnet
    requests: float = math.nan
    families: dict[str, float] = field(default_factory=dict)  # its clients by user-agent family


@dataclass(frozen=True)
class ResolverFit:
    name: str
    ttl: float
    resolvers: list[Resolver]
    query_share: dict[str, Estimate]  # policy -> share of the classified resolvers' queries
    count_share: dict[str, Estimate]  # policy -> share of classified resolvers (same interval rule)
    value: dict[str, Estimate]  # policy -> its parameter (max_ttl, min_ttl, extra mean) over its resolvers
    with_subnet: int  # resolvers whose queries for the name carried EDNS client subnet
    subnets: int  # distinct client networks in those queries
    client_share: dict[str, Estimate] = field(default_factory=dict)  # over the classified resolvers with subnets
    request_share: dict[str, Estimate] = field(default_factory=dict)
    basis: str = "resolvers"  # what the scenario's share is: "resolvers" or "clients"
    linked: Linked | None = None
    access_clients: int = 0  # clients in the access log (the cohorts' seen)
    dropped_subnets: int = 0  # (resolver, network) pairs past MAX_SUBNETS, not kept
    wait: float = 0.0  # the mean wait for the next lookup after expiry, taken off the extend extra (lookup_wait)


def classify(gaps: np.ndarray, ttl: float) -> tuple[str | None, float]:
    g = gaps[gaps >= DUPLICATE]
    if g.size < MIN_GAPS:
        return None, math.nan
    shortest, mean = float(g.min()), float(g.mean())
    if mean - shortest > STRETCH * max(ttl, shortest):
        return "extend", shortest
    if shortest < (1 - TOLERANCE) * ttl:
        return "cap", shortest
    if shortest > (1 + TOLERANCE) * ttl:
        return "floor", shortest
    return "honor", shortest


def _resolvers(tally: QueryTally, name: str, ttl: float) -> list[Resolver]:
    by_resolver: dict[int, list[np.ndarray]] = defaultdict(list)
    last: dict[int, float] = defaultdict(lambda: -math.inf)
    for (key, _qtype), times in tally.times.get(name, {}).items():
        by_resolver[key].append(np.diff(np.sort(np.asarray(times))))
        last[key] = max(last[key], max(times))
    out = []
    for key, parts in by_resolver.items():
        gaps = np.concatenate(parts)
        policy, lifetime = classify(gaps, ttl)
        kept = gaps[gaps >= DUPLICATE]
        queries = int(gaps.size + len(parts))
        out.append(Resolver(key, queries, policy, lifetime, float(kept.mean()) if kept.size else math.nan, kept,
                            last[key]))
    return out


def lookup_wait(resolvers: list[Resolver], ttl: float) -> float:
    """The mean wait after a cache's expiry for the next client lookup: the median over
    honouring resolvers of their mean gap less the TTL (their lifetime), never below 0;
    0 without an honouring resolver (the extra then keeps the wait)."""
    waits = [r.mean_gap - ttl for r in resolvers if r.policy == "honor"]
    return max(0.0, float(np.median(waits))) if waits else 0.0


def _value(policy: str, members: list[Resolver], ttl: float, wait: float = 0.0) -> Estimate:
    if policy == "extend":
        values = np.array([r.mean_gap - ttl - wait for r in members])
    else:
        values = np.array([r.lifetime for r in members])
    return quantile_interval(values, 0.5)


def _shares(known: list[Resolver], weights: np.ndarray) -> dict[str, Estimate]:
    return {p: ratio_share(weights, np.array([r.policy == p for r in known])) for p in POLICIES
            if any(r.policy == p for r in known)}


def _linked(resolvers: list[Resolver], ecs: dict[int, dict[int, int]], networks: NetworkTally,
            ttl: float) -> tuple[list[Resolver], Linked]:
    """Each resolver with its clients and requests, and `forever` where its clients show it."""
    weights, linked = link(ecs, networks)
    out = []
    for r in resolvers:
        w = weights.get(r.key)
        if w is None:
            out.append(r)
            continue
        r = replace(r, clients=w.clients, requests=w.requests, families=w.families)
        if r.policy is None:
            bound = kept_at_least(r.last, w.exclusive, networks, ttl, TOLERANCE)
            if is_forever(bound, ttl):
                r = replace(r, policy="forever", lifetime=bound)
        out.append(r)
    return out, linked


def by_family(resolvers: list[Resolver]) -> dict[str, dict[str, float]]:
    """Each family's linked clients by the policy of the resolvers behind them (None: unclassified)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in resolvers:
        for fam, k in r.families.items():
            out[fam][r.policy or "unclassified"] += k
    return {fam: dict(d) for fam, d in out.items()}


def fit_resolvers(tally: QueryTally, name: str, ttl: float, networks: NetworkTally | None = None,
                  access_clients: int = 0) -> ResolverFit:
    """`networks`: the access log's clients by network, when the DNS log carries client subnets."""
    resolvers = _resolvers(tally, name, ttl)
    ecs = tally.ecs.get(name, {})
    linked = None
    if networks is not None and ecs:
        resolvers, linked = _linked(resolvers, ecs, networks, ttl)
    known = [r for r in resolvers if r.policy is not None]
    query_share = _shares(known, np.array([r.queries for r in known], dtype=float))
    count_share = _shares(known, np.ones(len(known)))
    wait = lookup_wait(known, ttl)
    value = {p: _value(p, [r for r in known if r.policy == p], ttl, wait) for p in query_share}
    with_ecs = [r for r in known if r.clients == r.clients]  # not nan: it sent client subnets
    client_share = _shares(with_ecs, np.array([r.clients for r in with_ecs]))
    request_share = _shares(with_ecs, np.array([r.requests for r in with_ecs]))
    basis = "resolvers"
    if (known and len(with_ecs) >= ECS_COVERAGE * len(known) and sum(r.clients for r in with_ecs) > 0
            and all(e.value == e.value for e in client_share.values())):
        basis = "clients"
    return ResolverFit(name, ttl, resolvers, query_share, count_share, value, len(ecs),
                       len({net for nets in ecs.values() for net in nets}), client_share, request_share, basis,
                       linked, access_clients, tally.dropped, wait)


def guess_ttl(tally: QueryTally, name: str) -> float:
    """Without --ttl: the median shortest gap over the resolvers with enough queries (most honour the TTL)."""
    shortest = []
    for times in tally.times.get(name, {}).values():
        g = np.diff(np.sort(np.asarray(times)))
        g = g[g >= DUPLICATE]
        if g.size >= MIN_GAPS:
            shortest.append(float(g.min()))
    return float(np.median(shortest)) if shortest else math.nan
