"""Browsing sessions in the fast engine: every request drawn, each client followed request by request.

A cohort with `sessions` (sim.policy.sessions) sends its requests in bursts,
so nothing of the Poisson shortcuts holds for it (the first request after a
moment is not an exponential wait, and a window's count is not Poisson).
Such clients send few requests (a page view every half hour or so), so the
engine draws every one of them, with the model's law (the same start in the
cycle, session lengths, thinks and gaps; `draw`), and follows each client
through its requests as the model's request path does (`follow`): a pooled
connection reused while it is young and recently used (reset once when the
address it leads to has moved), otherwise the stub cache (fresh, or within
its grace period, which serves the old answer and refreshes behind it), otherwise
the resolver; a try to the dead balancer fails, the client's own retries
come at once. Every client is a numpy lane; the loop runs once per request
of the busiest client.

What is not followed request by request: the resolvers. Their answer turns
old to new at the moment sim.fast.dns finds for them (`opens`, from
steady state with the clients' queries taken as Poisson at their long-run
rate, as the model primes them), and a refresh before it gets the answer's
time left as seen then (docs/fast.md, "Sessions").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.fast.population import Population, stub_primed_expiry
from sim.policy.sessions import Sessions, counts


@dataclass(frozen=True)
class Requests:
    """Every request of the session clients: `times` grouped by client (in `clients` order),
    each client's in time order, from `offset[k]` to `offset[k + 1]`."""

    clients: np.ndarray  # population indices
    times: np.ndarray
    offset: np.ndarray

    @property
    def owner(self) -> np.ndarray:
        """Per request, its client's population index."""
        return np.repeat(self.clients, np.diff(self.offset))

    def lane(self) -> np.ndarray:
        """Per request, its client's lane (index into `clients`)."""
        return np.repeat(np.arange(len(self.clients)), np.diff(self.offset))

    def next_after(self, lanes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Each lane's first request after `t` (strictly; inf: none in the run)."""
        return _pick(self, lanes, t, side="right", shift=0)

    def last_before(self, lanes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Each lane's last request before `t` (strictly; -inf: none since time 0)."""
        return _pick(self, lanes, t, side="left", shift=-1)


def _pick(req: Requests, lanes: np.ndarray, t: np.ndarray, side: str, shift: int) -> np.ndarray:
    lanes = np.asarray(lanes, dtype=np.int64)
    t = np.broadcast_to(np.asarray(t, dtype=float), lanes.shape)
    out = np.full(len(lanes), np.inf if shift == 0 else -np.inf)
    for k, (lane, x) in enumerate(zip(lanes.tolist(), t.tolist(), strict=True)):
        lo, hi = int(req.offset[lane]), int(req.offset[lane + 1])
        j = lo + int(np.searchsorted(req.times[lo:hi], x, side=side)) + shift
        if lo <= j < hi:
            out[k] = req.times[j]
    return out


def draw(sessions: Sessions, n: int, end: float, rng: np.random.Generator) -> list[np.ndarray]:
    """The requests before `end` of `n` clients with `sessions`, each from a random moment of its
    cycle (Sessions.start, as the model starts them), lane by lane in lockstep."""
    waits, lefts = zip(*(sessions.start(rng) for _ in range(n)), strict=True) if n else ((), ())
    t = np.array(waits, dtype=float)
    left = np.array(lefts, dtype=np.int64)
    out: list[list[np.ndarray]] = [[] for _ in range(n)]
    columns: list[tuple[np.ndarray, np.ndarray]] = []
    live = np.flatnonzero(t < end)
    while len(live):
        columns.append((live, t[live].copy()))
        opening = left[live] < 0  # the request opens a session: the ones after it are left
        left[live[opening]] = counts(sessions.requests.sample(rng, int(opening.sum()))) - 1
        thinking = left[live] > 0
        step = np.empty(len(live))
        step[thinking] = sessions.think.sample(rng, int(thinking.sum()))
        step[~thinking] = sessions.gap.sample(rng, int((~thinking).sum()))
        left[live] = np.where(thinking, left[live] - 1, -1)
        t[live] += step
        live = live[t[live] < end]
    for lanes, times in columns:
        for lane, x in zip(lanes.tolist(), times.tolist(), strict=True):
            out[lane].append(x)
    return [np.array(x, dtype=float) for x in out]


def requests(pop: Population, end: float, rng: np.random.Generator) -> Requests | None:
    """Every session cohort's requests (None: no cohort has sessions)."""
    clients, times = [], []
    for cohort in pop.cohorts:
        if cohort.sessions is None or len(cohort.members) == 0:
            continue
        clients.append(cohort.members)
        times.extend(draw(cohort.sessions, len(cohort.members), end, rng))
    if not clients:
        return None
    sizes = np.array([len(x) for x in times], dtype=np.int64)
    return Requests(np.concatenate(clients), np.concatenate(times) if times else np.empty(0),
                    np.concatenate([[0], np.cumsum(sizes)]))


@dataclass(frozen=True)
class Plan:
    """What the follower needs of the replication: the dead balancer and the change."""

    fault: float  # the active balancer's fault (inf: none)
    fault_end: float
    changes_dns: bool  # else the address moves at `effective`
    effective: float  # the new record propagated, or the address moved (inf: never)
    changed_at: float  # from here the old balancer is the previous target
    opens: np.ndarray | None  # per population client: its resolver answers the new record from here (DNS)
    ttls: tuple[float, float | None]  # the record's TTL and, behind a CNAME, the chain's
    # Resolver farms: per resolver and cache, when that cache answers the new record (`farm_opens`);
    # None: no farm.
    farms: np.ndarray | None = None


@dataclass(frozen=True)
class Outcome:
    """Per request (aligned with Requests.times): how it went."""

    failed: np.ndarray  # its last try failed at the balancer (refused, or reset)
    first_old: np.ndarray  # its first try went to the old balancer
    any_old: np.ndarray  # some try went to the old balancer
    any_new: np.ndarray  # some try went to the new target
    rescued: np.ndarray  # failed tries before a try that got through


def follow(req: Requests, pop: Population, plan: Plan, rng: np.random.Generator) -> Outcome:
    """Each session client's requests as the model's request path takes them (module doc)."""
    total = len(req.times)
    out = Outcome(np.zeros(total, bool), np.zeros(total, bool), np.zeros(total, bool), np.zeros(total, bool),
                  np.zeros(total, np.int64))
    record_ttl, chain_ttl = plan.ttls
    prime_ttl = record_ttl if chain_ttl is None else min(record_ttl, chain_ttl)
    primed = stub_primed_expiry(pop, prime_ttl, 0.0, rng)
    lane_of = {int(c): k for k, c in enumerate(req.clients.tolist())}
    for cohort in pop.cohorts:
        if cohort.sessions is None or len(cohort.members) == 0:
            continue
        lanes = np.array([lane_of[int(c)] for c in cohort.members.tolist()], dtype=np.int64)
        _follow_cohort(req, pop, cohort, lanes, primed[cohort.members], plan, out, rng)
    return out


def _follow_cohort(req, pop, cohort, lanes, primed, plan, out, rng) -> None:  # type: ignore[no-untyped-def]
    """`follow` for one cohort's lanes, request index j of every lane at once."""
    k = len(lanes)
    members = req.clients[lanes]
    record_ttl, chain_ttl = plan.ttls
    groups = pop.resolver_group[pop.resolver[members]]
    opens = plan.opens[members] if plan.opens is not None else np.full(k, np.inf)
    farm = _Farms.of(pop, members, plan)
    keep, max_age = cohort.reuse.keepalive, cohort.reuse.max_age
    # The model's priming at time 0: a stub holding the answer until `primed`, or expired
    # (empty; with a grace period, holding it, expired an exponential time before 0).
    has_stub = (primed > 0) | (cohort.grace > 0)
    stub_exp = primed.copy()
    stub_old = np.ones(k, bool)  # every answer before the change is the old one
    conn_open = np.zeros(k, bool)
    conn_old = np.ones(k, bool)
    conn_opened = np.full(k, -np.inf)
    conn_last = np.full(k, -np.inf)
    if keep > 0:
        idle = rng.exponential(1.0 / cohort.rate, k)  # time since its last request, as the model primes
        conn_open = idle < keep
        spread = rng.random(k) * np.maximum(max_age - idle, 0.0) if math.isfinite(max_age) else np.full(k, np.inf)
        conn_opened = -idle - spread
        conn_last = -idle
    start, size = req.offset[lanes], np.diff(req.offset)[lanes]
    for j in range(int(size.max()) if k else 0):
        live = np.flatnonzero(size > j)
        at = start[live] + j
        t = req.times[at]
        ok = np.zeros(len(live), bool)
        fails = np.zeros(len(live), np.int64)
        for attempt in range(cohort.attempts):
            sel = np.flatnonzero(~ok)
            if attempt and len(sel) == 0:
                break
            i, now = live[sel], t[sel]
            reuse = conn_open[i] & (now - conn_last[i] < keep) & (now - conn_opened[i] < max_age)
            conn_open[i[~reuse]] = False
            # An address that moved since the connection opened: the connection is reset, once.
            reset = reuse & (not plan.changes_dns) & conn_old[i] & (now >= plan.effective)
            lookup = ~reuse
            fresh = lookup & has_stub[i] & (now < stub_exp[i])
            grace = lookup & ~fresh & has_stub[i] & (now >= stub_exp[i]) & (now < stub_exp[i] + cohort.grace)
            refresh = lookup & ~fresh
            r = i[refresh]
            # The resolver's answer turns at `turn`: its own, or that of the farm's cache the query reaches.
            turn = opens[i].copy()
            if farm is not None:
                turn[refresh] = farm.pick(r, rng)
            answer_old = np.where(fresh | grace, stub_old[i], now < turn)
            if len(r):
                when = now[refresh]
                left = _time_left(pop, groups[r], when, turn[refresh], plan, record_ttl, chain_ttl, rng)
                stub_exp[r] = when + cohort.stub.lifetimes_for(left, rng)
                stub_old[r] = when < turn[refresh]
                has_stub[r] = True
            old = np.where(reuse, conn_old[i], answer_old if plan.changes_dns else now < plan.effective)
            if keep > 0:
                opened = lookup
                conn_open[i[opened]] = True
                conn_old[i[opened]] = old[opened]
                conn_opened[i[opened]] = now[opened]
            conn_last[i] = now
            dead = reset | (old & (now >= plan.fault) & (now < plan.fault_end))
            conn_open[i[dead]] = False
            ok[sel] = ~dead
            fails[sel] += dead
            if attempt == 0:
                out.first_old[at] = old
            out.any_old[at[sel]] |= old
            out.any_new[at[sel]] |= ~old
        out.failed[at] = ~ok
        out.rescued[at] = np.where(ok, fails, 0)


def _time_left(pop, groups, when, opens, plan, record_ttl, chain_ttl, rng):  # type: ignore[no-untyped-def]
    """The time left on the answer a resolver gives at `when`: the old answer's until its
    expiry (`opens`) once the change has propagated; otherwise drawn from steady state (the
    record's, or the chain's A record's if shorter), as sim.fast.dns follows refreshes."""
    record = np.empty(len(when))
    chain = np.full(len(when), np.inf)
    for g, policy in enumerate(pop.group_policies):
        sel = groups == g
        if not sel.any():
            continue
        record[sel] = policy.residuals(record_ttl, rng, int(sel.sum()))
        if chain_ttl is not None:
            chain[sel] = policy.residuals(chain_ttl, rng, int(sel.sum()))
    known = plan.changes_dns & (when >= plan.effective) & (when < opens)
    return np.minimum(np.where(known, opens - when, record), chain)


def per_second(times: np.ndarray, seconds: int) -> np.ndarray:
    """How many of `times` fall in each second (the last second takes any later)."""
    if len(times) == 0:
        return np.zeros(seconds, dtype=np.int64)
    return np.bincount(np.minimum(times, seconds - 1).astype(np.int64), minlength=seconds)[:seconds]


def first_per_client(req: Requests, mask: np.ndarray, n: int) -> np.ndarray:
    """Per population client, the time of its first request in `mask` (inf: none)."""
    out = np.full(n, np.inf)
    np.minimum.at(out, req.owner[mask], req.times[mask])
    return out


def recovered(req: Requests, out: Outcome, first_fail: np.ndarray) -> np.ndarray:
    """Per population client, its first request after its first failure that got past the
    balancer (inf: none, or no failure)."""
    owner = req.owner
    after = ~out.failed & (req.times > first_fail[owner])
    return first_per_client(req, after, len(first_fail))


def switches(req: Requests, out: Outcome, changed_at: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per population client, from `changed_at` on: its first request with a try to the new
    target, and its last with a try to the old one (-inf: none)."""
    since = req.times >= changed_at
    first_new = first_per_client(req, since & out.any_new, n)
    last_old = np.full(n, -np.inf)
    np.maximum.at(last_old, req.owner[since & out.any_old], req.times[since & out.any_old])
    return first_new, last_old


def targets_counts(req: Requests, out: Outcome, pop: Population, changed_at: float,
                   seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cohort and second, the session clients' first tries to the previous target (the old
    balancer from `changed_at` on), to the current one, and the failed tries a later one rescued."""
    k = len(pop.cohorts)
    previous, current, saved = (np.zeros((k, seconds), dtype=np.int64) for _ in range(3))
    cohort = pop.cohort[req.owner]
    to_previous = out.first_old & (req.times >= changed_at)
    for c in range(k):
        mine = cohort == c
        if not mine.any():
            continue
        previous[c] = per_second(req.times[mine & to_previous], seconds)
        current[c] = per_second(req.times[mine & ~to_previous], seconds)
        at = np.minimum(req.times[mine], seconds - 1).astype(np.int64)
        saved[c] = np.bincount(at, weights=out.rescued[mine], minlength=seconds)[:seconds].astype(np.int64)
    return previous, current, saved


class _Farms:
    """The farm caches a cohort's lanes query: per lane its resolver's row of `Plan.farms`, its
    own cache (its turn among its resolver's clients, as the model attaches them) and its
    group's stickiness; lanes on plain resolvers keep their resolver's moment."""

    def __init__(self, rows: np.ndarray, home: np.ndarray, caches: np.ndarray, sticky: np.ndarray,
                 plain: np.ndarray, table: np.ndarray) -> None:
        self.rows, self.home, self.caches, self.sticky, self.plain, self.table = rows, home, caches, sticky, plain, table

    @classmethod
    def of(cls, pop: Population, members: np.ndarray, plan: Plan) -> _Farms | None:
        if plan.farms is None:
            return None
        resolver = pop.resolver[members]
        group = pop.resolver_group[resolver]
        caches = np.array([s.farm.caches for s in pop.group_setups])[group]
        sticky = np.array([s.farm.sticky for s in pop.group_setups])[group]
        plain = plan.opens[members] if plan.opens is not None else np.full(len(members), np.inf)
        return cls(resolver, homes(pop)[members] % caches, caches, sticky, plain, plan.farms)

    def pick(self, lanes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each query's cache, as sim.policy.resolver.Farm.pick draws it (its own cache with
        probability `sticky`, else one uniformly), and when that cache turns."""
        u = rng.random(len(lanes))
        n, sticky = self.caches[lanes], self.sticky[lanes]
        with np.errstate(divide="ignore", invalid="ignore"):
            drawn = np.minimum(((u - sticky) / np.maximum(1.0 - sticky, 1e-12) * n).astype(np.int64), n - 1)
        cache = np.where(u < sticky, self.home[lanes], np.maximum(drawn, 0))
        return np.where(n > 1, self.table[self.rows[lanes], np.minimum(cache, self.table.shape[1] - 1)],
                        self.plain[lanes])


def homes(pop: Population) -> np.ndarray:
    """Per client, its turn among its resolver's clients (in client order): the model's
    Resolver.attach gives the k-th client cache k mod caches."""
    order = np.argsort(pop.resolver, kind="stable")
    rank = np.empty(pop.size, dtype=np.int64)
    counts_ = np.bincount(pop.resolver, minlength=len(pop.resolver_group))
    first = np.concatenate([[0], np.cumsum(counts_)[:-1]])
    rank[order] = np.arange(pop.size) - np.repeat(first, counts_)
    return rank


def farm_opens(pop: Population, ttl: float, q: np.ndarray, at: float, rng: np.random.Generator) -> np.ndarray | None:
    """Per resolver and cache, when the cache answers the record changed at `at`: each cache of a
    farm of N gets 1/N of its resolver's queries (random picks; sticky ones when its clients are
    alike, as the model primes them), holds the old answer with probability E[L] / (E[L] + N/q)
    and then for its equilibrium residual. None: no farm. Plain resolvers' rows are unused."""
    sizes = [s.farm.caches for s in pop.group_setups] if pop.group_setups else [1]
    width = max(sizes)
    if width == 1:
        return None
    out = np.full((len(q), width), at)
    for g, policy in enumerate(pop.group_policies):
        n = sizes[g]
        members = np.flatnonzero(pop.resolver_group == g)
        if n == 1 or len(members) == 0:
            continue
        rate = np.repeat(q[members] / n, n)
        mean_life = float(np.mean(policy.lifetimes(ttl, rng, 64)))
        with np.errstate(divide="ignore", invalid="ignore"):
            present = np.isinf(mean_life) | ((rate > 0) & (rng.random(len(rate)) < mean_life / (mean_life + 1.0 / rate)))
        expiry = np.where(present, at + policy.residuals(ttl, rng, len(rate)), at)
        out[members, :n] = np.maximum(expiry, at).reshape(len(members), n)
    return out
