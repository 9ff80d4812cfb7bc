"""Resolvers with few clients, followed fetch by fetch around the record change.

When a resolver serves a handful of clients, its cache and their stub caches
move together: a client's refresh is often what made the resolver fetch, so
both expire together. Drawing the two independently (fine for a resolver with
many clients) then gets the time a stub that holds answers (floor, fixed,
extend) lets go of the old record badly wrong. For those resolvers this
module runs the refreshes as events, one per resolver per round, from a
burn-in before the change until each holding client has the new record:

- a holding client refreshes at its first request after its stub expires;
  the resolver fetches if its own answer has expired; the answer is new if
  the resolver's copy was fetched after the change propagated;
- the resolver's other clients (stubs that never outlive the resolver's
  answer) are a Poisson stream of queries: after each expiry the resolver
  fetches at the first of them, unless a holding client comes first.

It returns the holding clients' switch times and, for the others, when the
resolver's old answer ran out.
"""

from __future__ import annotations

import math

import numpy as np

from sim.fast.intensity import Intensity
from sim.fast.population import Population, stub_primed_expiry

MAX_HOLDING = 64  # above this many holding clients a resolver is drawn independently (sim.fast.dns)
MAX_ROUNDS = 100_000


def exact_resolvers(pop: Population, holding: np.ndarray) -> np.ndarray:
    """Resolvers with at least one and at most MAX_HOLDING holding clients."""
    count = np.bincount(pop.resolver[holding], minlength=len(pop.resolver_group))
    return (count > 0) & (count <= MAX_HOLDING)


def follow(
    pop: Population,
    shape: Intensity,
    propagated: float,
    holding: np.ndarray,  # bool per client: stub may outlive the resolver's answer
    query_rate: np.ndarray,  # per client: queries/s when its stub never holds (used for the others)
    exact: np.ndarray,  # bool per resolver
    fault: tuple[float, float],  # the dead balancer's outage [start, end)
    service_ttl: float,
    balancer_ttl: float | None,
    prime_ttl: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per holding client of an exact resolver: its switch time, when its stub last expired
    before it (no request in between), its old refreshes during the outage and the
    G-measure of its old stub periods during it; per exact resolver: when its old
    answer ran out."""
    ttls = (service_ttl, balancer_ttl, prime_ttl)
    run = _Follow(pop, shape, propagated, holding, query_rate, exact, fault, ttls, rng)
    for _ in range(MAX_ROUNDS):
        if not run.round():
            break
    return run.result()


class _Follow:
    """The exact resolvers and their holding clients, from the burn-in on, round by round:
    resolver caches (expiry, the fetch behind it, the other clients' next query) and each
    holding client's stub (last expiry, next refresh, switch, requests to the dead balancer)."""

    def __init__(self, pop: Population, shape: Intensity, propagated: float, holding: np.ndarray,
                 query_rate: np.ndarray, exact: np.ndarray, fault: tuple[float, float],
                 ttls: tuple[float, float | None, float], rng: np.random.Generator) -> None:
        self.pop, self.shape, self.rng = pop, shape, rng
        self.propagated, self.exact, self.fault = propagated, exact, fault
        self.service_ttl, self.balancer_ttl, prime_ttl = ttls
        mean_life = np.array([float(np.mean(p.lifetimes(self.service_ttl, rng, 64))) for p in pop.group_policies])
        stub_mean = max((float(np.mean(c.stub.lifetimes(prime_ttl, rng, 64))) for c in pop.cohorts
                         if c.stub.kind not in ("forever",)), default=0.0)
        burn = 3.0 * max(float(np.max(mean_life[np.isfinite(mean_life)], initial=0.0)), stub_mean, 1.0)
        t0 = max(0.0, propagated - burn)
        self.clients = np.flatnonzero(holding & exact[pop.resolver])
        self.res = pop.resolver[self.clients]
        self.cohort_of = pop.cohort[self.clients]
        # Resolver state: expiry, time of the fetch behind it, next fetch by the other clients' queries.
        self.other = np.zeros(len(pop.resolver_group))
        np.add.at(self.other, pop.resolver[~holding], query_rate[~holding])
        self.expiry = self._primed_expiry(t0, mean_life)
        self.fetched = np.full(len(pop.resolver_group), -np.inf)
        self.old_expiry = np.full(len(pop.resolver_group), np.nan)
        self.poisson = shape.next_after(self.expiry, self.other, rng)
        stub = stub_primed_expiry(pop, prime_ttl, t0, rng)
        self.rate = pop.rate[self.clients]
        self.since = stub[self.clients]  # when each holding client's stub last expired: no request since
        # Each holding client's next restart (inf: none), from a random moment of its cycle:
        # a restart empties the stub, so an answer is held until then at most.
        self.restart = np.full(len(self.clients), np.inf)
        for ci, cohort in enumerate(pop.cohorts):
            mine = self.cohort_of == ci
            if cohort.restarts is not None and mine.any():
                self.restart[mine] = t0 + cohort.restarts.equilibrium(rng, int(mine.sum()))[1]
        self.since = np.minimum(self.since, self.restart)
        # next refresh of each holding client (after t0: a stub in grace expired before it)
        self.when = shape.next_after(np.maximum(self.since, t0), self.rate, rng)
        self.grace = np.array([c.grace for c in pop.cohorts])[self.cohort_of]
        # Requests to the dead balancer: old refreshes during the outage, counted one by one,
        # and the G-measure of old stub periods during it (requests there are Poisson).
        lo, hi = fault
        self.hits = np.zeros(len(self.clients), dtype=np.int64)
        self.mass = shape.measure(np.maximum(t0, lo) + np.zeros(len(self.clients)), np.minimum(self.since, hi))
        self.switch = np.full(len(self.clients), np.inf)

    def _primed_expiry(self, t0: float, mean_life: np.ndarray) -> np.ndarray:
        """Each exact resolver's cache at the burn-in's start, as steady state finds it."""
        pop, group, rng = self.pop, self.pop.resolver_group, self.rng
        expiry = np.full(len(group), t0)
        for g, policy in enumerate(pop.group_policies):
            sel = self.exact & (group == g)
            k = int(sel.sum())
            if k == 0:
                continue
            life = mean_life[g]
            total_q = self.other[sel] + _stub_cycle_rate(pop, self.clients, self.res, sel)
            with np.errstate(divide="ignore", invalid="ignore"):
                present = np.isinf(life) | (rng.random(k) < life / (life + 1.0 / total_q))
            expiry[sel] = np.where(present, t0 + policy.residuals(self.service_ttl, rng, k), t0)
        return expiry

    def round(self) -> bool:
        """One event per resolver that has one before the end: a fetch by its other clients'
        queries, or its earliest holding client's refresh. False once none has."""
        res, when = self.res, self.when
        first = np.full(len(self.expiry), np.inf)
        np.minimum.at(first, res, when)
        step = np.minimum(first, self.poisson)
        # A resolver is done once its holding clients have switched and it has fetched after the change.
        step[np.isinf(first) & ~np.isnan(self.old_expiry)] = np.inf
        step[~self.exact] = np.inf
        busy = np.flatnonzero(step < self.shape.end)
        if len(busy) == 0:
            return False
        by_others = busy[self.poisson[busy] < first[busy]]
        self._fetch(by_others, self.poisson[by_others])
        # One holding client per remaining resolver: the earliest.
        by_client = np.zeros(len(self.expiry), dtype=bool)
        by_client[busy[self.poisson[busy] >= first[busy]]] = True
        pick = np.flatnonzero(by_client[res] & (when == first[res]))
        pick = pick[np.unique(res[pick], return_index=True)[1]]
        r, t = res[pick], when[pick]
        stale = t >= self.expiry[r]
        self._fetch(r[stale], t[stale])
        new = self.fetched[r] >= self.propagated
        self._switch(pick[new], t[new])
        keep = pick[~new]
        if len(keep):
            self._keep_old(keep)
        return True

    def _switch(self, pick: np.ndarray, t: np.ndarray) -> None:
        """Clients `pick` got the new answer at `t`. Within its stub's grace period the request
        there was served from the expired (old) answer, and the next one is the switch."""
        late = t < self.since[pick] + self.grace[pick]
        lo, hi = self.fault
        self.hits[pick[late]] += (t[late] >= lo) & (t[late] < hi)
        # From here to the switch the wait is unconditioned (the engine counts successes from
        # `since` on): the grace request itself, or the end of the grace period it came after.
        self.since[pick] = np.where(late, t, self.since[pick] + self.grace[pick])
        self.switch[pick] = np.where(late, self.shape.next_after(t, self.rate[pick], self.rng), t)
        self.when[pick] = np.inf

    def _fetch(self, r: np.ndarray, t: np.ndarray) -> None:
        """Resolvers `r` fetch at `t`; their other clients' next query comes after the new expiry."""
        _fetch(r, t, self.expiry, self.fetched, self.old_expiry, self.propagated, self.pop.group_policies,
               self.pop.resolver_group, self.service_ttl, self.rng)
        self.poisson[r] = self.shape.next_after(self.expiry[r], self.other[r], self.rng)

    def _keep_old(self, keep: np.ndarray) -> None:
        """Holding clients `keep` refreshed and got the old answer: their stubs hold it for a
        lifetime, counted against the outage, and they refresh at their next request after."""
        pop, shape, rng, group, when = self.pop, self.shape, self.rng, self.pop.resolver_group, self.when
        lo, hi = self.fault
        left = self.expiry[self.res[keep]] - when[keep]
        a_left = np.full(len(keep), np.inf)
        for g, policy in enumerate(pop.group_policies):
            sel = group[self.res[keep]] == g
            if sel.any() and self.balancer_ttl is not None:
                a_left[sel] = policy.residuals(self.balancer_ttl, rng, int(sel.sum()))
        life = np.empty(len(keep))
        for ci in np.unique(self.cohort_of[keep]):
            sel = self.cohort_of[keep] == ci
            life[sel] = pop.cohorts[ci].stub.lifetimes_for(np.minimum(left[sel], a_left[sel]), rng)
            restarts = pop.cohorts[ci].restarts
            if restarts is not None:
                who = keep[sel]
                self.restart[who] = restarts.after(self.restart[who], when[who], rng)
                life[sel] = np.minimum(life[sel], self.restart[who] - when[who])
        self.hits[keep] += (when[keep] >= lo) & (when[keep] < hi)
        self.mass[keep] += shape.measure(np.maximum(when[keep], lo), np.minimum(when[keep] + life, hi))
        self.since[keep] = when[keep] + life
        when[keep] = shape.next_after(self.since[keep], self.rate[keep], rng)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`follow`'s answer, per client (NaN for those not followed) and per resolver."""
        n, clients, switch, lo, hi = self.pop.size, self.clients, self.switch, *self.fault
        # Resolvers that never fetched after the change: their old answer ends at its expiry.
        old_expiry = self.old_expiry.copy()
        unset = self.exact & np.isnan(old_expiry)
        old_expiry[unset] = self.expiry[unset]
        out = np.full(n, np.nan)
        out[clients] = switch
        last_old = np.full(n, np.nan)
        last_old[clients] = np.where(np.isfinite(switch), self.since, np.inf)
        # Not switched within the run: every request until the outage ends went to it.
        stuck = ~np.isfinite(switch)
        mass, hits = self.mass.copy(), self.hits.copy()
        mass[stuck] = self.shape.measure(np.full(int(stuck.sum()), lo), np.full(int(stuck.sum()), hi))
        hits[stuck] = 0
        counted = np.zeros(n, dtype=np.int64)
        counted[clients] = hits
        measured = np.full(n, np.nan)
        measured[clients] = mass
        return out, last_old, np.maximum(old_expiry, self.propagated), counted, measured


def _fetch(r, t, expiry, fetched, old_expiry, propagated, policies, group, ttl, rng) -> None:  # type: ignore[no-untyped-def]
    if len(r) == 0:
        return
    crossing = (t >= propagated) & np.isnan(old_expiry[r])
    old_expiry[r[crossing]] = np.minimum(expiry[r[crossing]], t[crossing])
    fetched[r] = t
    for g, policy in enumerate(policies):
        sel = group[r] == g
        if sel.any():
            expiry[r[sel]] = t[sel] + policy.lifetimes(ttl, rng, int(sel.sum()))


def _stub_cycle_rate(pop: Population, clients: np.ndarray, res: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Rough query rate of a resolver's holding clients, for priming its cache at the burn-in's start."""
    q = np.zeros(len(pop.resolver_group))
    for ci, cohort in enumerate(pop.cohorts):
        mine = pop.cohort[clients] == ci
        if not mine.any():
            continue
        life = float(np.mean(cohort.stub.lifetimes(0.0, np.random.default_rng(0), 8)))
        per = 0.0 if math.isinf(life) else 1.0 / (life + 1.0 / cohort.rate)
        np.add.at(q, res[mine], per)
    return q[sel]
