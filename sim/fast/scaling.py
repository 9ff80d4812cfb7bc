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
from dataclasses import dataclass

import numpy as np

from sim.fast.churn import Move, Replacements, resolver_cycles
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


# Stub kinds whose clients are followed answer by answer (`held_shares`): each holds an answer
# for the stub's lifetime of it, and sends every request of that hold to one node.
STUBS = ("honor", "floor", "cap")


def held_shares(pop: Population, shape: Intensity, q: np.ndarray, joins: list[float], nodes: int, a_ttl: float,
                cname_ttl: float | None, rotate: bool, seconds: int, rng: np.random.Generator,
                move: Move | None = None) -> Held:
    """Per second and node, the share of a balancer's requests that node meets, for clients
    with a stub cache (STUBS) or none: `node_shares`' result for such a population; and
    which node each client with a stub cache sends its requests to, when (`Held`).

    The resolvers' fetches of the balancer's A records (TTL `a_ttl`) are followed over the
    run as node churn follows them (sim.fast.churn.resolver_cycles, each fetch holding the
    node list of its moment: the k-th after the k-th join); behind a CNAME (`cname_ttl`) the
    CNAME's fetches too, as the model's resolver caches the two apart. A client with no
    stub cache sends each request to the next node of its resolver's current answer (1/k
    each of k nodes). A client with a stub cache is followed from stub fetch to stub fetch
    (sim.model.requests): primed as the model primes it (holding the first nodes with the
    chance of steady state, its rotation uniform on them), it keeps an answer for the
    stub's lifetime of its remaining TTL (the shorter-lived record of a CNAME chain), and
    fetches again at its first request after that, each answer moving its rotation on by
    one; every request in between goes to position `rotation` of the answer (position 0
    when answers do not rotate). So a client's node is set by its count of answers, which
    the model's priming leaves nearly the same for all: after a join, the new position
    takes the clients whose count lands on it, not a share of every client.

    The model primes each resolver's records and each stub apart, and a stub that holds an
    answer does not ask: so a resolver's first fetch after its primed record expired is its
    clients' first query after that (a one-client resolver's, its stub's next fetch), drawn
    here from the stubs' priming and handed to resolver_cycles (`primed`); its later
    fetches are its clients' first query after each expiry, as churn draws them.

    Through a planned DNS change away from the balancer (`move`, as churn follows it:
    sim.fast.churn.Move) a fetch from the change on answers the new target: a client that
    holds such an answer is not on this balancer, and the shares are among those that are."""
    from sim.fast.churn_requests import _Lookup, query_rate

    end, n_res = shape.end, len(pop.resolver_group)
    lists = len(joins) + 1
    # Only the lists' times matter here (no node retires): list k holds nodes + k nodes.
    reps = Replacements(np.asarray(joins, dtype=float), np.full((lists, nodes), np.inf))
    if move is not None:
        reps = reps.with_target()  # list `lists`: the new target's answer
    asks = np.zeros(pop.size)
    for c in pop.cohorts:
        asks[c.members] = query_rate(c, a_ttl)
    a_exp0 = resolver_expiry(pop, a_ttl, q, 0.0, rng)
    c_exp0 = np.full(n_res, np.inf) if cname_ttl is None else resolver_expiry(pop, cname_ttl, q, 0.0, rng)
    # Until the first of a resolver's primed records expires it answers the first nodes from its cache.
    cached = np.minimum(a_exp0, c_exp0)
    ttl0 = a_ttl if cname_ttl is None else min(a_ttl, cname_ttl)
    by_node = np.zeros((nodes + lists - 1, seconds + 1))  # clients with a stub: rate per node, as differences
    stubs = [_Stubs(pop, shape, c, nodes, ttl0, cached, rotate, by_node, rng) for c in pop.cohorts
             if c.stub.kind != "none" and len(c.members) and c.rate > 0]
    # Each record's first fetch after its primed expiry: its clients' first query after it.
    first_a, first_c = np.full(n_res, np.inf), np.full(n_res, np.inf)
    plain = np.zeros(pop.size, dtype=bool)
    for c in pop.cohorts:
        if c.stub.kind == "none" and len(c.members) and c.rate > 0:
            plain[c.members] = True
    who = np.flatnonzero(plain)
    for exp0, first in ((a_exp0, first_a), (c_exp0, first_c)):
        if len(who):
            np.minimum.at(first, pop.resolver[who], shape.next_after(exp0[pop.resolver[who]], pop.rate[who], rng))
        for st in stubs:
            at = st.pending
            late = at < exp0[st.res]  # asks after its resolver's other record expired: a query later
            if late.any():
                at = at.copy()
                at[late] = shape.next_after(exp0[st.res[late]], st.weight[late], rng)
            np.minimum.at(first, st.res, at)
    cycles = resolver_cycles(pop, shape, reps, a_ttl, q, asks, rng, move, primed=(a_exp0, first_a))
    answer = _Lookup(cycles, reps, a_ttl, end)
    cname = None
    if cname_ttl is not None:
        cname = _Lookup(resolver_cycles(pop, shape, reps, cname_ttl, q, asks, rng, primed=(c_exp0, first_c)), reps,
                        cname_ttl, end)
    for st in stubs:
        st.follow(answer, cname)
    by_list = np.zeros((lists, seconds + 1))  # clients with no stub: rate per list held, as differences
    _resolver_lists(pop, cycles, plain, by_list, end)
    load = np.zeros((seconds, nodes + lists - 1))
    held = np.cumsum(by_list, axis=1)[:, :seconds]
    for k in range(lists):
        load[:, : nodes + k] += held[k][:, None] / (nodes + k)
    load += np.cumsum(by_node, axis=1)[:, :seconds].T
    total = load.sum(axis=1, keepdims=True)  # the rate of the clients on this balancer
    parts = [h for st in stubs for h in st.holds]
    who, node, lo, hi = (np.concatenate(x) for x in zip(*parts, strict=True)) if parts else \
        (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))
    order = np.lexsort((lo, who))
    shares = np.divide(load, total, out=np.zeros(load.shape), where=total > 0)
    return Held(shares, who[order], node[order], lo[order], hi[order])


@dataclass(frozen=True)
class Held:
    """`held_shares`' result: per second and node the share of the requests (`shares`), and
    the answers held by clients with a stub cache, sorted by client then time: client,
    node, from when, until when."""

    shares: np.ndarray
    who: np.ndarray
    node: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def node_at(self, who: np.ndarray, t: np.ndarray, end: float) -> np.ndarray:
        """The node client `who` sends a request at `t` to (-1: no stub, it goes round its answer)."""
        off = end + 2.0
        keys = self.who * off + self.lo
        i = np.searchsorted(keys, who * off + np.minimum(t, end), side="right") - 1
        j = np.maximum(i, 0)
        mine = (i >= 0) & (self.who[j] == who) if len(self.who) else np.zeros(len(who), dtype=bool)
        return np.where(mine, self.node[j] if len(self.who) else 0, -1)


def shed_per_node(counts: np.ndarray, shares: np.ndarray, capacity: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sim.fast.load.shed_by_share per node: the requests each node meets per second, and
    those it sheds (beyond its capacity in their second)."""
    met = np.zeros(shares.shape, dtype=np.int64)
    whole = int(math.floor(capacity))
    left = counts.copy()
    rest = np.ones(len(counts))
    for i in range(shares.shape[1]):
        p = np.divide(shares[:, i], rest, out=np.ones(len(counts)), where=rest > 1e-12)
        met[:, i] = rng.binomial(left, np.clip(p, 0.0, 1.0)) if i + 1 < shares.shape[1] else left
        left = left - met[:, i]
        rest = rest - shares[:, i]
    return met, np.maximum(met - whole, 0)


def _add(diff: np.ndarray, row: np.ndarray, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray) -> None:
    """`weight` on `row` over the seconds whose middle falls in [lo, hi) (as differences)."""
    seconds = diff.shape[1] - 1
    a = np.clip(np.ceil(lo - 0.5), 0, seconds).astype(np.int64)
    b = np.clip(np.ceil(hi - 0.5), 0, seconds).astype(np.int64)
    np.add.at(diff, (row, a), weight)
    np.add.at(diff, (row, b), -weight)


def _resolver_lists(pop: Population, cycles, plain: np.ndarray, by_list: np.ndarray,  # type: ignore[no-untyped-def]
                    end: float) -> None:
    """The rate of clients with no stub by the list their resolver holds: each fetch's list
    from the fetch until the resolver's next (their next query is that fetch), the first
    list before a resolver's first fetch."""
    weight = np.bincount(pop.resolver[plain], weights=pop.rate[plain], minlength=len(pop.resolver_group))
    res, fetched, list_ = cycles.res, cycles.fetched, cycles.list_
    if len(res):
        same = res[1:] == res[:-1]
        nxt = np.full(len(res), end)
        nxt[:-1] = np.where(same, fetched[1:], end)
        here = list_ < len(by_list)  # not the new target's answer after a planned change
        _add(by_list, list_[here], fetched[here], nxt[here], weight[res][here])
        first = np.flatnonzero(np.concatenate([[True], ~same]))  # each resolver's first fetch
        _add(by_list, np.zeros(len(first), dtype=np.int64), np.zeros(len(first)), fetched[first], weight[res[first]])
    fetching = np.zeros(len(weight), dtype=bool)
    fetching[res] = True
    idle = np.flatnonzero(~fetching & (weight > 0))  # no fetch in the run: the first list throughout
    _add(by_list, np.zeros(len(idle), dtype=np.int64), np.zeros(len(idle)), np.full(len(idle), end), weight[idle])


class _Stubs:
    """A cohort's clients from stub fetch to stub fetch (see `held_shares`), their rate added
    per node over each answer held: primed, then through their resolver's primed records
    (`cached`, per resolver: until when it answers the first nodes from its cache), then
    (`follow`) through the resolvers' fetches."""

    def __init__(self, pop: Population, shape: Intensity, cohort, nodes: int, ttl0: float,  # type: ignore[no-untyped-def]
                 cached: np.ndarray, rotate: bool, by_node: np.ndarray, rng: np.random.Generator) -> None:
        self.lists = by_node.shape[0] - nodes + 1
        who = cohort.members
        n, rate, stub = len(who), cohort.rate, cohort.stub
        self.shape, self.stub, self.by_node, self.rng, self.nodes = shape, stub, by_node, rng, nodes
        self.who, self.res, self.weight = who, pop.resolver[who], pop.rate[who]
        self.step = 1 if rotate else 0
        self.holds: list[tuple[np.ndarray, ...]] = []  # (client, node, from, until) of each answer held
        # The model's priming (sim.model.building._prime_client): the first nodes held with the
        # chance of steady state, until an equilibrium residual; the rotation uniform on them.
        life0 = float(stub.lifetime(ttl0, rng))
        present = rng.random(n) < (1.0 if math.isinf(life0) else life0 / (life0 + 1.0 / rate))
        expires = np.where(present, stub.residuals(ttl0, rng, n), 0.0)
        self.rot = rng.integers(nodes, size=n)
        self.size = np.full(n, nodes)
        self.since = np.zeros(n)
        self.pending = shape.next_after(expires, self.weight, rng)  # the next fetch: the first request after expiry
        # Fetches from the resolver's primed cache: the first nodes, until the cache's expiry.
        live = np.flatnonzero(self.pending < cached[self.res])
        while len(live):
            at = self.pending[live]
            self._hold(live, at)
            self.size[live] = nodes
            left = cached[self.res[live]] - at
            self.pending[live] = shape.next_after(at + stub.lifetimes_for(left, rng), self.weight[live], rng)
            live = live[self.pending[live] < cached[self.res[live]]]

    def _hold(self, live: np.ndarray, at: np.ndarray) -> None:
        """The answer held by `live` until `at` (its rate on that answer's node), then one more kept."""
        size = self.size[live]
        node = np.where(size > 0, (self.rot[live] * self.step) % np.maximum(size, 1), -1)  # -1: the new target
        on = node >= 0
        _add(self.by_node, node[on], self.since[live][on], np.broadcast_to(at, len(live))[on], self.weight[live][on])
        self.holds.append((self.who[live], node, self.since[live].copy(), np.asarray(at, dtype=float)))
        self.rot[live] += 1
        self.since[live] = at

    def follow(self, answer, cname) -> None:  # type: ignore[no-untyped-def]
        """Every fetch from the pending ones on, each answered by the resolver's fetch of its moment."""
        end, stub, rng = self.shape.end, self.stub, self.rng
        live = np.arange(len(self.res))
        while len(live):
            at = self.pending[live]
            done = at >= end
            stop = live[done]
            self._hold(stop, np.full(len(stop), end))
            live, at = live[~done], at[~done]
            self._hold(live, at)
            got, expires, _ = answer.answer(self.res[live], at)
            if cname is not None:
                expires = np.minimum(expires, cname.answer(self.res[live], at)[1])  # the chain's shortest-lived record
            # The new target's answer (after a planned change) holds none of this balancer's nodes.
            self.size[live] = np.where(got < self.lists, self.nodes + got, 0)
            self.pending[live] = self.shape.next_after(at + stub.lifetimes_for(expires - at, rng), self.weight[live],
                                                       rng)


def first_failures(held: Held, node_share: np.ndarray, shape: Intensity, rate: np.ndarray, since: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per client with a stub cache (`held`), its first request shed from `since` on (inf:
    none) and how many are shed: each request goes to the node of the answer it holds, which
    sheds the last `node_share` of its second (the model's token bucket admits a second's
    first requests), so a client meets failures at rate `rate` x that share while it holds
    the node. A client on a node that does not shed does not fail, however much the others
    do: its first failure is when its node starts shedding (the model's recovery time runs
    from the fault, sim.model.requests._finish)."""
    n = len(rate)
    first, count = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
    if len(held.who) == 0:
        return first, count
    seconds = node_share.shape[0]
    per_second = shape.measure(np.arange(seconds, dtype=float), np.arange(1, seconds + 1, dtype=float))
    # Per node, the cumulative hazard of a request at unit rate: H[j, s] up to second s.
    hazard = np.zeros((node_share.shape[1], seconds + 1))
    hazard[:, 1:] = np.cumsum((per_second[:, None] * node_share).T, axis=1)
    grid = np.arange(seconds + 1, dtype=float)
    lo, hi = np.maximum(held.lo, since), np.minimum(held.hi, float(seconds))
    on = (hi > lo) & (held.node >= 0)
    who, node, lo, hi = held.who[on], held.node[on], lo[on], hi[on]
    h_lo, h_hi = np.zeros(len(who)), np.zeros(len(who))
    for j in range(hazard.shape[0]):
        mine = node == j
        h_lo[mine] = np.interp(lo[mine], grid, hazard[j])
        h_hi[mine] = np.interp(hi[mine], grid, hazard[j])
    mass = rate[who] * (h_hi - h_lo)
    total = np.bincount(who, weights=mass, minlength=n)
    # The first failure: a unit exponential of hazard, found hold by hold (sorted by client, time).
    edge = rng.exponential(1.0, n)
    start = np.concatenate([[0], np.flatnonzero(who[1:] != who[:-1]) + 1]) if len(who) else np.zeros(0, dtype=int)
    cum = np.cumsum(mass)
    before = cum - mass - np.repeat((cum - mass)[start], np.diff(np.concatenate([start, [len(who)]])))
    hit = (before < edge[who]) & (before + mass >= edge[who])
    k = np.flatnonzero(hit)  # at most one hold per client
    target = h_lo[k] + (edge[who[k]] - before[k]) / rate[who[k]]
    at = np.empty(len(k))
    for j in range(hazard.shape[0]):
        mine = node[k] == j
        s = np.clip(np.searchsorted(hazard[j], target[mine], side="left") - 1, 0, seconds - 1)
        # In its second's shed tail.
        at[mine] = s + 1.0 - node_share[s, j] * rng.random(int(mine.sum()))
    first[who[k]] = np.maximum(at, np.maximum(lo[k], since))
    failed = np.isfinite(first)
    count[failed] = 1 + rng.poisson(np.maximum(total[failed] - edge[failed], 0.0))
    return first, count
