"""Resolvers of pooled clients through a balancer fault: followed query by query from time 0.

A client with keep-alive asks its stub only when it opens a connection (every
`max_connection_age` at most, or after an idle gap of `keepalive`), so its
resolver sees few queries before the fault; from the fault on every request
breaks its connection (a refused or timed-out try closes it, as in the model)
and the next one looks the name up. The resolver's answer when the failover's
change propagates therefore depends on when the fault began, less than a TTL
before it: drawn from steady state at the change at the outage's query rate
(`sim.fast.dns.resolver_expiry`), most resolvers hold an answer there with an
expiry spread over the whole TTL, where in the model most fetched theirs at
their clients' first failure (300 pooled clients, honouring stubs, keepalive
60 s, age 2 min, blue refusing from 40 s for 40 s: failed 11,738 against the
model's 11,997, recovery mean 39.9 s against 40.9 s).

Here each such resolver and its pooled clients are followed from time 0, with
the model's priming (resolver entries as `sim.policy.cache.primed_entry`
draws them at the averaged query rate, each stub and connection as
`sim.model.building._prime_client` does), until the change propagates:

- a pooled client consults its stub at each request that opens a connection
  (`sim.fast.pooled.next_open` before the fault and after its end), and at
  every request during the fault except the first one on a connection still
  open (refused on it, no lookup; a retry, at once or after the timeout of a
  blackhole, looks up);
- a consult with an expired stub queries the resolver, which fetches each
  expired record (the CNAME and, behind it, the balancer's A record are
  cached apart, as in the model), and the stub keeps the answer by its policy;
- the resolver's other clients (no keep-alive) query at their full rate, a
  Poisson stream: after an expiry the first of them fetches.

Only resolvers whose clients all have stubs that never outlive the answer (no
grace, no restarts, not followed request by request) and plain caches (no
farm, prefetch or serve-expired) are followed; the others are drawn as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.fast.intensity import Intensity
from sim.fast.pooled import last_short, next_open
from sim.fast.population import WITHIN_TTL, Cohort, Population, stub_primed_expiry

MAX_ROUNDS = 100_000


@dataclass(frozen=True)
class Fault:
    """The active balancer's fault as the pooled clients meet it."""

    start: float
    end: float  # inf: for the rest of the run
    blackhole: bool  # a retry follows a failed try after the client's timeout (else at once)
    # Our authoritative servers down in [lo, hi) (a dns_down; no balancer fault then): the
    # service record is not fetched there, and a client that must look it up fails.
    outage: tuple[float, float] = (math.inf, math.inf)


def followed_resolvers(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Resolvers followed here (bool per resolver), and their pooled clients (indices)."""
    n_res = len(pop.resolver_group)
    pooled = np.zeros(pop.size, dtype=bool)
    plain = np.ones(pop.size, dtype=bool)
    for cohort in pop.cohorts:
        idx = cohort.members
        fits = cohort.stub.kind in WITHIN_TTL and cohort.grace == 0 and cohort.restarts is None \
            and not cohort.followed
        plain[idx] = fits
        pooled[idx] = fits and cohort.reuse.keepalive > 0 and cohort.rate > 0
    bad = np.bincount(pop.resolver[~plain], minlength=n_res) > 0
    has = np.bincount(pop.resolver[pooled], minlength=n_res) > 0
    setups = pop.group_setups
    odd = np.array([bool(setups) and (setups[g].farm.caches > 1 or setups[g].prefetch
                                      or setups[g].serve_expired is not None)
                    for g in range(len(pop.group_names))], dtype=bool)
    ok = has & ~bad & ~odd[pop.resolver_group]
    return ok, np.flatnonzero(pooled & ok[pop.resolver])


def old_expiry(pop: Population, shape: Intensity, fault: Fault, propagated: float, service_ttl: float,
               ttls: tuple[float, float | None], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per resolver followed here: when the answer it holds as the change propagates (or the
    DNS outage begins) expires (its last fetch before then; at or before `propagated`: it
    fetches the new one at its next query); NaN for the resolvers not followed. `ttls`: the
    changing record's and, behind a CNAME, the balancer's A record's. Second, per client:
    through a DNS outage, its first failed lookup (inf: none before the outage ends; NaN: not
    followed here)."""
    out = np.full(len(pop.resolver_group), np.nan)
    fails = np.full(pop.size, np.nan)
    ok, clients = followed_resolvers(pop)
    if len(clients) == 0 or not math.isfinite(propagated):
        return out, fails
    until = fault.outage[1] if math.isfinite(fault.outage[0]) else propagated
    run = _Follow(pop, shape, fault, until, priming_rates(pop, service_ttl, rng), ttls, ok, clients, rng)
    for _ in range(MAX_ROUNDS):
        if not run.round():
            break
    out[ok] = run.expiry()[ok]
    fails[clients] = run.failed
    return out, fails


def priming_rates(pop: Population, service_ttl: float, rng: np.random.Generator) -> np.ndarray:
    """Per resolver, the query rate with which the model primes its cache at time 0
    (sim.model.building._resolver_load): per client one query per stub cycle, the stub's
    lifetime for half the service TTL plus the wait for a request, keep-alive or not. (The
    engine's own rate counts a pooled client's connections instead: right in steady state,
    not for the model's time 0.)"""
    q = np.zeros(len(pop.resolver_group))
    for cohort in pop.cohorts:
        if len(cohort.members) == 0 or cohort.rate <= 0:
            continue
        life = float(np.mean(cohort.stub.lifetimes(service_ttl / 2.0, rng, 1)))
        if math.isfinite(life):
            np.add.at(q, pop.resolver[cohort.members], 1.0 / (life + 1.0 / cohort.rate))
    return q


class _Follow:
    """The followed resolvers' records (expiry per record) and their pooled clients (stub
    expiry `s`, next consult `x`), round by round up to the change's propagation."""

    def __init__(self, pop: Population, shape: Intensity, fault: Fault, propagated: float, prime_q: np.ndarray,
                 ttls: tuple[float, float | None], ok: np.ndarray, clients: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.pop, self.shape, self.fault, self.until, self.rng = pop, shape, fault, propagated, rng
        self.ok, self.clients = ok, clients
        self.res = pop.resolver[clients]
        self.ttls = ttls
        n_res = len(pop.resolver_group)
        # Each record primed as the model primes it (present E[L] / (E[L] + 1/q) of the time).
        self.records = [self._primed(ttl, prime_q) for ttl in ttls if ttl is not None]
        # The other clients' queries (no keep-alive: every request asks once the answer expired).
        self.other = np.zeros(n_res)
        for cohort in pop.cohorts:
            if cohort.reuse.keepalive <= 0 and len(cohort.members):
                np.add.at(self.other, pop.resolver[cohort.members], cohort.rate)
        self.poisson = self._others(np.arange(n_res))
        self.done = ~ok
        self.failed = np.full(len(clients), np.inf)  # first failed lookup in a DNS outage
        # Clients: the model's priming of stub and connection, then their first consult.
        prime_ttl = min(t for t in ttls if t is not None)
        self.s = stub_primed_expiry(pop, prime_ttl, 0.0, rng)[clients]
        self.cohort_of = pop.cohort[clients]
        self.x = np.empty(len(clients))
        for ci, cohort in self._cohorts():
            mine = self.cohort_of == ci
            self.x[mine] = self._first_consult(cohort, int(mine.sum()))

    def _cohorts(self) -> list[tuple[int, Cohort]]:
        return [(ci, c) for ci, c in enumerate(self.pop.cohorts) if np.any(self.cohort_of == ci)]

    def _primed(self, ttl: float, q: np.ndarray) -> np.ndarray:
        pop, rng = self.pop, self.rng
        out = np.zeros(len(pop.resolver_group))
        for g, policy in enumerate(pop.group_policies):
            sel = np.flatnonzero(pop.resolver_group == g)
            if len(sel) == 0:
                continue
            mean = float(np.mean(policy.lifetimes(ttl, rng, 64)))
            with np.errstate(divide="ignore", invalid="ignore"):
                present = np.isinf(mean) | ((q[sel] > 0) & (rng.random(len(sel)) < mean / (mean + 1.0 / q[sel])))
            out[sel] = np.where(present, policy.residuals(ttl, rng, len(sel)), 0.0)
        return out

    def _expires(self) -> np.ndarray:
        return np.minimum.reduce(self.records) if len(self.records) > 1 else self.records[0]

    def _first_consult(self, cohort: Cohort, n: int) -> np.ndarray:
        """The model's primed connection (last use an Exp(rate) ago, opened uniformly within its
        age limit before that), then the first request that consults the stub."""
        rng, shape, reuse, r = self.rng, self.shape, cohort.reuse, cohort.rate
        idle = rng.exponential(1.0 / r, n)
        age = reuse.max_age
        spread = np.where(age > idle, age - idle, 0.0) if math.isfinite(age) else np.zeros(n)
        opened = -idle - rng.random(n) * spread
        first = shape.next_after(np.zeros(n), r, rng)
        alive = (idle < reuse.keepalive) & (first + idle < reuse.keepalive) & (first - opened < age)
        out = first.copy()
        if alive.any():
            out[alive] = self._on_connection(cohort, opened[alive], first[alive])
        return out

    def _in_fault(self, t: np.ndarray) -> np.ndarray:
        return (t >= self.fault.start) & (t < self.fault.end)

    def _on_connection(self, cohort: Cohort, opened: np.ndarray, used: np.ndarray) -> np.ndarray:
        """The next consult after a request at `used` sent on a connection opened at `opened`."""
        fault, shape, rng, r = self.fault, self.shape, self.rng, cohort.rate
        out = np.empty(len(used))
        hit = self._in_fault(used)
        out[hit] = self._after_refusal(cohort, used[hit])
        ok = ~hit
        nxt = next_open(opened[ok], used[ok], cohort.reuse.keepalive, cohort.reuse.max_age, r, shape, rng)
        # The fault begins while the connection is open: its first request there is refused on it.
        cross = (used[ok] < fault.start) & (nxt >= fault.start)
        if cross.any():
            f1 = shape.next_after(np.full(int(cross.sum()), fault.start), r, rng)
            on = (f1 < nxt[cross]) & (f1 < fault.end)
            sub = nxt[cross]
            sub[on] = self._after_refusal(cohort, f1[on])
            nxt[cross] = sub
        out[ok] = nxt
        return out

    def _after_refusal(self, cohort: Cohort, t: np.ndarray) -> np.ndarray:
        """A try on an open connection failed at `t`: it closed, and the retry (if any) or the
        next request looks the name up."""
        if cohort.attempts > 1:
            return t + (cohort.timeout if self.fault.blackhole else 0.0)
        return self.shape.next_after(t, cohort.rate, self.rng)

    def _after_consult(self, sel: np.ndarray) -> None:
        """Clients `sel` consulted their stub at `x`: the next consult."""
        for ci, cohort in self._cohorts():
            who = sel[self.cohort_of[sel] == ci]
            if len(who) == 0:
                continue
            t = self.x[who]
            hit = self._in_fault(t)
            nxt = np.empty(len(who))
            nxt[hit] = self.shape.next_after(t[hit], cohort.rate, self.rng)
            nxt[~hit] = self._on_connection(cohort, t[~hit], t[~hit])
            self.x[who] = nxt

    def _skip_held(self) -> None:
        """Consults served by the stub change nothing upstream: move each client to its first
        consult with an expired stub (a query)."""
        for _ in range(MAX_ROUNDS):
            held = np.flatnonzero((self.x < self.s) & (self.x < self.until))
            if len(held) == 0:
                return
            fault = self._in_fault(self.x[held])
            # In the fault every request consults: the first one after the stub's expiry (or after
            # the fault's end, a reconnect on a refused connection).
            infault = held[fault]
            for ci, cohort in self._cohorts():
                who = infault[self.cohort_of[infault] == ci]
                if len(who):
                    self.x[who] = self.shape.next_after(np.minimum(self.s[who], self.fault.end), cohort.rate, self.rng)
            self._after_consult(held[~fault])

    def _others(self, r: np.ndarray) -> np.ndarray:
        """The other clients' first query after resolvers `r`'s answer expired that fetches:
        none does in a DNS outage (the first after it then; the follow ends there)."""
        lo, hi = self.fault.outage
        p = self.shape.next_after(self._expires()[r], self.other[r], self.rng)
        down = (p >= lo) & (p < hi)
        p[down] = self.shape.next_after(np.full(int(down.sum()), hi), self.other[r][down], self.rng)
        return p

    def _query(self, sel: np.ndarray) -> None:
        """Clients `sel` query their resolver at `x` (fetching whatever expired): their stubs
        keep the answer by their policy, and they move to their next consult. In a DNS outage
        a client whose resolver must fetch the service record fails: its window starts there
        (every request after it fails until the outage ends), and it is followed no further."""
        lo, hi = self.fault.outage
        t, r = self.x[sel], self.res[sel]
        lost = (t >= lo) & (t < hi) & (t >= self.records[0][r])
        if lost.any():
            gone = sel[lost]
            self.failed[gone] = t[lost]
            self.x[gone] = np.inf
            sel, t, r = sel[~lost], t[~lost], r[~lost]
        self._fetch(r, t)
        left = self._expires()[r] - t
        for ci, cohort in self._cohorts():
            mine = self.cohort_of[sel] == ci
            if mine.any():
                self.s[sel[mine]] = t[mine] + cohort.stub.lifetimes_for(left[mine], self.rng)
        self._after_consult(sel)

    def _fetch(self, r: np.ndarray, t: np.ndarray) -> None:
        """Resolvers `r` asked at `t`: each expired record is fetched."""
        pop, rng = self.pop, self.rng
        ttls = [ttl for ttl in self.ttls if ttl is not None]
        moved = np.zeros(len(r), dtype=bool)
        lo, hi = self.fault.outage
        for i, (rec, ttl) in enumerate(zip(self.records, ttls, strict=True)):
            stale = t >= rec[r]
            if i == 0:
                stale &= (t < lo) | (t >= hi)  # our servers down: the service record is not fetched
            moved |= stale
            for g, policy in enumerate(pop.group_policies):
                w = stale & (pop.resolver_group[r] == g)
                if w.any():
                    rec[r[w]] = t[w] + policy.lifetimes(ttl, rng, int(w.sum()))
        moved = np.unique(r[moved])
        self.poisson[moved] = self._others(moved)

    def round(self) -> bool:
        """Queries that fetch nothing at once, then per resolver its first query after its
        answer expired (a pooled client's or another client's), which fetches."""
        self._skip_held()
        x, res, until = self.x, self.res, self.until
        expires = self._expires()
        for _ in range(MAX_ROUNDS):
            fresh = np.flatnonzero((x < until) & (x < expires[res]))
            if len(fresh) == 0:
                break
            self._query(fresh)
            self._skip_held()
        first = np.full(len(expires), np.inf)
        np.minimum.at(first, res, x)
        step = np.minimum(first, self.poisson)
        live = np.flatnonzero(~self.done & (step < until))
        self.done[~self.done & (step >= until)] = True
        if len(live) == 0:
            return False
        by_others = live[self.poisson[live] < first[live]]
        self._fetch(by_others, self.poisson[by_others])
        rest = np.zeros(len(expires), dtype=bool)
        rest[live[self.poisson[live] >= first[live]]] = True
        pick = np.flatnonzero(rest[res] & (x == first[res]))
        pick = pick[np.unique(res[pick], return_index=True)[1]]
        self._query(pick)
        return True

    def expiry(self) -> np.ndarray:
        """The changing record's expiry (the first record: the service's)."""
        return self.records[0]


def outage_starts(cohort: Cohort, shape: Intensity, lo: float, hi: float, expires: np.ndarray, stub: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Our DNS servers down in [lo, hi): per member of `cohort` (keepalive > 0), the moment
    from which its requests fail to resolve (`hi`: none). A pooled connection carries requests
    through the outage with no lookup; the client fails at its first request that opens a
    connection (sim.fast.pooled.next_open) once its resolver's answer has run out
    (`expires`, no fetch succeeds then) and its stub has let go (`stub`: when its answer at
    `lo` expires; a refetch before `expires` gets the time left), and every request after
    that fails too (a failed lookup keeps nothing) until the outage ends. The moment returned
    is the one after which that request is the first (its idle close or age limit, or the
    answer's expiry): requests from there are a Poisson stream, the first of them failing.
    The connection open at `lo` is taken from steady state, as sim.fast.pooled takes it."""
    k, age, r = cohort.reuse.keepalive, cohort.reuse.max_age, cohort.rate
    n = len(expires)
    start = np.full(n, lo)
    last = shape.last_before(start, r, rng)
    opened = last - rng.random(n) * age if math.isfinite(age) else last.copy()
    first = shape.next_after(start, r, rng)
    alive = (first - last < k) & (first - opened < age)
    moment = start.copy()  # not alive: `first` is the first request after `lo`, and opens one
    x = first.copy()
    if alive.any():
        moment[alive], x[alive] = _reopen(opened[alive], first[alive], k, age, r, shape, rng)
    holds = cohort.stub.kind not in WITHIN_TTL
    stub_exp = stub.copy() if holds else np.full(n, -np.inf)
    out = np.full(n, hi)
    pending = np.flatnonzero(x < hi)
    for _ in range(MAX_ROUNDS):
        if len(pending) == 0:
            break
        now = x[pending]
        from_stub = now < stub_exp[pending]
        fails = ~from_stub & (now >= expires[pending])
        out[pending[fails]] = np.maximum(moment[pending[fails]], expires[pending[fails]])
        refetch = pending[~from_stub & ~fails]
        if holds and len(refetch):
            stub_exp[refetch] = x[refetch] + cohort.stub.lifetimes_for(expires[refetch] - x[refetch], rng)
        keep = pending[~fails]
        moment[keep], x[keep] = _reopen(x[keep], x[keep], k, age, r, shape, rng)
        pending = keep[x[keep] < hi]
    return out


def _reopen(opened: np.ndarray, used: np.ndarray, k: float, age: float, r: float, shape: Intensity,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """sim.fast.pooled.next_open, with the moment after which its request is the first: the
    connection's idle close (its last short gap plus k) or its age limit."""
    limit = opened + age if math.isfinite(age) else np.full(len(opened), shape.end)
    used_last = last_short(used, k, r, shape, limit, rng)
    moment = used_last + k
    if math.isfinite(age):
        moment = np.where(opened + age < used_last, np.maximum(opened + age, used), moment)
    return moment, shape.next_after(moment, r, rng)
