"""Node scaling behind a name that resolves to the nodes: which node a request meets.

The model publishes a balancer's new node set at once when a node joins
(sim.model.background._add_node_later); a resolver answers it from its first fetch of
the balancer's records after that, and a client uses it from its first lookup after
that (the same follow as a record change, sim.fast.dns.switch_times, with the join as
the moment the change propagated). A client picks a node from the answer it holds,
rotating through it (sim.model.requests): so a request of a client that holds an
answer of k nodes meets each of those k with chance 1/k, and the new node takes only
the requests of clients whose answer lists it.

The joins are followed together, not one by one: a resolver's fetches of the balancer's
records are one renewal process, so a fetch after the second join also brings the first
node to a resolver that had not fetched since the first (`reaches`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.fast.dns import resolver_expiry
from sim.fast.intensity import Intensity
from sim.fast.population import Population


def node_shares(nodes: int, reaches: list[np.ndarray], rate: np.ndarray, seconds: int) -> np.ndarray:
    """Per second and node, the share of a balancer's requests that node meets.

    `nodes`: the balancer's nodes at the start; `reaches[k]`: per client, its first
    request that uses an answer published after the (k+1)-th join (inf: none in the run);
    `rate`: per client, its share of the requests (the long-run rate)."""
    joins = len(reaches)
    mid = np.arange(seconds, dtype=float) + 0.5  # a client that moves within a second counts for half of it
    total = float(rate.sum())
    newer = np.ones(seconds)  # share of requests from clients holding an answer with at least k joins
    held = np.zeros((seconds, joins + 1))
    before = np.full(len(rate), -np.inf)
    for k, reach in enumerate(reaches):
        # A later answer is fetched after an earlier one: a client's reaches are in order.
        before = np.maximum(before, reach)
        order = np.argsort(before)
        weights = np.concatenate([[0.0], np.cumsum(rate[order])])
        got = weights[np.searchsorted(before[order], mid, side="right")] / total if total > 0 else np.zeros(seconds)
        held[:, k] = newer - got
        newer = got
    held[:, joins] = newer
    out = np.zeros((seconds, nodes + joins))
    for k in range(joins + 1):
        out[:, : nodes + k] += held[:, k : k + 1] / (nodes + k)
    return out


def reaches(pop: Population, shape: Intensity, q: np.ndarray, joins: list[float], ttl: float,
            rng: np.random.Generator) -> list[np.ndarray]:
    """Per join and client, its first request that uses an answer listing the joined node,
    for clients with no stub cache (each request is a query to the resolver; sim.fast.engine
    refuses the others). A resolver answers the new node set from its first fetch of the
    balancer's records (TTL `ttl`) after the join: the first query after the record it held
    then expires (drawn from steady state at the first join; then fetched at the first
    query after each expiry, queries at `q` shaped by the traffic). Every request from
    that moment on (`opens`) gets it, so a client's reach is its first request after it,
    and the resolver's fetch is the first of its clients' reaches."""
    out: list[np.ndarray] = []
    if not joins:
        return out
    n, rate = len(q), pop.rate
    expiry = resolver_expiry(pop, ttl, q, joins[0], rng)  # the record held at the first join runs out
    fetched = np.full(n, -math.inf)  # the resolver's last fetch followed
    opens = np.full(n, -math.inf)
    reach = np.full(pop.size, -math.inf)
    for at in joins:
        step = fetched <= at  # the others fetched after this join too: their `opens` stands
        while True:
            due = np.flatnonzero(step & (expiry <= at))
            if len(due) == 0:
                break
            # A fetch before the join (an old answer) holds for a lifetime; with none, the
            # resolver's next query, after the join, fetches.
            nxt = shape.next_after(expiry[due], q[due], rng)
            before = nxt <= at
            expiry[due[before]] = nxt[before] + _lifetimes(pop, due[before], ttl, rng)
            step[due[~before]] = False
            opens[due[~before]] = at
        renew = step & (expiry > at)
        opens[renew] = expiry[renew]
        here = opens[pop.resolver]
        fresh = reach < here  # a reach after `opens` is the first request after it already
        reach = reach.copy()
        reach[fresh] = shape.next_after(here[fresh], rate[fresh], rng)
        out.append(reach)
        # The resolver's fetch: its clients' first query after `opens`.
        first = np.full(n, np.inf)
        np.minimum.at(first, pop.resolver, reach)
        fetched = first
        expiry = np.where(np.isfinite(first), first + _lifetimes(pop, np.arange(n), ttl, rng), np.inf)
    return out


def _lifetimes(pop: Population, resolvers: np.ndarray, ttl: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(len(resolvers))
    groups = pop.resolver_group[resolvers]
    for g, policy in enumerate(pop.group_policies):
        sel = groups == g
        if sel.any():
            out[sel] = policy.lifetimes(ttl, rng, int(sel.sum()))
    return out
