"""Node churn followed request by request where a client's node outlives its resolver's answer.

sim.fast.churn follows churn per held answer for stubs that never outlive the
resolver's answer (none, honor) or never let go (forever). A stub that may
keep an answer past it (`floor`, `fixed`; `cap`, which may refetch within
one, is followed here too) and a pooled connection (`keepalive`) carry a node
list, or one node, of an earlier fetch: such clients are followed as the model
treats them (sim.model.requests `_attempt`), request by request, but only in
the episodes where a node they may hold can have retired: around each resolver
fetch whose list has a node that retires before the answer's expiry plus the
stub's longest overhang (the stub's lifetime for a zero TTL: `min_ttl` for
floor, `ttl` for fixed) plus the connection's age limit. A pooled connection
with no age limit, or through a stub kept forever, may hold a node of time 0
for the whole run (while the client's requests come within `keepalive` of each
other): its clients are followed from the run's start, connections primed as
the model primes them, to its end (`whole_run`; sim.fast.engine refuses them
past FOLLOWED_REQUESTS_LIMIT requests).

Per request at t, as the model:
- an open connection that may be reused (idle less than `keepalive`, younger
  than `max_connection_age`) carries attempt 0; its node retired: refused, the
  connection dropped, the next attempt goes through the stub;
- through the stub: an expired stub (or none) asks the resolver, which
  answers its current fetch's list (the remaining TTL that of the nodes'
  record), kept for the stub's lifetime of it; each answer kept moves the
  client's rotation on by one; attempt k goes to position
  (rotation x rotate + k) mod N of the list held; with keepalive a connection
  opens there (dropped if the node refuses);
- a retired node refuses at once (no cost), so the retry follows at the same
  moment; a request whose tries all meet retired nodes fails, one whose first
  k are refused and try k + 1 gets through is rescued (k counted);
- a restart since the lane's last request (`restart`, from a random moment of
  its cycle at the lane's start) empties the stub and closes the connection.

Through a fault the engine's window counts (`Gap`: per client, the span in
which every request of its fails), the lanes follow the model's state and
count nothing there. A refusing balancer fault with an end refuses every
try in the window (a pooled connection is dropped, the stub refetches as
usual). During a DNS outage a stub that has let go asks in vain once its
resolver's answer has expired (no fetch succeeds then,
sim.fast.churn.resolver_cycles) or in the client's window: the model's
failed resolution, which keeps no answer and moves no rotation, so every
request after it asks again, in vain until the resolver's first fetch
after the outage; those requests are the window's (a failed resolution
before the window, which the engine draws apart from the lists held, is
counted nowhere). An episode that holds the outage's start is followed to
its end, so that the client's first success after it is known.

Through the churned balancer's blackholing fault (`Gap.hole`) these clients
count the fault's requests themselves (the engine's window is empty for
them): each resolver of theirs has one more episode over the fault, a try
at a live node of the blackholed balancer times out and the next attempt
comes the client's timeout later (at the nodes, the fault and the resolver's
answer of its moment; a retry that comes after the client's next request
keeps nothing, `_read_only`), a retired node refuses at once, a node of the
new target (after the DNS change) gets through.

An episode starts a warm-up (four stub lifetimes plus mean request gaps)
before its first fetch, with no stub answer and the rotation uniform; with
keepalive, the connection open then is taken from steady state as
sim.fast.pooled takes it (its age uniform on the age limit, its last use the
last request before), opened through the stub's answer of its moment (the
resolver's list then, at the rotation's position), which the stub keeps for
its lifetime from then. Episodes of one resolver and cohort that overlap are
merged, so each request is followed once. Requests are Poisson at the
client's rate in the traffic shape.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np

from sim.fast.churn import Cycles, Replacements, by_answer, expand_to_clients
from sim.fast.dns import resolver_expiry
from sim.fast.intensity import Intensity
from sim.fast.population import Cohort, Population, resolver_lifetimes

# Stub kinds whose churn is followed here (with or without keepalive); pooled connections with
# the stubs of sim.fast.churn.STUBS are followed here too (kept forever: `whole_run`).
STUBS = ("floor", "fixed", "cap")
WARMUP_LIVES = 4.0  # stub lifetimes plus request gaps before an episode's first fetch
MAX_REQUESTS = 1_000_000  # per lane: a guard against a loop that does not end


@dataclass(frozen=True)
class Gap:
    """Per client, the span [start, back) of the engine's window (sim.fast.engine.Window),
    whose requests all fail and are counted there: every node refuses (a refusing balancer
    fault with an end), or with `outage` ([lo, hi) of a dns_down) resolutions fail."""

    start: np.ndarray
    back: np.ndarray
    outage: tuple[float, float] | None = None
    # Behind a CNAME, per resolver, when its CNAME ran out (at or after the outage's start):
    # only that record is ours, so a lookup fails from then on, whatever the node list
    # (the balancer's A records, in the provider's zone). None: the node list is ours.
    cname_out: np.ndarray | None = None
    # More spans per client (start, back) in which every try is refused and the engine counts
    # the requests: the other balancer faults' (sim.fast.engine.Window.extra), the active's
    # later ones while the client is on it, the standby's once it is there.
    more: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    # The churned active balancer blackholing over [lo, hi) (hi inf: for the rest of the run):
    # no window here (`start`, `back` inf); the lanes count every request, a try to one of its
    # live nodes timing out (its retry `timeout` later), a retired node refusing at once.
    hole: tuple[float, float] | None = None


@dataclass(frozen=True)
class Followed:
    """What the clients followed here did: failed requests (owner, issue time), rescued ones
    (owner, issue time, tries refused), and per client its first failure from `count_from`
    on and the first success after it (inf: none), and its first success from the end of
    its window on (`after_gap`; inf: none got through before the run's end, NaN: not followed then)."""

    failed_owner: np.ndarray
    failed_at: np.ndarray
    rescued_owner: np.ndarray
    rescued_at: np.ndarray
    rescued_count: np.ndarray
    first_fail: np.ndarray
    recovered: np.ndarray
    after_gap: np.ndarray
    # Through a DNS outage, per client with keepalive followed from the outage's start: its
    # first failed resolution (its connection dropped by a retired node, its age or an idle
    # gap, then looked up in vain; not counted here: the engine's window starts there). inf:
    # none; NaN: not followed through the outage. None: no outage.
    unresolved_at: np.ndarray | None = None
    # The resolver queries of the clients followed for the whole run (`whole_run`): each
    # stub's lookup (resolver, time), from which `resolver_fetches` draws the fetches.
    queries: tuple[np.ndarray, np.ndarray] | None = None
    # Under a blackhole (Gap.hole), per failed request: its wait before the failure is known
    # (its tries' timeouts) and whether its last try was refused (a retired node); and the
    # successes that waited out a timeout first (issue time, delay to the success).
    failed_spent: np.ndarray | None = None
    failed_refused: np.ndarray | None = None
    late_at: np.ndarray | None = None
    late_delay: np.ndarray | None = None
    # Under a blackhole, the lanes followed (client, from, to) and their successes (issue
    # times): the engine counts those seconds' successes from here, not as the expected
    # requests less the failures drawn (all fail in the window: clipped at 0, that added
    # requests, 54,260 against the model's 53,990).
    lanes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    ok_at: np.ndarray | None = None


def overhang(cohort: Cohort) -> float:
    """How long past the resolver's answer a stub may keep it (its lifetime for a zero TTL,
    plus its grace period, in which it still serves one try)."""
    return float(cohort.stub.lifetime(0.0, np.random.default_rng(0))) + cohort.grace


def query_rate(cohort: Cohort, node_ttl: float) -> float:
    """How often a client asks its resolver once the resolver's answer has expired, taken as
    Poisson: at every request for a stub that lets go with the resolver's answer (none,
    honor, cap); once a cycle of the stub's lifetime (as the model's priming takes it, for
    half the TTL) or of the connection's age limit plus the wait for the next request
    otherwise; never for a stub kept forever. With no age limit, as the stub alone: the
    resolver's fetches then are mostly at its clients' reconnections after a node retired,
    in bursts, whose lists the answers of a steady refetch stand for (a rate from the
    connections' idle gaps, near 0, held the resolvers' stale lists nowhere: 23 failed
    against the model's 4,527, fixed stubs, stretching resolvers, three nodes, a retry);
    their count comes from the stubs' own queries (`resolver_fetches`)."""
    if cohort.stub.kind == "forever":
        return 0.0
    held = 0.0 if cohort.stub.kind in ("none", "honor", "cap") else \
        float(cohort.stub.lifetime(node_ttl / 2, np.random.default_rng(0)))
    if cohort.reuse.keepalive > 0 and math.isfinite(cohort.reuse.max_age):
        held = max(held, cohort.reuse.max_age)
    return 1.0 / (held + 1.0 / cohort.rate) if cohort.rate > 0 else 0.0


def follow(pop: Population, shape: Intensity, reps: Replacements, cycles: Cycles, node_ttl: float, rotate: bool,
           until: float, count_from: float, rng: np.random.Generator, gap: Gap | None = None) -> Followed:
    """Every cohort not followed per answer (sim.fast.churn.by_answer), in its episodes before
    `until` (a refusing balancer fault: from then on every node refuses, counted elsewhere),
    through the engine's window `gap` if any (counted there)."""
    n = pop.size
    parts: list[tuple[np.ndarray, ...]] = []
    asked: list[tuple[np.ndarray, np.ndarray]] = []
    first_fail, recovered = np.full(n, np.inf), np.full(n, np.inf)
    after_gap = np.full(n, np.nan)  # NaN: no lane of the client holds its window's end
    unresolved_at = np.full(n, np.nan)
    outage = gap.outage if gap is not None else None
    hole = gap.hole if gap is not None else None
    lookup = _Lookup(cycles, reps, node_ttl, shape.end)
    whole = _whole_run_lookup(pop, shape, reps, cycles, node_ttl, rotate, until, count_from, rng, gap)
    waits: list[tuple[np.ndarray, ...]] = []
    for cohort in pop.cohorts:
        if len(cohort.members) == 0 or by_answer(cohort, hole is not None) or cohort.rate <= 0:
            continue
        lanes = _lanes(pop, shape, reps, cycles, cohort, until, outage, hole)
        if lanes is None:
            continue
        mine = whole if whole is not None and whole_run(cohort) else lookup
        out = _run(pop, shape, reps, mine, cohort, lanes, rotate, count_from, rng, gap)
        parts.append(out[:5])
        waits.append((*out[11:16], lanes.who, lanes.lo, lanes.hi))
        if whole_run(cohort):
            asked.append((out[9], out[10]))
        ff, rec = out[5], out[6]
        np.fmin.at(after_gap, lanes.who, out[7])  # one lane of a client holds the window's end
        if cohort.reuse.keepalive > 0 and outage is not None:
            holds = (lanes.lo <= outage[0]) & (lanes.hi > outage[0])
            fresh = holds & np.isnan(unresolved_at[lanes.who])
            unresolved_at[lanes.who[fresh]] = np.inf
            seen = ~np.isnan(unresolved_at[lanes.who])
            np.fmin.at(unresolved_at, lanes.who[seen], out[8][seen])
        earlier = ff < first_fail[lanes.who]
        # Lanes of one client are disjoint: keep the first failure's lane (np.minimum.at, then match).
        np.minimum.at(first_fail, lanes.who[earlier], ff[earlier])
        mine = ff == first_fail[lanes.who]
        recovered[lanes.who[mine & np.isfinite(ff)]] = rec[mine & np.isfinite(ff)]
    unresolved = unresolved_at if outage is not None else None
    queries = tuple(_cat([x[k] for x in asked], np.empty(0)) for k in (0, 1)) if asked else None
    if not parts:
        e = np.empty(0)
        ei = np.empty(0, dtype=np.int64)
        return Followed(ei, e, ei, e, ei, first_fail, recovered, after_gap, unresolved, queries)
    fo, fa, ro, ra, rc = (np.concatenate(x) for x in zip(*parts, strict=True))
    spent, refused, late_at, late_delay, ok_at, l_who, l_lo, l_hi = (np.concatenate(x) for x in zip(*waits, strict=True))
    if hole is None:
        return Followed(fo, fa, ro, ra, rc, first_fail, recovered, after_gap, unresolved, queries)
    return Followed(fo, fa, ro, ra, rc, first_fail, recovered, after_gap, unresolved, queries, spent, refused,
                    late_at, late_delay, (l_who, l_lo, l_hi), ok_at)


def _whole_run_lookup(pop: Population, shape: Intensity, reps: Replacements, cycles: Cycles, node_ttl: float,
                      rotate: bool, until: float, count_from: float, rng: np.random.Generator,
                      gap: Gap | None) -> _Lookup | None:
    """The lookup of the clients followed for the whole run where whole resolvers are theirs
    (exact_resolvers; None: none): those resolvers' fetches made by the clients' queries
    (`_from_queries`), taken from a first pass in which each such query fetched the list of
    its moment (the requests drawn as in the second, from a copy of `rng`)."""
    exact = exact_resolvers(pop)
    if not exact.any():
        return None
    drop = exact[cycles.res]
    bare = replace(cycles, res=cycles.res[~drop], fetched=cycles.fetched[~drop], expires=cycles.expires[~drop],
                   list_=cycles.list_[~drop])
    first = _Lookup(bare, reps, node_ttl, shape.end)
    outage = gap.outage if gap is not None else None
    queries = []
    for cohort in pop.cohorts:
        if len(cohort.members) == 0 or not whole_run(cohort) or cohort.rate <= 0:
            continue
        lanes = _lanes(pop, shape, reps, cycles, cohort, until, outage, gap.hole if gap is not None else None)
        if lanes is not None:
            out = _run(pop, shape, reps, first, cohort, lanes, rotate, count_from, copy.deepcopy(rng), gap)
            queries.append((out[9], out[10]))
    if not queries:
        return None
    return _Lookup(_from_queries(pop, reps, cycles, node_ttl, shape.end, queries, rng), reps, node_ttl, shape.end)


@dataclass(frozen=True)
class _Lanes:
    who: np.ndarray  # the client
    lo: np.ndarray  # the episode: followed from lo (warm-up included) until hi
    hi: np.ndarray


class _Lookup:
    """A resolver's answer at a moment: the list of its fetch then and when that expires."""

    def __init__(self, cycles: Cycles, reps: Replacements, node_ttl: float, end: float) -> None:
        self.c, self.reps, self.ttl = cycles, reps, node_ttl
        self.off = 4.0 * end + 1e4
        self.keys = cycles.res * self.off + cycles.fetched

    def __call__(self, res: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.answer(res, t)[:2]

    def answer(self, res: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The list and its expiry, and whether a fetch of the resolver's holds it at `t` (else
        the stub's query is the resolver's fetch: none succeeds during a DNS outage)."""
        c = self.c
        if len(c.res) == 0:
            return c.list_at(self.reps, res, t), t + self.ttl, np.zeros(len(res), dtype=bool)
        i = np.searchsorted(self.keys, res * self.off + t, side="right") - 1
        ok = i >= 0
        j = np.maximum(i, 0)
        ok &= (c.res[j] == res) & (t < c.expires[j])
        # Between an expiry and the fetch drawn after it (the fetch is drawn at the resolver's
        # first query, not the stub's): the stub's own query fetches the list of its moment.
        nxt = np.minimum(i + 1, len(c.res) - 1)
        has_next = (i + 1 < len(c.res)) & (c.res[nxt] == res)
        life = np.where(has_next, c.expires[nxt] - c.fetched[nxt], self.ttl)
        list_ = np.where(ok, c.list_[j], c.list_at(self.reps, res, t))
        expires = np.where(ok, c.expires[j], t + life)
        return list_, expires, ok


def whole_run(cohort: Cohort) -> bool:
    """Whether a cohort's members are followed from the run's start (where the model primes
    them) to its end: a pooled connection with no age limit, or one through a stub kept
    forever, may hold a node of time 0 for the whole run."""
    return cohort.reuse.keepalive > 0 and (not math.isfinite(cohort.reuse.max_age) or cohort.stub.kind == "forever")


def resolver_fetches(pop: Population, res: np.ndarray, at: np.ndarray, ttl: float, expires: np.ndarray,
                     end: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fetches of a record (TTL `ttl`) that stub queries (resolver `res`, time `at`
    before `end`) make, as the model's resolver makes them: a query that finds the answer
    expired fetches it, kept for its group's lifetime of the TTL; each resolver's answer
    expires at `expires` first (its priming). In rounds, each resolver's first query past
    the answer it holds fetching (as many rounds as one resolver's most fetches). Each
    fetch's resolver, time and expiry."""
    off = 4.0 * end + 1e4  # one resolver's times apart from the next's in one sorted key
    key = np.sort(res * off + at)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    who = np.unique(res)
    held = np.maximum(expires[who], 0.0)
    while len(who):
        nxt = np.searchsorted(key, who * off + held, side="left")
        found = nxt < len(key)
        found[found] &= (key[nxt[found]] // off).astype(np.int64) == who[found]
        who, nxt = who[found], nxt[found]
        t = key[nxt] - who * off
        held = t + resolver_lifetimes(pop, who, ttl, rng)
        out.append((who, t, held))
    if not out:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    r, t, e = (np.concatenate(x) for x in zip(*out, strict=True))
    return r, t, e


def exact_resolvers(pop: Population) -> np.ndarray:
    """Per resolver: are all its clients followed for the whole run (`whole_run`)? Their
    queries are all known here, so its fetches are theirs (`resolver_fetches`)."""
    whole = np.zeros(pop.size, dtype=bool)
    for c in pop.cohorts:
        whole[c.members] = whole_run(c)
    n_res = len(pop.resolver_group)
    return (np.bincount(pop.resolver[~whole], minlength=n_res) == 0) & \
        (np.bincount(pop.resolver[whole], minlength=n_res) > 0)


def priming_rate(pop: Population, ttl: float) -> np.ndarray:
    """Per resolver, the query rate the model primes it with for the clients followed for the
    whole run (sim.model.building `_resolver_load`: one query per stub cycle, the stub's
    lifetime of half the TTL plus a request gap; none for a stub kept forever)."""
    q = np.zeros(len(pop.resolver_group))
    for c in pop.cohorts:
        if not whole_run(c) or len(c.members) == 0 or c.rate <= 0:
            continue
        life = float(c.stub.lifetime(ttl / 2, np.random.default_rng(0)))
        if math.isfinite(life):
            np.add.at(q, pop.resolver[c.members], 1.0 / (life + 1.0 / c.rate))
    return q


def _from_queries(pop: Population, reps: Replacements, cycles: Cycles, node_ttl: float, end: float,
                  queries: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator) -> Cycles:
    """`cycles` with the fetches of the resolvers whose clients are all followed for the whole
    run (exact_resolvers) made by those clients' stub queries (`queries`, of a first pass):
    the model's resolver is asked only at their reconnections, in bursts after a node
    retired, and holds nothing in between once its answer expired, where fetches drawn at a
    steady rate (as if asked at every request) hold an old list at each burst (stretching
    resolvers, three nodes, address_mode next, a retry: failed 6,621 against the model's
    3,669 paired; a rate from the idle gaps alone, near 0, held none: 23 against 4,527).
    Each such resolver primed as the model primes it (`priming_rate`: cycles drawn at the
    steady rate took it as absent, so the first reconnections after a retirement fetched
    the current list where the model's resolvers held the first one)."""
    exact = exact_resolvers(pop)
    res, at = (np.concatenate([q[k] for q in queries]) for k in (0, 1))
    mine = exact[res]
    primed = np.where(exact, resolver_expiry(pop, node_ttl, priming_rate(pop, node_ttl), 0.0, rng), 0.0)
    new_r, new_f, new_e = resolver_fetches(pop, res[mine], at[mine], node_ttl, primed, end, rng)
    on = np.flatnonzero(exact & (primed > 0.0))  # present at time 0, with the first nodes
    new_r, new_f, new_e = np.r_[on, new_r], np.r_[np.zeros(len(on)), new_f], np.r_[primed[on], new_e]
    keep = ~exact[cycles.res]
    r = np.concatenate([cycles.res[keep], new_r])
    f = np.concatenate([cycles.fetched[keep], new_f])
    e = np.concatenate([cycles.expires[keep], new_e])
    li = np.concatenate([cycles.list_[keep], cycles.list_at(reps, new_r, new_f)])
    order = np.lexsort((f, r))
    return replace(cycles, res=r[order], fetched=f[order], expires=e[order], list_=li[order])


def _lanes(pop: Population, shape: Intensity, reps: Replacements, cycles: Cycles, cohort: Cohort,
           until: float, outage: tuple[float, float] | None = None,
           hole: tuple[float, float] | None = None) -> _Lanes | None:
    """The cohort's episodes per resolver (merged), one lane per member of the resolver; one
    that holds a DNS outage's start goes on to its end. Through a blackhole (`hole`) every
    resolver of the cohort has one more episode over it: the lanes count its requests."""
    if whole_run(cohort) or (hole is not None and cohort.stub.kind == "forever"):
        # A stub kept forever through a blackhole (a retry's cohort, sim.fast.churn.by_answer)
        # holds its first answer all run: followed from the start too.
        # Its connection at any moment may have been opened at the run's start (on the first
        # nodes: a fetch's episode has no start that an unbounded age reaches back from), and
        # its resolver may see no fetch of its own for long (query_rate): one lane per member
        # from 0, where the connection is the model's primed one, to `until` (a stub kept
        # forever keeps meeting a retired node; sim.fast.engine bounds the requests).
        n = len(cohort.members)
        hi = min(until, shape.end)
        if not len(reps.at) or n == 0 or hi <= 0.0:
            return None
        return _Lanes(cohort.members.copy(), np.zeros(n), np.full(n, hi))
    over = overhang(cohort)
    age = cohort.reuse.max_age if cohort.reuse.keepalive > 0 else 0.0
    reach = cycles.expires + over + age  # after this, no request of the cohort uses the list
    kept = (reps.retire.min(axis=1)[cycles.list_] < reach) & (cycles.fetched < until)
    warm = WARMUP_LIVES * (over + 1.0 / cohort.rate)
    res = cycles.res[kept]
    lo = np.maximum(cycles.fetched[kept] - warm, 0.0)
    hi = np.minimum(np.minimum(reach[kept], until), shape.end)
    if hole is not None and hole[0] < shape.end:
        # The blackhole's requests are all counted here (the engine's window leaves them out).
        mine = np.unique(pop.resolver[cohort.members])
        res = np.concatenate([res, mine])
        lo = np.concatenate([lo, np.full(len(mine), max(hole[0] - warm, 0.0))])
        hi = np.concatenate([hi, np.full(len(mine), min(hole[1], shape.end))])
    if len(res) == 0:
        return None
    if outage is not None:
        hi = np.where((lo <= outage[0]) & (hi > outage[0]), np.maximum(hi, outage[1]), hi)
    # Merge overlapping episodes of a resolver (sorted by resolver, then start).
    order = np.lexsort((lo, res))
    res, lo, hi = res[order], lo[order], hi[order]
    off = 4.0 * shape.end + 1e4
    reach_so_far = np.maximum.accumulate(hi + res * off) - res * off
    new = np.ones(len(res), dtype=bool)
    new[1:] = (res[1:] != res[:-1]) | (lo[1:] > reach_so_far[:-1])
    group = np.cumsum(new) - 1
    e_res = res[new]
    e_lo = lo[new]
    e_hi = np.zeros(len(e_res))
    np.maximum.at(e_hi, group, hi)
    # One lane per member of the cohort on each episode's resolver.
    ep, who = expand_to_clients(e_res, cohort.members, pop.resolver, len(pop.resolver_group))
    if len(who) == 0:
        return None
    return _Lanes(who, e_lo[ep], e_hi[ep])


class _Clients:
    """The lanes' state: the stub's list and expiry, the rotation, the open connection."""

    def __init__(self, pop: Population, shape: Intensity, reps: Replacements, lookup: _Lookup, cohort: Cohort,
                 lanes: _Lanes, rotate: bool, rng: np.random.Generator, gap: Gap | None) -> None:
        n = len(lanes.who)
        self.cohort, self.reps, self.lookup, self.rng = cohort, reps, lookup, rng
        self.res = pop.resolver[lanes.who]
        # The engine's window per lane (empty: none), and the DNS outage if that is what it is.
        self.gap_lo = gap.start[lanes.who] if gap is not None else np.full(n, np.inf)
        self.gap_hi = gap.back[lanes.who] if gap is not None else np.full(n, np.inf)
        self.outage = gap.outage if gap is not None else None
        self.cname_out = gap.cname_out if gap is not None else None
        self.more = tuple((lo[lanes.who], hi[lanes.who]) for lo, hi in gap.more) if gap is not None else ()
        self.hole = gap.hole if gap is not None else None
        # Per lane, of its last request: its wait before its end (the tries' timeouts), and
        # whether its last failed try was refused (else it timed out).
        self.spent = np.zeros(n)
        self.refused = np.zeros(n, dtype=bool)
        self.unresolved = np.zeros(n, dtype=bool)  # the last request's resolution failed
        self.asked: list[tuple[np.ndarray, np.ndarray]] = []  # the stubs' resolver queries
        self.rot = rng.integers(reps.nodes, size=n)
        self.step = 1 if rotate else 0
        self.stub_list = np.zeros(n, dtype=np.int64)
        self.stub_exp = np.full(n, -np.inf)
        self.pooled = cohort.reuse.keepalive > 0
        # Each lane's next restart (inf: none), from a random moment of its cycle at the lane's start.
        self.next_restart = lanes.lo + cohort.restarts.equilibrium(rng, n)[1] if cohort.restarts is not None \
            else np.full(n, np.inf)
        self.conn = np.zeros(n, dtype=bool)
        self.c_list = np.zeros(n, dtype=np.int64)
        self.c_pos = np.zeros(n, dtype=np.int64)
        self.c_open = np.full(n, -np.inf)
        self.c_last = np.full(n, -np.inf)
        if self.pooled:
            # The connection open at the episode's start, from steady state (sim.fast.pooled).
            max_age = cohort.reuse.max_age
            age = rng.random(n) * max_age if math.isfinite(max_age) else np.zeros(n)
            self.c_open = lanes.lo - age
            self.c_last = np.maximum(shape.last_before(lanes.lo, np.full(n, cohort.rate), rng), self.c_open)
            self.conn = lanes.lo - self.c_last < cohort.reuse.keepalive
            # Opened through the stub's answer of its moment, at the rotation's position (a
            # retry then goes one further, as in the model): that answer is the stub's,
            # kept for its lifetime from then (a fetch since moves the rotation on).
            opened = np.maximum(self.c_open, 0.0)
            self.c_list, expires = lookup(self.res, opened)
            self.c_pos = (self.rot * self.step) % reps.nodes
            self.stub_list = self.c_list.copy()
            self.stub_exp = opened + cohort.stub.lifetimes_for(expires - opened, rng)

    def in_gap(self, live: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Whether the requests of lanes `live` at `now` fall in the engine's window."""
        return ((now >= self.gap_lo[live]) & (now < self.gap_hi[live])) | self.in_more(live, now)

    def in_more(self, live: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Whether they fall in another balancer fault's span (Gap.more)."""
        out = np.zeros(len(live), dtype=bool)
        for lo, hi in self.more:
            out |= (now >= lo[live]) & (now < hi[live])
        return out

    def counted(self, live: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Whether the requests just made are counted here (else in the engine's window)."""
        return ~self.in_gap(live, now) & ~self.unresolved[live]

    def request(self, live: np.ndarray, now: np.ndarray,
                nxt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The requests of lanes `live` at `now`: whether each got through, and its tries refused
        (or timed out: through a blackhole, `spent` and `refused` say which and how long). A
        retry a timeout later that comes after the lane's next request (`nxt`) reads the
        stub and the resolver of its moment but keeps nothing (`_read_only`): the model's
        requests in between meet the state without it (kept, the retry's connection to the
        standby served them: rescued 331 against the model's 1,525, pooled clients, alias_apex)."""
        reuse_rule, retire = self.cohort.reuse, self.reps.retire
        self._restart(live, now)
        fails = np.zeros(len(live), dtype=np.int64)
        done = np.zeros(len(live), dtype=bool)
        # In a balancer fault's window every node refuses (a DNS outage's leaves them up).
        refusing = self.in_gap(live, now) if self.outage is None else self.in_more(live, now)
        self.unresolved[live] = False
        at = now.copy()  # each try's time: a timed-out try's retry comes `timeout` later
        refused = np.zeros(len(live), dtype=bool)
        if self.pooled:
            # Attempt 0 on the open connection; a refusal drops it, and the next attempt (the
            # attempt counter is the position's offset, as in the model) goes through the stub.
            reuse = self.conn[live] & (now - self.c_last[live] < reuse_rule.keepalive) & \
                (now - self.c_open[live] < reuse_rule.max_age)
            c_list, c_pos = self.c_list[live], self.c_pos[live]
            gone = (retire[c_list, c_pos] <= now) | refusing
            held = reuse & ~gone & self._blackholed(c_list, now)
            done = reuse & ~gone & ~held
            fails += reuse & ~done
            refused |= reuse & gone
            at = at + np.where(held, self.cohort.timeout, 0.0)
            self.conn[live[~done]] = False
            self.c_last[live[reuse]] = now[reuse]
        attempt = fails.copy()
        for _ in range(self.cohort.attempts):
            need = ~done & (attempt < self.cohort.attempts)
            if not need.any():
                break
            idx, when = live[need], at[need]
            ahead = np.zeros(len(idx), dtype=bool) if nxt is None else (when > now[need]) & (when >= nxt[need])
            resolved, lists, rot = self._read_only(idx, when, ahead)
            if not resolved.all():
                # A failed resolution: the request fails (every try asks again, in vain).
                gone = np.flatnonzero(need)[~resolved]
                self.unresolved[live[gone]] = True
                attempt[gone] = self.cohort.attempts
                need[gone] = False
                idx, when, lists, rot = live[need], at[need], lists[resolved], rot[resolved]
                ahead = ahead[resolved]
            up, n_refused, pos, held = self._tries(lists, when, rot * self.step + attempt[need], refusing[need])
            if self.pooled:
                k = ~ahead
                self.conn[idx[k]] = up[k]
                self.c_list[idx[k]], self.c_pos[idx[k]], self.c_open[idx[k]], self.c_last[idx[k]] = \
                    lists[k], pos[k], when[k], when[k]
            done[need] = up
            fails[need] += n_refused + held
            refused[need] = np.where(up, refused[need], ~held)
            at[need] += np.where(held, self.cohort.timeout, 0.0)
            attempt[need] += ~up
        self.spent[live] = at - now
        self.refused[live] = refused
        return done, fails

    def _restart(self, live: np.ndarray, now: np.ndarray) -> None:
        """A restart since the lane's last request (sim.model.lifecycle.restart): the stub is
        empty and the connection closed, so the request asks the resolver again."""
        hit = self.next_restart[live] <= now
        if not hit.any():
            return
        idx = live[hit]
        self.stub_exp[idx] = -np.inf
        self.conn[idx] = False
        assert self.cohort.restarts is not None
        self.next_restart[idx] = self.cohort.restarts.after(self.next_restart[idx], now[hit], self.rng)

    def _read_only(self, idx: np.ndarray, at: np.ndarray,
                   ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`_fetch`, keeping nothing of it for the lanes `ahead` (their stub and rotation as before)."""
        if not ahead.any():
            return self._fetch(idx, at)
        mine = idx[ahead]
        kept = self.stub_list[mine], self.stub_exp[mine], self.rot[mine], self.unresolved[mine]
        out = self._fetch(idx, at)
        self.stub_list[mine], self.stub_exp[mine], self.rot[mine], self.unresolved[mine] = kept
        return out

    def _blackholed(self, lists: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Whether a try at a live node of `lists` at `at` times out: the churned balancer's
        blackhole (Gap.hole), for its own node lists (not the new target's, after a change)."""
        if self.hole is None:
            return np.zeros(len(lists), dtype=bool)
        return (at >= self.hole[0]) & (at < self.hole[1]) & (lists != self.reps.target)

    def _tries(self, lists: np.ndarray, at: np.ndarray, first: np.ndarray,
               refusing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One attempt through node lists `lists` from position `first`: whether it got through,
        its tries refused, the position it ended on, and whether it timed out instead (a live
        node of the blackholed balancer: `_blackholed`). With `address_mode: next` the model
        tries the answer's next address at once after a refusal, every position in turn
        (each refused try a failure: N for an attempt whose N positions all refused; not
        with a blackhole, refused by sim.fast.engine)."""
        n_nodes, retire = self.reps.nodes, self.reps.retire
        if not self.cohort.next_address:
            pos = first % n_nodes
            alive = (retire[lists, pos] > at) & ~refusing
            held = alive & self._blackholed(lists, at)
            up = alive & ~held
            return up, (~alive).astype(np.int64), pos, held
        ring = (first[:, None] + np.arange(n_nodes)) % n_nodes
        live = (retire[lists[:, None], ring] > at[:, None]) & ~refusing[:, None]
        up = live.any(axis=1)
        j = np.argmax(live, axis=1)
        return up, np.where(up, j, n_nodes), ring[np.arange(len(lists)), j], np.zeros(len(lists), dtype=bool)

    def _fetch(self, idx: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An expired stub asks the resolver and keeps its answer for the stub's lifetime of
        the remaining TTL; each answer kept moves the rotation on by one. During a DNS outage
        it gets none in the client's window or once the resolver's answer has expired (the
        model's failed resolution keeps nothing). With `stub_grace`, an answer expired less
        than the grace ago serves this try, at its rotation, and is refreshed behind it (the
        model's `in_grace`: the tries after it get the new answer). Whether each lane holds
        an answer, and the node list and rotation its try uses."""
        fetch = self.stub_exp[idx] <= at
        resolved = np.ones(len(idx), dtype=bool)
        stale = fetch & (at < self.stub_exp[idx] + self.cohort.grace)
        lists, rot = self.stub_list[idx].copy(), self.rot[idx].copy()
        if not fetch.any():
            return resolved, lists, rot
        f_idx, when = idx[fetch], at[fetch]
        got, expires, held = self.lookup.answer(self.res[f_idx], when)
        if self.outage is not None:
            lo, hi = self.outage
            ours = ~held if self.cname_out is None else when >= self.cname_out[self.res[f_idx]]
            failed = ((when >= self.gap_lo[f_idx]) & (when < self.gap_hi[f_idx])) | \
                ((when >= lo) & (when < hi) & ours)
            # A failed refresh in grace leaves the old answer, which serves the try.
            resolved[np.flatnonzero(fetch)[failed & ~stale[fetch]]] = False
            f_idx, when, got, expires = f_idx[~failed], when[~failed], got[~failed], expires[~failed]
        self.stub_list[f_idx] = got
        self.stub_exp[f_idx] = when + self.cohort.stub.lifetimes_for(expires - when, self.rng)
        self.asked.append((self.res[f_idx], when))
        self.rot[f_idx] += 1
        fresh = ~stale & resolved
        lists[fresh], rot[fresh] = self.stub_list[idx[fresh]], self.rot[idx[fresh]]
        return resolved, lists, rot


def _run(pop: Population, shape: Intensity, reps: Replacements, lookup: _Lookup, cohort: Cohort, lanes: _Lanes,
         rotate: bool, count_from: float, rng: np.random.Generator, gap: Gap | None) -> tuple[np.ndarray, ...]:
    """Each lane's requests one by one (see the module doc)."""
    n_lanes, rate = len(lanes.who), cohort.rate
    clients = _Clients(pop, shape, reps, lookup, cohort, lanes, rotate, rng, gap)
    first_fail = np.full(n_lanes, np.inf)
    recovered = np.full(n_lanes, np.inf)
    # The lanes that hold the end of the client's window: their first success from then on.
    # One that ends there (an episode taken to a DNS outage's end) has its next request at or
    # after it; a later lane of the client does not know the requests before its own start
    # (that had put `cap` stubs back after a DNS outage at their next episode, tens of seconds late).
    gap_end = clients.gap_hi
    holds_end = (lanes.lo <= gap_end) & (gap_end <= lanes.hi)
    past = np.full(n_lanes, np.inf)
    unresolved = np.full(n_lanes, np.inf)  # first failed resolution outside the window
    # Requests are Poisson in the traffic shape's measure G: stepped there (y), mapped back to
    # time once a step (as Intensity.next_after, without mapping each request's time forward).
    clock = _Clock(shape)
    y = clock.cumulative(lanes.lo) + rng.exponential(1.0, n_lanes) / rate
    t = clock.inverse(y)
    failed_o, failed_t, res_o, res_t, res_c = [], [], [], [], []
    waits = _Waits()
    live = np.flatnonzero(t < lanes.hi)
    for _ in range(MAX_REQUESTS):
        if len(live) == 0:
            break
        now = t[live]
        # Through a blackhole a retry comes a timeout later: drawn ahead, the lane's next
        # request says whether the retry's lookup and connection come before it.
        ahead = clock.step(y[live], rate, rng) if clients.hole is not None else None
        done, fails = clients.request(live, now, None if ahead is None else ahead[1])
        # Through a blackhole a request ends after its tries' timeouts (none otherwise).
        spent = clients.spent[live]
        ends = now + spent
        # The engine's window counts its requests (all failed): here they only move the state.
        counted = clients.counted(live, now)
        lost = clients.unresolved[live] & ~clients.in_gap(live, now) & np.isinf(unresolved[live])
        unresolved[live[lost]] = now[lost]
        done, fails = done & counted, fails * counted
        failed = ~done & counted
        if failed.any():
            failed_o.append(lanes.who[live[failed]])
            failed_t.append(now[failed])
            # The first failure known (a timed-out request may end after a later one refused).
            first = failed & (ends >= count_from) & (ends < first_fail[live]) & ~np.isfinite(recovered[live])
            first_fail[live[first]] = ends[first]
        saved = done & (fails > 0)
        if saved.any():
            res_o.append(lanes.who[live[saved]])
            res_t.append(now[saved])
            res_c.append(fails[saved])
        waits.add(now, done, failed, spent, clients.refused[live], shape.end)
        # As the model: the first success that ends after the first failure is known.
        back = done & np.isfinite(first_fail[live]) & ~np.isfinite(recovered[live]) & (ends > first_fail[live])
        recovered[live[back]] = ends[back]
        later = done & holds_end[live] & (now >= gap_end[live]) & ~np.isfinite(past[live])
        past[live[later]] = now[later]
        y[live], t[live] = clock.step(y[live], rate, rng) if ahead is None else ahead
        live = live[t[live] < lanes.hi[live]]
    # A failure with no success after it in its episode: the first request after the episode.
    open_ = np.isfinite(first_fail) & ~np.isfinite(recovered)
    recovered[open_] = t[open_]
    open_ = holds_end & ~np.isfinite(past)
    past[open_] = t[open_]  # inf: nothing got through before the run's end
    past[~holds_end] = np.nan
    empty_i, empty_f = np.empty(0, dtype=np.int64), np.empty(0)
    return (_cat(failed_o, empty_i), _cat(failed_t, empty_f), _cat(res_o, empty_i), _cat(res_t, empty_f),
            _cat(res_c, empty_i), first_fail, recovered, past, unresolved,
            _cat([r for r, _ in clients.asked], empty_i), _cat([w for _, w in clients.asked], empty_f),
            *waits.arrays())


class _Waits:
    """Through a blackhole, per step of `_run`: each failed request's wait and whether its last
    try was refused, the successes that waited out a timeout first (issue time, wait), and
    every success that ends in the run (issue time; Followed)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, now: np.ndarray, done: np.ndarray, failed: np.ndarray, spent: np.ndarray, refused: np.ndarray,
            end: float) -> None:
        waited = done & (spent > 0)
        # As the model, a request is counted once it ends.
        self.parts.append((spent[failed], refused[failed], now[waited], spent[waited], now[done & (now + spent <= end)]))

    def arrays(self) -> tuple[np.ndarray, ...]:
        kinds = (float, bool, float, float, float)
        if not self.parts:
            return tuple(np.empty(0, dtype=k) for k in kinds)
        return tuple(np.concatenate(x).astype(k) for x, k in zip(zip(*self.parts, strict=True), kinds, strict=True))


class _Clock:
    """The traffic shape's measure G and its inverse (sim.fast.intensity.Intensity) on the
    knots where g changes, G being linear between them: the same maps, a few knots to search
    instead of one a second (this loop maps every request)."""

    def __init__(self, shape: Intensity) -> None:
        idx = np.concatenate([[0], np.flatnonzero(np.diff(shape.g) != 0) + 1, [len(shape.g)]])
        self.x, self.G = shape.grid[idx], shape.G[idx]
        self.g_end = float(shape.cumulative(shape.end))

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.x, self.G)

    def step(self, y: np.ndarray, rate: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The next request of each lane at `y` in G: its place there and its time."""
        y_next = y + rng.exponential(1.0, len(y)) / rate
        return y_next, self.inverse(y_next)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """G^-1, inf past the end of the run."""
        return np.where(y >= self.g_end, np.inf, np.interp(y, self.G, self.x))


def _cat(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty
