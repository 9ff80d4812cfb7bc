"""Resolvers followed fetch by fetch from a balancer fault to the change's propagation.

`sim.fast.dns.switch_times` draws each resolver's old answer at the change's propagation
(P) from steady state, and counts a client's failed requests as a Poisson stream over
[fault, its switch). Both cannot hold at once when the fault came less than a lifetime
before P: behind stubs that let go with the resolver's answer (none, honor, cap, no grace,
no pooled connections) each query is one of its clients' requests, so a request in
[fault, P) fetched an answer the resolver still holds at P, and a resolver that holds
nothing at P saw no request since its answer ran out. Drawn apart, one client per
honouring resolver at 0.02/s, 60 s TTL, the change answered 30 s after the fault: 175 of
300 clients affected against the model's 149 (and a closed form's 147), recovery mean
87 s against 98 s.

Here such a resolver is drawn from steady state at the fault's start and followed to P:
its answer runs out, its next query (the first request of any of its clients, Poisson
at their summed rate) fetches the old answer again, and so on. Each fetch is one
request (a failure counted one by one, `hits`) of a client picked by rate; the gaps
between an expiry and the next fetch hold no request of its clients (taken off their
Poisson `mass`). Its answer at P is the last one fetched before P (or none).
"""

from __future__ import annotations

import numpy as np

from sim.fast.intensity import Intensity
from sim.fast.population import Population, lets_go

MAX_FETCHES = 100_000


def followable(pop: Population) -> np.ndarray:
    """Per resolver: are all its clients Poisson ones whose stub lets go with its answer
    (no grace, no pooled connections), on a resolver with neither prefetch nor serve-expired?"""
    ok = np.ones(len(pop.resolver_group), dtype=bool)
    has = np.zeros(len(pop.resolver_group), dtype=bool)
    for cohort in pop.cohorts:
        if len(cohort.members) == 0:
            continue
        within = lets_go(cohort) and not cohort.followed and cohort.rate > 0
        resolvers = pop.resolver[cohort.members]
        has[resolvers] = True
        if not within:
            ok[resolvers] = False
    for g, setup in enumerate(pop.group_setups):
        if setup.prefetch or setup.serve_expired is not None or setup.farm.caches > 1:
            ok[pop.resolver_group == g] = False
    return ok & has


def follow(pop: Population, shape: Intensity, fault: tuple[float, float], propagated: float, at_fault: np.ndarray,
           chosen: np.ndarray, ttl: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the resolvers `chosen` (indices), their answers' expiry `at_fault` as drawn at the
    fault's start: per chosen resolver the old answer's expiry seen at `propagated` (that
    moment itself if it holds none then); per client the failed fetch requests (`hits`) and
    the G-measure of the gaps in which it sent nothing (`quiet`), both within the fault."""
    lo, hi = fault
    n = pop.size
    hits = np.zeros(n, dtype=np.int64)
    quiet = np.zeros(n)
    local = -np.ones(len(pop.resolver_group), dtype=np.int64)
    local[chosen] = np.arange(len(chosen))
    mine = np.flatnonzero(local[pop.resolver] >= 0)
    total = np.zeros(len(chosen))
    np.add.at(total, local[pop.resolver[mine]], pop.rate[mine])
    # The clients of each chosen resolver, contiguous, with their cumulative rates for a pick by rate.
    order = mine[np.argsort(local[pop.resolver[mine]], kind="stable")]
    first = np.searchsorted(local[pop.resolver[order]], np.arange(len(chosen)))
    cum = np.cumsum(pop.rate[order])
    base = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
    gap_quiet = np.zeros(len(chosen))  # per resolver: the measure its clients sent nothing in
    expiry = at_fault.copy()
    groups = pop.resolver_group[chosen]
    pending = np.flatnonzero(expiry < propagated)
    for _ in range(MAX_FETCHES):
        if len(pending) == 0:
            break
        since = expiry[pending]
        fetch = shape.next_after(since, total[pending], rng)
        gap_quiet[pending] += shape.measure(np.clip(since, lo, hi), np.clip(np.minimum(fetch, propagated), lo, hi))
        late = fetch >= propagated
        expiry[pending[late]] = propagated  # nothing held at P: the next request fetches the new answer
        now, fetch = pending[~late], fetch[~late]
        who = order[np.searchsorted(cum, base[now] + rng.random(len(now)) * total[now], side="right")]
        np.add.at(hits, who, (fetch >= lo) & (fetch < hi))
        lives = np.empty(len(now))
        for g, policy in enumerate(pop.group_policies):
            sel = groups[now] == g
            if sel.any():
                lives[sel] = policy.lifetimes(ttl, rng, int(sel.sum()))
        expiry[now] = fetch + lives
        pending = now[expiry[now] < propagated]
    quiet[mine] = gap_quiet[local[pop.resolver[mine]]]
    return expiry, hits, quiet
