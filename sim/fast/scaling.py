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

A client with a stub cache sends every request of an answer it holds to one node, the
position its count of answers sets (sim.model.requests): `held_shares` follows such
clients with their resolvers fetch by fetch, through a planned DNS change away from the
balancer too, and `first_failures` draws their failures from their own node's shedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.fast.churn import Move
from sim.fast.dns import resolver_expiry
from sim.fast.intensity import Intensity
from sim.fast.population import Population, lets_go, resolver_lifetimes


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
            expiry[due[before]] = nxt[before] + resolver_lifetimes(pop, due[before], ttl, rng)
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
        expiry = np.where(np.isfinite(first), first + resolver_lifetimes(pop, np.arange(n), ttl, rng), np.inf)
    return out


# Stub kinds whose clients are followed answer by answer (`held_shares`): each holds an answer
# for the stub's lifetime of it, and sends every request of that hold to one node.
STUBS = ("honor", "floor", "fixed", "cap", "forever", "extend", "serve_stale")


def held_shares(pop: Population, shape: Intensity, joins: list[float], nodes: int, a_ttl: float,
                cname_ttl: float | None, rotate: bool, seconds: int, rng: np.random.Generator,
                move: Move | None = None, outage: tuple[float, float] | None = None, arriving: bool = False) -> Held:
    """Per second and node, the share of a balancer's requests that node meets, for clients
    with a stub cache (STUBS) or none: `node_shares`' result for such a population; and
    which node each client with a stub cache sends its requests to, when (`Held`).

    Each resolver's records are followed with its clients' stubs (`_Together`): the
    balancer's A records (TTL `a_ttl`; a fetch holds the node list of its moment, the k-th
    after the k-th join) and behind a CNAME (`cname_ttl`) the CNAME, cached apart as the
    model's resolver caches them. A client with no stub cache sends each request to the
    next node of its resolver's current answer (1/k each of k nodes). A client with a stub
    cache (sim.model.requests) is primed as the model primes it (holding the first nodes
    with the chance of steady state, its rotation uniform on them), keeps an answer for the
    stub's lifetime of its remaining TTL (the shorter-lived record of a chain), and fetches
    again at its first request after that, each answer moving its rotation on by one; every
    request in between goes to position `rotation` of the answer (position 0 when answers
    do not rotate). So a client's node is set by its count of answers, which the model's
    priming leaves nearly the same for all: after a join, the new position takes the
    clients whose count lands on it, not a share of every client.

    A resolver fetches at its clients' first query after its record expired: a stub that
    holds an answer does not ask, so that query is the first of its stubs' next fetches (a
    one-client resolver's, its stub's: the two stay in step, where a Poisson stream of
    queries, as churn draws them, would leave a fixed 30 s stub on a 60 s TTL fetching the
    new nodes some 15 s late) or of its stub-less clients' requests.

    Through a planned DNS change away from the balancer (`move`, as churn follows it:
    sim.fast.churn.Move) a fetch from the change on answers the new target: a client that
    holds such an answer is not on this balancer, and the shares are among those that are.
    Through an outage of our authoritative servers (`outage`, [start, end)) a resolver cannot
    fetch the records in our zone (behind a CNAME the CNAME; the balancer's own records are
    the provider's): a query that needs them fails, and so does the client's request, which
    leaves its stub empty (sim.model.dns), so its next query is its first request after the
    outage.

    `arriving`: the balancer is the change's target (the standby), not its origin: a client is
    on it from its first answer fetched after the change (as `move` reads it), none before."""
    lists = len(joins) + 1
    by_node = np.zeros((nodes + lists - 1, seconds + 1))  # clients with a stub: rate per node, as differences
    by_list = np.zeros((lists, seconds + 1))  # clients with no stub: rate per list held, as differences
    together = _Together(pop, shape, np.asarray(joins, dtype=float), nodes, a_ttl, cname_ttl, rotate, by_node,
                         rng, move, outage, arriving)
    together.run()
    _resolver_lists(pop, together.cycles(), together.plain, by_list, shape.end, lists if arriving else 0)
    weight = np.bincount(pop.resolver[together.plain], weights=pop.rate[together.plain], minlength=len(pop.resolver_group))
    for res, list_, lo, hi in together._failed:
        here = list_ < lists  # the clients of a resolver that failed to fetch are on no node
        _add(by_list, list_[here], lo[here], hi[here], -weight[res][here])
    load = np.zeros((seconds, nodes + lists - 1))
    held = np.cumsum(by_list, axis=1)[:, :seconds]
    for k in range(lists):
        load[:, : nodes + k] += held[k][:, None] / (nodes + k)
    load += np.cumsum(by_node, axis=1)[:, :seconds].T
    total = load.sum(axis=1, keepdims=True)  # the rate of the clients on this balancer
    who, node, lo, hi = together.holds()
    order = np.lexsort((lo, who))
    shares = np.divide(load, total, out=np.zeros(load.shape), where=total > 0)
    shares[total[:, 0] <= 0, :nodes] = 1.0 / nodes  # no client followed here: the first nodes alike
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
    whole = int(math.ceil(capacity))  # the model's admissions a second (sim.fast.load.shed)
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
                    end: float, first_list: int = 0) -> None:
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
        if first_list < len(by_list):
            _add(by_list, np.full(len(first), first_list), np.zeros(len(first)), fetched[first], weight[res[first]])
    fetching = np.zeros(len(weight), dtype=bool)
    fetching[res] = True
    idle = np.flatnonzero(~fetching & (weight > 0))  # no fetch in the run: the first list throughout
    if first_list < len(by_list):
        _add(by_list, np.full(len(idle), first_list), np.zeros(len(idle)), np.full(len(idle), end), weight[idle])


class _Cycles:
    """A resolver's fetches of the A records, sorted by resolver then time (as churn's Cycles)."""

    def __init__(self, res: np.ndarray, fetched: np.ndarray, list_: np.ndarray) -> None:
        order = np.lexsort((fetched, res))
        self.res, self.fetched, self.list_ = res[order], fetched[order], list_[order]


def _priming_rate(pop: Population, service_ttl: float, rng: np.random.Generator) -> np.ndarray:
    """Per resolver, the query rate the model primes it with (sim.model.building._resolver_load):
    a client whose stub lets go with the resolver's answer (`lets_go`) asks at its full rate;
    any other one query per stub cycle, the stub's lifetime of half the service TTL plus a
    request gap."""
    out = np.zeros(len(pop.resolver_group))
    for c in pop.cohorts:
        if len(c.members) == 0 or c.rate <= 0:
            continue
        life = float(c.stub.lifetime(service_ttl / 2, rng))
        if math.isinf(life) and c.restarts is not None:
            life = float(c.restarts.every.mean)  # an answer kept until the next restart
        if lets_go(c):
            np.add.at(out, pop.resolver[c.members], c.rate)
        elif not math.isinf(life):
            np.add.at(out, pop.resolver[c.members], 1.0 / (life + 1.0 / c.rate))
    return out



class _Together:
    """Resolvers and their clients' stubs followed together, fetch by fetch (see
    `held_shares`). Each round: every stub whose next fetch falls while its resolver's
    records are valid takes the cached answer; then every resolver none of whose stubs does
    fetches at its clients' first query (a stub's next fetch, or the first request of its
    clients with no stub after the expiry), renewing the records that expired."""

    def __init__(self, pop: Population, shape: Intensity, joins: np.ndarray, nodes: int,  # type: ignore[no-untyped-def]
                 a_ttl: float, cname_ttl: float | None, rotate: bool, by_node: np.ndarray, rng: np.random.Generator,
                 move, outage: tuple[float, float] | None = None, arriving: bool = False) -> None:
        self.pop, self.shape, self.joins, self.nodes, self.rng, self.move = pop, shape, joins, nodes, rng, move
        self.outage = outage
        # Resolvers whose clients' queries fail in the outage: (resolver, list held, from, to).
        self._failed: list[tuple[np.ndarray, ...]] = []
        self.a_ttl, self.cname_ttl, self.by_node, self.step = a_ttl, cname_ttl, by_node, 1 if rotate else 0
        self.lists = len(joins) + 1  # list `lists`: the new target's answer, after a planned change
        n_res = len(pop.resolver_group)
        # The resolvers' records as the model primes them: present with the first nodes, or absent,
        # with the chance its query rate gives, one query per stub cycle of each client, pooled
        # or not (sim.model.building._resolver_load).
        q = _priming_rate(pop, a_ttl if cname_ttl is None else cname_ttl, rng)
        self.a_exp = resolver_expiry(pop, a_ttl, q, 0.0, rng)
        self.c_exp = np.full(n_res, np.inf) if cname_ttl is None else resolver_expiry(pop, cname_ttl, q, 0.0, rng)
        self.fetched = np.where(self.a_exp > 0.0, 0.0, -np.inf)
        self.arriving = arriving  # the change's target: no client on it before its answer says so
        self.list_ = np.full(n_res, self.lists if arriving else 0, dtype=np.int64)
        self._cut()
        self.plain = np.zeros(pop.size, dtype=bool)
        stubbed = []
        for c in pop.cohorts:
            if len(c.members) and c.rate > 0:
                if c.stub.kind == "none" and c.reuse.keepalive <= 0:
                    self.plain[c.members] = True
                else:
                    stubbed.append(c)
        self.none_rate = np.bincount(pop.resolver[self.plain], weights=pop.rate[self.plain], minlength=n_res)
        self.cohorts = stubbed
        who = np.concatenate([c.members for c in stubbed]) if stubbed else np.empty(0, dtype=np.int64)
        self.kind = np.concatenate([np.full(len(c.members), k) for k, c in enumerate(stubbed)]) if stubbed else \
            np.empty(0, dtype=np.int64)
        self.who, self.res, self.weight = who, pop.resolver[who], pop.rate[who]
        self.restart = np.full(len(who), np.inf)  # each stub's next restart (inf: none)
        self.pending = self._prime()
        self._holds: list[tuple[np.ndarray, ...]] = []
        primed = np.flatnonzero(self.a_exp > 0.0)
        self._fetches = [(primed, np.zeros(len(primed)), self.list_[primed].copy())]
        self.asks = self._first_plain_request()

    def _prime(self) -> np.ndarray:
        """The stubs and connections as the model primes them; returns each stub's first fetch.

        A stub (sim.model.building._prime_client) holds the first nodes with the chance of
        steady state, until an equilibrium residual; its rotation is uniform. A connection
        (keepalive) is open on the stub's node if the last request (an exponential time ago)
        is within the keepalive, its age uniform from then to the limit. A process that
        restarts is at a random moment of its restart cycle (sim.model.lifecycle): a
        `forever` stub with no request since its last restart holds nothing, a connection
        with none is closed, and one opened before it was opened after it."""
        rng, n, nodes = self.rng, len(self.who), self.nodes
        ttl0 = self.a_ttl if self.cname_ttl is None else min(self.a_ttl, self.cname_ttl)
        expires, since_restart = np.zeros(n), np.full(n, np.inf)
        for k, c in enumerate(self.cohorts):
            mine = self.kind == k
            life0 = float(c.stub.lifetime(ttl0, rng))
            p = 1.0 if math.isinf(life0) else life0 / (life0 + 1.0 / c.rate)
            present = rng.random(int(mine.sum())) < p
            expires[mine] = np.where(present, c.stub.residuals(ttl0, rng, int(mine.sum())), 0.0)
            if lets_go(c):
                # as the model: got from the resolver's current answer, so empty where that is
                # and expiring by its expiry (sim.model.building._prime_client)
                held = np.maximum(self._valid()[self.res[mine]], 0.0)
                expires[mine] = np.minimum(expires[mine], held)
        self.rot = rng.integers(nodes, size=n)
        self.size = np.full(n, 0 if self.arriving else nodes)
        self.since = np.zeros(n)
        # Pooled connections (keepalive): a request on an open connection goes to its node, one
        # that opens one goes through the stub (sim.model.requests._attempt).
        self.keepalive = np.zeros(n)
        self.max_age = np.full(n, np.inf)
        for k, c in enumerate(self.cohorts):
            self.keepalive[self.kind == k] = c.reuse.keepalive
            self.max_age[self.kind == k] = c.reuse.max_age
        pooled = self.keepalive > 0
        idle = rng.exponential(1.0, n) / np.maximum(self.weight, 1e-300)
        age = np.where(np.isfinite(self.max_age), idle + rng.random(n) * np.maximum(self.max_age - idle, 0.0), idle)
        for k, c in enumerate(self.cohorts):
            mine = np.flatnonzero(self.kind == k)
            if c.restarts is not None and len(mine):
                since_restart[mine], self.restart[mine] = c.restarts.equilibrium(rng, len(mine))
                if c.stub.kind == "forever":
                    last = rng.exponential(1.0 / c.rate, len(mine))
                    expires[mine] = np.where(last < since_restart[mine], expires[mine], 0.0)
        open_ = pooled & (idle < self.keepalive) & (idle < since_restart)
        return self._next_query(np.arange(n), np.where(open_, -np.minimum(age, since_restart), -np.inf), expires)

    def _valid(self) -> np.ndarray:
        return np.minimum(self.a_exp, self.c_exp)

    def _cut(self, res: np.ndarray | None = None) -> None:
        """Behind a CNAME a planned change ends an answer of the old nodes fetched before it
        (churn.Move.cut): the first query after it fetches the new target."""
        move = self.move
        if move is None or not move.cut:
            return
        res = np.arange(len(self.a_exp)) if res is None else res
        before = self.fetched[res] < move.at[res]
        self.a_exp[res] = np.where(before, np.minimum(self.a_exp[res], move.at[res]), self.a_exp[res])

    def _first_plain_request(self, res: np.ndarray | None = None) -> np.ndarray:
        """Per resolver, its stub-less clients' first request after its records' expiry."""
        res = np.arange(len(self.a_exp)) if res is None else res
        return self.shape.next_after(np.maximum(self._valid()[res], 0.0), self.none_rate[res], self.rng)

    def run(self) -> None:
        end, n_res = self.shape.end, len(self.a_exp)
        asks = self.asks
        for _ in range(1_000_000):
            valid = self._valid()
            hit = np.flatnonzero((self.pending < valid[self.res]) & (self.pending < end))
            if len(hit):
                self._fetch(hit, self.list_[self.res[hit]], valid[self.res[hit]])
            # The resolvers none of whose stubs fetch from the cache: their next query fetches.
            soonest = np.full(n_res, np.inf)
            np.minimum.at(soonest, self.res, self.pending)
            quiet = soonest >= valid
            at = np.minimum(soonest, asks)
            due = np.flatnonzero(quiet & (at < end))
            if len(due) == 0 and len(hit) == 0:
                break
            due = self._past_the_outage(due, at[due], asks)
            if len(due):
                self._refresh(due, at[due])
                asks[due] = self._first_plain_request(due)
        live = np.arange(len(self.who))
        self._hold(live, np.full(len(live), end))

    def _past_the_outage(self, due: np.ndarray, at: np.ndarray, asks: np.ndarray) -> np.ndarray:
        """Of resolvers `due` to fetch at `at`, those that can: one whose query falls in the
        outage and needs our zone's record fails it, as do its clients' queries up to the
        outage's end; each of them asks again at its first request after it (`asks`, and the
        stubs' next fetches, moved there). Returns the resolvers that fetch."""
        if self.outage is None or len(due) == 0:
            return due
        lo, hi = self.outage
        ours = self.a_exp[due] <= at if self.cname_ttl is None else self.c_exp[due] <= at
        blocked = (at >= lo) & (at < hi) & ours
        if not blocked.any():
            return due
        res = due[blocked]
        # Their clients with no stub fail from the first failed query to the end: on no node.
        self._failed.append((res, self.list_[res].copy(), at[blocked], np.full(len(res), hi)))
        asks[res] = self.shape.next_after(np.full(len(res), hi), self.none_rate[res], self.rng)
        mine = np.zeros(len(self.a_exp), dtype=bool)
        mine[res] = True
        failing = np.flatnonzero(mine[self.res] & (self.pending >= lo) & (self.pending < hi)
                                 & (self.pending >= self._valid()[self.res]))
        self._hold(failing, self.pending[failing], kept=False)
        self.pending[failing] = self.shape.next_after(np.full(len(failing), hi), self.weight[failing], self.rng)
        return due[~blocked]

    def _refresh(self, res: np.ndarray, at: np.ndarray) -> None:
        """Resolvers `res` fetch at `at` the records that expired (one query fetches both)."""
        a = self.a_exp[res] <= at
        ra, ta = res[a], at[a]
        list_ = np.searchsorted(self.joins, ta, side="right")
        if self.move is not None:
            moved = ta >= self.move.at[ra]
            list_ = np.where(moved, list_, self.lists) if self.arriving else np.where(moved, self.lists, list_)
        self.list_[ra], self.fetched[ra] = list_, ta
        self.a_exp[ra] = ta + resolver_lifetimes(self.pop, ra, self.a_ttl, self.rng)
        self._cut(ra)
        self._fetches.append((ra, ta, list_))
        if self.cname_ttl is not None:
            c = self.c_exp[res] <= at
            self.c_exp[res[c]] = at[c] + resolver_lifetimes(self.pop, res[c], self.cname_ttl, self.rng)

    def _fetch(self, idx: np.ndarray, list_: np.ndarray, valid: np.ndarray) -> None:
        """Stubs `idx` take their resolver's answer (`list_`, valid until `valid`) at their pending fetch."""
        at = self.pending[idx]
        self._hold(idx, at)
        for k, c in enumerate(self.cohorts):
            mine = idx[self.kind[idx] == k]
            if c.restarts is not None and len(mine):
                self.restart[mine] = c.restarts.after(self.restart[mine], self.pending[mine], self.rng)
        # The new target's answer (after a planned change) holds none of this balancer's nodes.
        self.size[idx] = np.where(list_ < self.lists, self.nodes + list_, 0)
        life = np.empty(len(idx))
        for k, c in enumerate(self.cohorts):
            mine = self.kind[idx] == k
            if mine.any():
                life[mine] = c.stub.lifetimes_for(valid[mine] - at[mine], self.rng)
        self.pending[idx] = self._next_query(idx, np.where(self.keepalive[idx] > 0, at, -np.inf), at + life)

    def _next_query(self, idx: np.ndarray, opened: np.ndarray, expires: np.ndarray) -> np.ndarray:
        """The next request of clients `idx` that asks the stub, and finds it expired (`expires`),
        so the resolver: the first request after the expiry, or with a pooled connection opened
        at `opened` (-inf: none) the first connection it opens from then on. A connection is
        reopened at the first request after its age limit, or after an idle gap of the
        keepalive (its short gaps before such a gap at their mean, at the cohort's base rate);
        one reopened while the stub holds its answer goes to the same node (no new answer)."""
        shape, rng, rate = self.shape, self.rng, self.weight[idx]
        pooled = self.keepalive[idx] > 0
        out = shape.next_after(np.maximum(expires, 0.0), rate, rng)
        live = np.flatnonzero(pooled)
        # No connection open: the next request opens one.
        nxt = shape.next_after(np.zeros(len(live)), rate[live], rng)
        open_ = np.isfinite(opened[live])
        nxt[open_] = self._reopen(idx[live[open_]], opened[live[open_]])
        while len(live):
            done = (nxt >= expires[live]) | (nxt >= shape.end)
            out[live[done]] = nxt[done]
            live, nxt = live[~done], nxt[~done]
            if len(live):
                nxt = self._reopen(idx[live], nxt)
        # A restart empties the stub and closes the connection: the first request after it asks.
        restart = self.restart[idx]
        late = np.flatnonzero(out > restart)
        out[late] = shape.next_after(restart[late], rate[late], rng)
        return out

    def _reopen(self, idx: np.ndarray, opened: np.ndarray) -> np.ndarray:
        """When a connection opened at `opened` by clients `idx` is next reopened."""
        rate, keep = self.weight[idx], self.keepalive[idx]
        aged = self.shape.next_after(opened + self.max_age[idx], rate, self.rng)
        long_gap = np.exp(-rate * keep)  # a gap of at least the keepalive, a request's chance
        with np.errstate(divide="ignore", invalid="ignore"):
            short = np.where(long_gap < 1.0, 1.0 / rate - keep * long_gap / (1.0 - long_gap), 0.0)
            gaps = np.where(long_gap > 1e-12, self.rng.geometric(np.clip(long_gap, 1e-12, 1.0)) - 1, np.inf)
            idle = opened + gaps * short + keep + self.rng.exponential(1.0, len(idx)) / rate
        return np.minimum(aged, np.where(np.isfinite(gaps), idle, np.inf))

    def _hold(self, idx: np.ndarray, at: np.ndarray, kept: bool = True) -> None:
        """The answer held by `idx` until `at` (their rate on its node); then one more kept
        (not `kept`: the stub is empty from then on, a failed lookup, and the rotation stays)."""
        size = self.size[idx]
        node = np.where(size > 0, (self.rot[idx] * self.step) % np.maximum(size, 1), -1)  # -1: the new target
        on = node >= 0
        _add(self.by_node, node[on], self.since[idx][on], at[on], self.weight[idx][on])
        self._holds.append((self.who[idx], node, self.since[idx].copy(), np.asarray(at, dtype=float)))
        if kept:
            self.rot[idx] += 1
        else:
            self.size[idx] = 0  # on no node until its next fetch
        self.since[idx] = at

    def holds(self) -> tuple[np.ndarray, ...]:
        if not self._holds:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        return tuple(np.concatenate(x) for x in zip(*self._holds, strict=True))

    def cycles(self) -> _Cycles:
        res, fetched, list_ = (np.concatenate(x) for x in zip(*self._fetches, strict=True))
        return _Cycles(res.astype(np.int64), fetched.astype(float), list_.astype(np.int64))


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
