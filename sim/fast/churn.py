"""Balancer node churn where the service name resolves to the nodes (cname, alias records).

As in the model (sim.model.background._churn): each of a balancer's N nodes is
replaced on average every `churn` (one replacement every Exp(churn / N), of a
node picked at random); the new node joins the end of the published list at
once, and the old one answers for `drain`, then refuses.

A client sends a request to the address at position (rotation + attempt) mod N
of the answer it holds, the rotation random at the start and one further at
each answer it keeps (sim.model.requests). The answer it holds is:
- with a stub kept `forever`, the nodes of time 0, all run;
- with no stub cache or an honouring one, its resolver's current answer: such
  a stub never outlives the resolver's, and once the resolver's answer has
  expired every client's next request is a query, so the first of them
  fetches. Each resolver's fetches are followed one by one over the run
  (fetch, keep for the policy's lifetime of the nodes' record, fetch again at
  its clients' first request after that), each fetch getting the node list of
  its moment.
Within one held answer, a position's node refuses from its replacement plus
the drain. An honouring stub keeps one position per answer (drawn once per
client and fetch), and behind a CNAME moves it on by one at each fetch of the
CNAME within the answer (`cname_fetches`: the model's stub lets go when the
CNAME expires too and keeps the same list again); with no stub cache every request keeps a new answer, so the
position moves on by one a request (taken as a pick of each position with
chance 1/N a request). A retry takes the next position (a stub that holds the
answer); with no stub cache the retry keeps a new answer too, so the position
walks on by the tries and the next request's depends on this one's: such
clients are followed request by request (`by_answer`);
`address_mode: next` tries every position at once. A request whose first k
tries are refused is rescued by try k + 1 (k counted in `rescued`); with all
refused it fails.

Stubs that keep an answer past the resolver's (floor, fixed, cap) and pooled
connections are followed request by request instead (sim.fast.churn_requests),
on the same resolver fetches (`resolver_cycles`).

Only the active balancer's nodes are followed, until its own refusing fault
for the rest of the run if it has one (`spans`' `until`: from then on every
node refuses, and the fault's window counts it); with a fault that ends, the
engine leaves each client's window out of the spans and the churn goes on
around it. Through a DNS change (planned, or the failover's)
away from it (`Move`) the fetches after the change hold the new target, whose
nodes are not churned; through a DNS outage (`resolver_cycles`' `outage`) no
fetch succeeds, so the answers held run out as usual and the next fetch is
after the outage (the failed resolutions in between are the outage's window).
A refusing fault of the standby and the active's later refusing faults are
more spans in which every node refuses (the engine cuts the churn's spans out
of them); under a blackholing fault of the active the churn goes on through
the window and its spans there mark the requests refused at once (the others
time out); cohorts with a retry go request by request through it
(`by_answer`, sim.fast.churn_requests). What is refused with churn:
sim.fast.refusals.unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.fast.dns import resolver_expiry
from sim.fast.intensity import Intensity
from sim.fast.population import Cohort, Population, resolver_lifetimes

# Stub kinds whose churn is followed; the others are refused by name (sim.fast.engine).
STUBS = ("none", "honor", "forever")
# Of those, the stubs whose cohorts with a retry go request by request through a blackhole
# (every one: a stub kept forever followed from the run's start, sim.fast.churn_requests).
HOLE_RETRY_STUBS = ("none", "honor", "forever")


@dataclass(frozen=True)
class Replacements:
    """One balancer's node replacements in a run: when (`at`), and for the node list after
    each (index 0: the first nodes), per position, when that node starts refusing (inf:
    never within the run). After a planned change (`with_target`) one more row stands for
    the new target's answer, whose addresses never retire (its nodes are not churned)."""

    at: np.ndarray
    retire: np.ndarray  # (replacements + 1, nodes), plus the new target's row

    @property
    def target(self) -> int:
        """The new target's row (with_target), or one past the last list."""
        return len(self.at) + 1

    def with_target(self) -> Replacements:
        return Replacements(self.at, np.vstack([self.retire[:self.target], np.full(self.nodes, np.inf)]))

    @property
    def nodes(self) -> int:
        return int(self.retire.shape[1])

    def list_at(self, t: np.ndarray) -> np.ndarray:
        """Which node list an answer fetched at `t` holds (an index into `retire`)."""
        return np.searchsorted(self.at, t, side="right")


def replacements(nodes: int, mean_between: float, drain: float, end: float,
                 rng: np.random.Generator) -> Replacements:
    """The model's churn process: a replacement every Exp(mean_between / N), of a node picked
    at random; the removed node leaves the list and the new one joins it at the end."""
    current = list(range(nodes))
    fresh = nodes
    lists = [list(current)]
    at = []
    retired: dict[int, float] = {}
    t = 0.0
    while True:
        t += float(rng.exponential(mean_between / nodes))
        if t >= end:
            break
        old = current.pop(int(rng.integers(nodes)))
        retired[old] = t + drain
        current.append(fresh)
        fresh += 1
        at.append(t)
        lists.append(list(current))
    table = np.array([[retired.get(node, np.inf) for node in nodes_] for nodes_ in lists], dtype=float)
    return Replacements(np.array(at, dtype=float), table)


def by_answer(cohort: Cohort, hole: bool = False) -> bool:
    """Whether a cohort's churn is followed per held answer here (else request by request: a
    stub grace period serves an expired answer one try more, sim.fast.churn_requests). Not
    with no stub cache and retries to the answer's first address either: each try keeps a new
    answer, so the position walks on by the tries and where a request starts depends on how
    the last one went (with two nodes, a client whose two tries met the retired node starts
    the next request on it again), where per answer each request's position is drawn apart.
    Through the churned balancer's blackhole (`hole`) a cohort with a retry is followed request
    by request: its retry comes a timeout after a try that timed out, when the node it meets
    may have retired (refused, late) or the fault ended (per answer, stubs kept forever, three
    nodes, a retry, paired on the model's churn: refused -3,878 +- 498 of 25,870)."""
    if hole and cohort.attempts > 1 and cohort.stub.kind in HOLE_RETRY_STUBS:
        return False
    walks = cohort.stub.kind == "none" and cohort.attempts > 1 and not cohort.next_address
    return cohort.stub.kind in STUBS and cohort.reuse.keepalive <= 0 and cohort.grace <= 0 and not walks


def tries(cohort: Cohort, nodes: int) -> np.ndarray:
    """Offsets from a request's first position of its tries, in order (see the module doc)."""
    if cohort.next_address:
        return np.arange(nodes)
    step = 2 if cohort.stub.kind == "none" else 1
    return (step * np.arange(cohort.attempts)) % nodes


@dataclass(frozen=True)
class Spans:
    """Spans [lo, hi) of a client's requests that a retired node refuses, each request with
    chance `share`; within one entry of `failing` a client has at most one span. `rescued`:
    requests whose first tries a retired node refused and a later try got through (owner,
    issue time, tries refused)."""

    failing: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    rescued_owner: np.ndarray
    rescued_at: np.ndarray
    rescued_count: np.ndarray


@dataclass(frozen=True)
class Holds:
    """Client-answer pairs: the client, the node list its answer holds, until when it holds it."""

    who: np.ndarray
    list_: np.ndarray
    hi: np.ndarray
    lo: np.ndarray  # from when (the fetch; a node in its list retires after it)


def spans(pop: Population, shape: Intensity, reps: Replacements, cycles: Cycles, until: float,
          rng: np.random.Generator, hole: bool = False) -> Spans:
    """The requests of each client that a retired node refuses, or that a retry rescues, before
    `until` (a refusing balancer fault, after which every node of the balancer refuses), for
    the cohorts whose position is known per answer (STUBS, no pooled connections; the others
    are followed request by request, sim.fast.churn_requests)."""
    end, n_nodes = min(shape.end, until), reps.nodes
    holds, cycle = _resolver_holds(pop, shape, reps, cycles, hole)
    holds = Holds(holds.who, holds.list_, np.minimum(holds.hi, end), holds.lo)
    failing: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    rescued: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, int]] = []
    for cohort in pop.cohorts:
        idx = cohort.members
        if len(idx) == 0 or not by_answer(cohort, hole):
            continue
        if cohort.stub.kind == "forever" and cohort.restarts is not None:
            from sim.fast.churn_restarts import forever_holds  # it builds on this module's holds

            hold = forever_holds(pop, shape, reps, cycles, cohort, end, rng)  # one answer per restart
        elif cohort.stub.kind == "forever":
            hold = Holds(idx, np.zeros(len(idx), dtype=np.int64), np.full(len(idx), end), np.zeros(len(idx)))
        else:
            mine = np.isin(holds.who, idx)
            hold = Holds(holds.who[mine], holds.list_[mine], holds.hi[mine], holds.lo[mine])
        if len(hold.who) == 0:
            continue
        offsets = tries(cohort, n_nodes)
        if cohort.stub.kind == "none":
            # Every position, each request with chance 1/N: from the j-th earliest time at which
            # a position's tries all fail, j / N of the requests fail (a position that fails
            # stays failing while the answer is held).
            starts = []
            for p in range(n_nodes):
                fail, saved = _refusals(hold, np.full(len(hold.who), p), offsets, reps.retire, every=True)
                starts.append(fail)
                rescued.extend((who, lo, hi, 1.0 / n_nodes, k) for k, (who, lo, hi) in saved)
            failing.append(_steps(hold, np.sort(np.stack(starts), axis=0), n_nodes))
        else:
            first = rng.integers(n_nodes, size=len(hold.who))
            step = np.zeros(len(hold.who), dtype=np.int64)
            if cohort.stub.kind == "honor":
                # Behind a CNAME the stub also lets go at each CNAME fetch: the same list, one on.
                hold, parent, step = split_at_cname(hold, cycle[np.flatnonzero(mine)], cycles, end)
                first = first[parent]
            if cohort.stub.kind == "honor" and cohort.restarts is not None:
                # Cut at each restart too (sim.fast.churn_restarts builds on this module's holds).
                from sim.fast.churn_restarts import split_at_restarts

                hold, parent, more = split_at_restarts(hold, cohort, pop.size, end, rng)
                first, step = first[parent], step[parent] + more
            fail, saved = _refusals(hold, (first + step) % n_nodes, offsets, reps.retire)
            failing.append((*fail, np.ones(len(fail[0]))))
            rescued.extend((who, lo, hi, 1.0, k) for k, (who, lo, hi) in saved)
    owners, ats, counts = [], [], []
    for who, lo, hi, share, k in rescued:
        m = rng.poisson(pop.rate[who] * shape.measure(lo, hi) * share)
        j = np.repeat(np.arange(len(who)), m)
        owners.append(who[j])
        ats.append(shape.uniform_between(lo[j], hi[j], rng.random(len(j))))
        counts.append(np.full(len(j), k, dtype=np.int64))
    who, lo, hi, share = (np.concatenate(part) for part in zip(*failing, strict=True)) if failing else \
        (np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0))
    return Spans(_by_ordinal(who, lo, hi, share), _cat(owners, np.int64), _cat(ats, float), _cat(counts, np.int64))


def _steps(hold: Holds, starts: np.ndarray, n_nodes: int) -> tuple[np.ndarray, ...]:
    """Per hold, spans [starts[j - 1], starts[j]) (the last to the hold's end) in which j of
    the N positions fail: share j / N."""
    edges = np.vstack([np.minimum(starts, hold.hi), hold.hi])
    parts = []
    for j in range(1, n_nodes + 1):
        lo, hi = edges[j - 1], edges[j]
        some = hi > lo
        parts.append((hold.who[some], lo[some], hi[some], np.full(int(some.sum()), j / n_nodes)))
    return tuple(np.concatenate(x) for x in zip(*parts, strict=True))


def _refusals(hold: Holds, p: np.ndarray, offsets: np.ndarray, retire: np.ndarray,  # type: ignore[no-untyped-def]
              every: bool = False):
    """For answers held at first position `p`: the spans in which every try is refused
    (who, lo, hi), and per k the spans in which the first k are and try k + 1 gets through.
    With `every`, instead of the failing spans, per hold when its tries start all failing."""
    n_nodes = retire.shape[1]
    # prefix[k]: when the first k + 1 tries' nodes have all retired.
    prefix = np.maximum.accumulate(np.stack([retire[hold.list_, (p + o) % n_nodes] for o in offsets]), axis=0)
    edge = np.minimum(np.maximum(prefix, hold.lo), hold.hi)
    some = edge[-1] < hold.hi
    fail = edge[-1] if every else (hold.who[some], edge[-1][some], hold.hi[some])
    saved = []
    for k in range(1, len(offsets)):
        part = edge[k] > edge[k - 1]
        saved.append((k, (hold.who[part], edge[k - 1][part], edge[k][part])))
    return fail, saved


@dataclass(frozen=True)
class Move:
    """A planned DNS change away from the churned balancer (sim.model.control
    `_planned_change`): per resolver, from when it answers the new target (`at`), and
    whether an answer of the old nodes held then ends there (`cut`).

    With the changed record the churned one (an alias, dns_failover's records) a resolver
    answers its cached node list until it expires (`hold`, the moment drawn for its clients'
    switch), and every fetch from the change's propagation on gets the new target: `at` is
    the propagation, no cut. Behind a CNAME
    the resolver caches the CNAME and the balancer's A records apart: it follows the old
    CNAME, to the old balancer's current nodes (its A records refetched as before), until
    that CNAME expires after the propagation; the first query after that gets the new
    target whatever A records are cached: `at` is the CNAME's expiry, with a cut."""

    at: np.ndarray  # per resolver
    cut: bool
    # With the changed record the churned one: per resolver, when the answer it holds at the
    # change expires (drawn with the clients' switch, sim.fast.dns.switch_times' `opens`): that
    # answer lasts until then, and the resolver fetches nothing before (None: drawn here).
    hold: np.ndarray | None = None


@dataclass(frozen=True)
class Cycles:
    """Every fetch of the nodes' record by every resolver over the run, sorted by resolver
    then time: which resolver, when fetched, until when kept, which node list it holds
    (the new target's row after a planned change, `move`)."""

    res: np.ndarray
    fetched: np.ndarray
    expires: np.ndarray
    list_: np.ndarray
    move: Move | None = None
    # Behind a CNAME: each resolver's fetches of the CNAME (resolver, when), sorted by resolver
    # then time, at which an honouring stub takes the same node list at its next position.
    cname: tuple[np.ndarray, np.ndarray] | None = None

    def list_at(self, reps: Replacements, res: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The list a fetch by resolvers `res` at `t` gets (one not drawn among the cycles)."""
        got = reps.list_at(t)
        if self.move is None:
            return got
        return np.where(t >= self.move.at[res], reps.target, got)

    def held_until(self, n_res: int, at: float) -> np.ndarray:
        """Per resolver, when the answer it holds at `at` expires: `at` if none is held then
        (its next fetch comes later), NaN for a resolver with no fetches here (no demand)."""
        out = np.full(n_res, np.nan)
        out[np.unique(self.res)] = at
        before = self.fetched < at  # sorted by resolver then time: each resolver's last is its held
        r, e = self.res[before], self.expires[before]
        last = np.ones(len(r), dtype=bool)
        last[:-1] = r[:-1] != r[1:]
        out[r[last]] = np.maximum(e[last], at)
        return out


def resolver_cycles(pop: Population, shape: Intensity, reps: Replacements, node_ttl: float, q: np.ndarray,
                    asks: np.ndarray, rng: np.random.Generator, move: Move | None = None,
                    outage: tuple[float, float] | None = None) -> Cycles:
    """Each resolver's fetches of the nodes' record over the run: primed at time 0 as the model
    primes (present with the first nodes, or absent), kept for the policy's lifetime, fetched
    again at its clients' first query after expiry (per client at rate `asks` once the answer
    expired: Poisson), each fetch holding the node list of its moment; from a planned change
    on (`move`, with `reps` from Replacements.with_target) the new target's. While our
    authoritative servers are down (`outage`, [start, end)) no fetch succeeds: an answer
    kept runs out as usual and the next fetch is the first query after the outage (the
    clients' failed resolutions in between are the outage's window, sim.fast.engine)."""
    end = shape.end
    n_res = len(pop.resolver_group)
    demand = np.bincount(pop.resolver, weights=asks, minlength=n_res)
    res = np.flatnonzero(demand > 0)
    expires = resolver_expiry(pop, node_ttl, q, 0.0, rng)[res]
    fetched = np.where(expires > 0.0, 0.0, -np.inf)  # primed (its fetch before the run) or absent
    list_ = np.zeros(len(res), dtype=np.int64)
    parts: list[tuple[np.ndarray, ...]] = []
    while len(res):
        present = np.isfinite(fetched)
        parts.append((res[present], fetched[present], expires[present], list_[present]))
        fetched = _refetch(shape, expires, demand[res], outage, rng)
        go_on = fetched < end
        res, fetched = res[go_on], fetched[go_on]
        list_ = reps.list_at(fetched)
        expires = fetched + resolver_lifetimes(pop, res, node_ttl, rng)
    if not parts:
        return Cycles(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), move)
    r, f, e, li = (np.concatenate(x) for x in zip(*parts, strict=True))
    if move is not None:
        switch = move.at[r]
        li = np.where(f >= switch, reps.target, li)
        if move.cut:
            e = np.where((f < switch) & (e > switch), switch, e)
        if move.hold is not None:
            held = move.hold[r]
            e = np.where((f < switch) & (e > switch), held, e)
            # The resolver held its answer until then: no fetch of its own in between.
            keep = ~((f >= switch) & (f < held))
            r, f, e, li = r[keep], f[keep], e[keep], li[keep]
    order = np.lexsort((f, r))
    return Cycles(r[order], f[order], e[order], li[order], move)


def cname_fetches(pop: Population, shape: Intensity, ttl: float, q: np.ndarray, asks: np.ndarray,
                  rng: np.random.Generator, outage: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Behind a CNAME, each resolver's fetches of the CNAME itself over the run (resolver, when;
    sorted by resolver then time): primed at time 0 as the model primes it, kept for the
    policy's lifetime of its TTL, fetched again at its clients' first query after it expired
    (at rate `asks` per client, as `resolver_cycles`), none during a DNS outage. The model's
    resolver caches the CNAME and the balancer's A records apart (sim.model.dns.Resolver):
    an honouring stub keeps the answer until the shorter-lived of the two expires, and its
    client's next answer, the same node list while the A records last, moves its position
    on by one (sim.model.requests._keep_answer). The refetch is drawn apart from the A
    records': when both expired before one query the model refetches them together, here at
    two draws (a second split within about one request gap of the A fetch)."""
    end = shape.end
    demand = np.bincount(pop.resolver, weights=asks, minlength=len(pop.resolver_group))
    res = np.flatnonzero(demand > 0)
    expires = resolver_expiry(pop, ttl, q, 0.0, rng)[res]
    out_res, out_at = [], []
    while len(res):
        fetched = _refetch(shape, expires, demand[res], outage, rng)
        go_on = fetched < end
        res, fetched = res[go_on], fetched[go_on]
        out_res.append(res)
        out_at.append(fetched)
        expires = fetched + resolver_lifetimes(pop, res, ttl, rng)
    r, at = _cat(out_res, np.int64), _cat(out_at, float)
    order = np.lexsort((at, r))
    return r[order], at[order]


def _refetch(shape: Intensity, expires: np.ndarray, demand: np.ndarray, outage: tuple[float, float] | None,
             rng: np.random.Generator) -> np.ndarray:
    """Each resolver's next fetch: its clients' first query (at rate `demand`) after its answer
    `expires`; none succeeds during a DNS outage, so one that falls in it is the first after."""
    fetched = shape.next_after(np.maximum(expires, 0.0), demand, rng)
    if outage is not None:
        down = (fetched >= outage[0]) & (fetched < outage[1])
        fetched[down] = shape.next_after(np.full(int(down.sum()), outage[1]), demand[down], rng)
    return fetched


def split_at_cname(hold: Holds, cycle: np.ndarray, cycles: Cycles, end: float) -> tuple[Holds, np.ndarray, np.ndarray]:
    """An honouring stub's holds cut at its resolver's CNAME fetches within them: the pieces,
    for each its hold (an index into `hold`) and how many CNAME fetches came before it in
    the hold (the position's step on from the hold's own)."""
    pieces = np.arange(len(hold.who))
    if cycles.cname is None or len(cycles.cname[0]) == 0 or len(hold.who) == 0:
        return hold, pieces, np.zeros(len(hold.who), dtype=np.int64)
    c_res, c_at = cycles.cname
    # One resolver's times apart from the next's in one sorted key: past every time in it (the
    # CNAME fetches run to the end of the run, `end` may be a refusing fault's start; with
    # `end + 1` there, resolvers' keys overlapped and honouring stubs behind a CNAME took
    # other resolvers' cuts: refused 35,760 against the model's 27,960).
    span = max(end, float(c_at.max()), float(hold.lo.max()), float(hold.hi.max())) + 1.0
    key = c_res * span + c_at
    res = cycles.res[cycle]
    first = np.searchsorted(key, res * span + hold.lo, side="right")
    last = np.searchsorted(key, res * span + hold.hi, side="left")
    # A hold that starts after `end` (clipped to a refusing fault for the rest of the run)
    # is empty: no cut (before, a negative count here failed every such run).
    cuts = np.maximum(last - first, 0)
    parent = np.repeat(pieces, cuts + 1)
    step = np.arange(len(parent)) - np.repeat(np.cumsum(cuts + 1) - (cuts + 1), cuts + 1)
    at = np.minimum(first[parent] + step - 1, len(c_at) - 1)
    lo = np.where(step == 0, hold.lo[parent], c_at[np.maximum(at, 0)])
    nxt = np.minimum(first[parent] + step, len(c_at) - 1)
    hi = np.where(step == cuts[parent], hold.hi[parent], c_at[nxt])
    return Holds(hold.who[parent], hold.list_[parent], hi, lo), parent, step


def _resolver_holds(pop: Population, shape: Intensity, reps: Replacements,
                    cycles: Cycles, hole: bool = False) -> tuple[Holds, np.ndarray]:
    """The resolvers' fetches whose list has a node that retires before the answer expires, as
    client-answer pairs for the clients on that resolver whose stubs follow it (no stub
    cache, honouring); and for each pair its fetch (an index into `cycles`)."""
    end = shape.end
    followers = np.flatnonzero(np.isin(pop.cohort, [i for i, c in enumerate(pop.cohorts)
                                                    if c.stub.kind in ("none", "honor") and by_answer(c, hole)]))
    empty = Holds(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)), \
        np.empty(0, dtype=np.int64)
    if len(followers) == 0:
        return empty
    n_res = len(pop.resolver_group)
    hi_all = np.minimum(cycles.expires, end)
    hit = reps.retire.min(axis=1)[cycles.list_] < hi_all
    kept = np.flatnonzero(hit)
    if len(kept) == 0:
        return empty
    # Every follower of each kept fetch's resolver.
    cycle, who = expand_to_clients(cycles.res[kept], followers, pop.resolver, n_res)
    k = kept[cycle]
    return Holds(who, cycles.list_[k], hi_all[k], cycles.fetched[k]), k


def _by_ordinal(who: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                share: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """A client's spans (disjoint: its answers' holds are, and the steps within one) as entries
    in which each client has at most one: its first span in the first entry, and so on."""
    if len(who) == 0:
        return []
    order = np.lexsort((lo, who))
    who, lo, hi, share = who[order], lo[order], hi[order], share[order]
    first = np.flatnonzero(np.concatenate([[True], who[1:] != who[:-1]]))
    counts = np.diff(np.concatenate([first, [len(who)]]))
    ordinal = np.arange(len(who)) - np.repeat(first, counts)
    out = []
    for k in range(int(ordinal.max()) + 1):
        pick = ordinal == k
        out.append((who[pick], lo[pick], hi[pick], share[pick]))
    return out


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)


def expand_to_clients(item_resolver: np.ndarray, clients: np.ndarray, resolver_of: np.ndarray,
                      resolvers: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item (a fetch, an episode) on resolver `item_resolver[i]` repeated once per client
    of `clients` behind that resolver: (item index, client) pairs, item by item."""
    order = clients[np.argsort(resolver_of[clients], kind="stable")]
    count = np.bincount(resolver_of[order], minlength=resolvers)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    per = count[item_resolver]
    item = np.repeat(np.arange(len(item_resolver)), per)
    within = np.arange(len(item)) - np.repeat(np.cumsum(per) - per, per)
    return item, order[start[item_resolver][item] + within]
