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
  TTL; `extra` is its mean gap less the TTL. The mean, not the median: a
  stretch drawn afresh per answer (an exponential one, say) shows in the
  mean excess over the shortest gap with half the scatter of the median's,
  which on the few gaps a short log holds (5 or so, each a TTL plus a
  stretch) missed a third of the stretchers (tests/fit/test_resolvers.py
  holds the chance at its closed form);
- `honor` otherwise.

Gaps under `DUPLICATE` (a retransmission, or A and AAAA racing) are
dropped. A resolver with fewer than `MIN_GAPS` gaps cannot be classified:
it is counted, and its queries are left out of the policy shares.

Shares are weighted by queries: a resolver's share is its share of the
queries for the service name. That is not the share of clients behind it
(docs/fit.md says why and what the scenario's `share` is set to).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from sim.fit.estimate import Estimate, quantile_interval, ratio_share
from sim.fit.records import Query

TOLERANCE = 0.15  # [choice] docs/references.md, "Fitting logs": a lifetime within 15% of the TTL is honouring it
STRETCH = 0.35  # [choice] docs/references.md, "Fitting logs": mean gap over the shortest by 0.35 TTL: the lifetime itself varies
DUPLICATE = 1.0  # s; [choice] docs/references.md, "Fitting logs"
MIN_GAPS = 3  # [choice] docs/references.md, "Fitting logs"
POLICIES = ("honor", "floor", "cap", "extend")
MAX_SUBNETS = 1000  # client subnets counted per resolver (a count, not a list)


class QueryTally:
    def __init__(self) -> None:
        self.times: dict[str, dict[tuple[int, str], list[float]]] = defaultdict(lambda: defaultdict(list))
        self.names: dict[str, int] = defaultdict(int)
        self.subnets: dict[int, set[str]] = defaultdict(set)

    def add(self, q: Query) -> None:
        self.names[q.name] += 1
        key = hash(q.resolver)
        self.times[q.name][(key, q.qtype)].append(q.t)
        if q.subnet and len(self.subnets[key]) < MAX_SUBNETS:
            self.subnets[key].add(q.subnet)

    def busiest_name(self) -> str | None:
        return max(self.names, key=self.names.__getitem__) if self.names else None


@dataclass(frozen=True)
class Resolver:
    key: int  # a hash of its address, never the address
    queries: int
    policy: str | None  # None: too few gaps
    lifetime: float  # shortest gap (s)
    mean_gap: float
    gaps: np.ndarray


@dataclass(frozen=True)
class ResolverFit:
    name: str
    ttl: float
    resolvers: list[Resolver]
    query_share: dict[str, Estimate]  # policy -> share of the classified resolvers' queries
    count_share: dict[str, Estimate]  # policy -> share of classified resolvers (same interval rule)
    value: dict[str, Estimate]  # policy -> its parameter (max_ttl, min_ttl, extra mean) over its resolvers
    with_subnet: int  # resolvers whose queries carried EDNS client subnet
    subnets: int


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
    for (key, _qtype), times in tally.times.get(name, {}).items():
        by_resolver[key].append(np.diff(np.sort(np.asarray(times))))
    out = []
    for key, parts in by_resolver.items():
        gaps = np.concatenate(parts)
        policy, lifetime = classify(gaps, ttl)
        kept = gaps[gaps >= DUPLICATE]
        queries = int(gaps.size + len(parts))
        out.append(Resolver(key, queries, policy, lifetime, float(kept.mean()) if kept.size else math.nan, kept))
    return out


def _value(policy: str, members: list[Resolver], ttl: float) -> Estimate:
    if policy == "extend":
        values = np.array([r.mean_gap - ttl for r in members])
    else:
        values = np.array([r.lifetime for r in members])
    return quantile_interval(values, 0.5)


def fit_resolvers(tally: QueryTally, name: str, ttl: float) -> ResolverFit:
    resolvers = _resolvers(tally, name, ttl)
    known = [r for r in resolvers if r.policy is not None]
    weights = np.array([r.queries for r in known], dtype=float)
    ones = np.ones(len(known))
    query_share, count_share, value = {}, {}, {}
    for policy in POLICIES:
        member = np.array([r.policy == policy for r in known])
        if not member.any():
            continue
        query_share[policy] = ratio_share(weights, member)
        count_share[policy] = ratio_share(ones, member)
        value[policy] = _value(policy, [r for r in known if r.policy == policy], ttl)
    subnets = [len(s) for k, s in tally.subnets.items()]
    return ResolverFit(name, ttl, resolvers, query_share, count_share, value,
                       sum(1 for n in subnets if n), sum(subnets))


def guess_ttl(tally: QueryTally, name: str) -> float:
    """Without --ttl: the median shortest gap over the resolvers with enough queries (most honour the TTL)."""
    shortest = []
    for times in tally.times.get(name, {}).values():
        g = np.diff(np.sort(np.asarray(times)))
        g = g[g >= DUPLICATE]
        if g.size >= MIN_GAPS:
            shortest.append(float(g.min()))
    return float(np.median(shortest)) if shortest else math.nan
