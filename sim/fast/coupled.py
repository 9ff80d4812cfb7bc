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
    n_res = len(pop.resolver_group)
    policies = pop.group_policies
    mean_life = np.array([float(np.mean(p.lifetimes(service_ttl, rng, 64))) for p in policies])
    stub_mean = max((float(np.mean(c.stub.lifetimes(prime_ttl, rng, 64))) for c in pop.cohorts
                     if c.stub.kind not in ("forever",)), default=0.0)
    burn = 3.0 * max(float(np.max(mean_life[np.isfinite(mean_life)], initial=0.0)), stub_mean, 1.0)
    t0 = max(0.0, propagated - burn)

    clients = np.flatnonzero(holding & exact[pop.resolver])
    res = pop.resolver[clients]
    # Resolver state: expiry, time of the fetch behind it, next fetch by the other clients' queries.
    other = np.zeros(n_res)
    np.add.at(other, pop.resolver[~holding], query_rate[~holding])
    group = pop.resolver_group
    expiry = np.full(n_res, t0)
    for g, policy in enumerate(policies):
        sel = exact & (group == g)
        k = int(sel.sum())
        if k == 0:
            continue
        life = mean_life[g]
        total_q = other[sel] + _stub_cycle_rate(pop, clients, res, sel)
        with np.errstate(divide="ignore", invalid="ignore"):
            present = np.isinf(life) | (rng.random(k) < life / (life + 1.0 / total_q))
        expiry[sel] = np.where(present, t0 + policy.residuals(service_ttl, rng, k), t0)
    fetched = np.full(n_res, -np.inf)
    old_expiry = np.full(n_res, np.nan)
    poisson = shape.next_after(expiry, other, rng)

    stub = stub_primed_expiry(pop, prime_ttl, t0, rng)
    rate = pop.rate[clients]
    since = stub[clients]  # when each holding client's stub last expired: no request since
    when = shape.next_after(since, rate, rng)  # next refresh of each holding client
    # Requests to the dead balancer: old refreshes during the outage, counted one by one,
    # and the G-measure of old stub periods during it (requests there are Poisson).
    lo, hi = fault
    hits = np.zeros(len(clients), dtype=np.int64)
    mass = shape.measure(np.maximum(t0, lo) + np.zeros(len(clients)), np.minimum(since, hi))
    switch = np.full(len(clients), np.inf)
    cohort_of = pop.cohort[clients]
    end = shape.end
    for _ in range(MAX_ROUNDS):
        first = np.full(n_res, np.inf)
        np.minimum.at(first, res, when)
        step = np.minimum(first, poisson)
        # A resolver is done once its holding clients have switched and it has fetched after the change.
        step[np.isinf(first) & ~np.isnan(old_expiry)] = np.inf
        step[~exact] = np.inf
        busy = np.flatnonzero(step < end)
        if len(busy) == 0:
            break
        # Fetches by the other clients' queries.
        by_others = busy[poisson[busy] < first[busy]]
        _fetch(by_others, poisson[by_others], expiry, fetched, old_expiry, propagated, policies, group,
               service_ttl, rng)
        poisson[by_others] = shape.next_after(expiry[by_others], other[by_others], rng)
        # One holding client per remaining resolver: the earliest.
        by_client = np.zeros(n_res, dtype=bool)
        by_client[busy[poisson[busy] >= first[busy]]] = True
        pick = np.flatnonzero(by_client[res] & (when == first[res]))
        pick = pick[np.unique(res[pick], return_index=True)[1]]
        r, t = res[pick], when[pick]
        stale = t >= expiry[r]
        _fetch(r[stale], t[stale], expiry, fetched, old_expiry, propagated, policies, group, service_ttl, rng)
        poisson[r[stale]] = shape.next_after(expiry[r[stale]], other[r[stale]], rng)
        new = fetched[r] >= propagated
        switch[pick[new]] = t[new]
        when[pick[new]] = np.inf
        keep = pick[~new]
        if len(keep):
            left = expiry[res[keep]] - when[keep]
            a_left = np.full(len(keep), np.inf)
            for g, policy in enumerate(policies):
                sel = group[res[keep]] == g
                if sel.any() and balancer_ttl is not None:
                    a_left[sel] = policy.residuals(balancer_ttl, rng, int(sel.sum()))
            life = np.empty(len(keep))
            for ci in np.unique(cohort_of[keep]):
                sel = cohort_of[keep] == ci
                life[sel] = pop.cohorts[ci].stub.lifetimes_for(np.minimum(left[sel], a_left[sel]), rng)
            hits[keep] += (when[keep] >= lo) & (when[keep] < hi)
            mass[keep] += shape.measure(np.maximum(when[keep], lo), np.minimum(when[keep] + life, hi))
            since[keep] = when[keep] + life
            when[keep] = shape.next_after(since[keep], rate[keep], rng)
    # Resolvers that never fetched after the change: their old answer ends at its expiry.
    unset = exact & np.isnan(old_expiry)
    old_expiry[unset] = expiry[unset]
    out = np.full(pop.size, np.nan)
    out[clients] = switch
    last_old = np.full(pop.size, np.nan)
    last_old[clients] = np.where(np.isfinite(switch), since, np.inf)
    # Not switched within the run: every request until the outage ends went to it.
    stuck = ~np.isfinite(switch)
    mass[stuck] = shape.measure(np.full(int(stuck.sum()), lo), np.full(int(stuck.sum()), hi))
    hits[stuck] = 0
    counted = np.zeros(pop.size, dtype=np.int64)
    counted[clients] = hits
    measured = np.full(pop.size, np.nan)
    measured[clients] = mass
    return out, last_old, np.maximum(old_expiry, propagated), counted, measured


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
