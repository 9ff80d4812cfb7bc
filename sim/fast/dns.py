"""DNS at scale: resolver caches as renewal processes, and when each client sees the new record.

A resolver refetches the service record at the first query after its cached
answer expires. Its queries are the stub-cache misses of its clients, taken
here as a Poisson stream at their mean rate (the model makes the same
assumption to start its caches in steady state); a resolver's fetches are then
a renewal process: fetch, keep for the policy's lifetime, wait for the next
query. That gives the queries our authoritative servers answer.

After the new record has propagated (time P), a resolver answers the old value
until its cached answer expires (E_r, drawn from steady state at P) and the
new one from its first fetch after that. A client keeps its stub's answer
until it expires and re-resolves at its next request; so it reaches the
standby at its first stub refresh at or after max(P, E_r). Stub caches that
never keep an answer past the resolver's (none, honor, cap) refresh exactly
at the first request after that moment (Poisson requests forget the past);
the others (floor, fixed, extend) are followed refresh by refresh.
"""

from __future__ import annotations

import math

import numpy as np

from sim.fast.intensity import Intensity
from sim.fast.population import Population, stub_primed_expiry
from sim.scenario import models as m

# Stub policies whose lifetime never exceeds the TTL they are given.
WITHIN_TTL = ("none", "honor", "cap", "serve_stale")
MAX_REFRESHES = 100_000


def resolver_expiry(pop: Population, ttl: float, q: np.ndarray, at: float, rng: np.random.Generator) -> np.ndarray:
    """When each resolver's cached answer (TTL `ttl`) expires, seen at time `at` in steady state."""
    out = np.full(len(q), at)
    for g, policy in enumerate(pop.group_policies):
        members = np.flatnonzero(pop.resolver_group == g)
        if len(members) == 0:
            continue
        mean_life = float(np.mean(policy.lifetimes(ttl, rng, 64)))
        rate = q[members]
        if math.isinf(mean_life):
            present = np.ones(len(members), dtype=bool)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                present = (rate > 0) & (rng.random(len(members)) < mean_life / (mean_life + 1.0 / rate))
        out[members] = np.where(present, at + policy.residuals(ttl, rng, len(members)), at)
    return out


def switch_times(
    scenario: m.Scenario,
    pop: Population,
    shape: Intensity,
    propagated: float,
    q: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Each client's first request that goes to the standby (cname_repoint); inf if none in the run."""
    n = pop.size
    if not math.isfinite(propagated) or propagated >= scenario.end:
        return np.full(n, np.inf)
    dns = scenario.dns
    expiry = resolver_expiry(pop, dns.service_ttl, q, propagated, rng)[pop.resolver]
    opens = np.maximum(expiry, propagated)  # from here the client's resolver answers the new value
    stub = stub_primed_expiry(pop, min(dns.service_ttl, dns.balancer_ttl), propagated, rng)
    out = np.full(n, np.inf)
    for cohort in pop.cohorts:
        idx = cohort.members
        if len(idx) == 0:
            continue
        if cohort.stub.kind == "forever":
            continue
        if cohort.stub.kind in WITHIN_TTL:
            out[idx] = shape.next_after(np.maximum(stub[idx], opens[idx]), cohort.rate, rng)
            continue
        out[idx] = _follow_refreshes(cohort, idx, stub, expiry, opens, pop, shape, dns.balancer_ttl, rng)
    return out


def _follow_refreshes(cohort, idx, stub, expiry, opens, pop, shape, balancer_ttl, rng):  # type: ignore[no-untyped-def]
    """Refresh by refresh, for stubs that may keep an answer past the resolver's (floor, fixed, extend)."""
    t = shape.next_after(stub[idx], cohort.rate, rng)
    pending = np.flatnonzero(t < opens[idx])
    groups = pop.resolver_group[pop.resolver[idx]]
    for _ in range(MAX_REFRESHES):
        if len(pending) == 0:
            break
        now = t[pending]
        # Time left on the resolver's answer: the CNAME's, or its balancer A record's if shorter
        # (drawn from steady state, each refresh on its own).
        left = expiry[idx[pending]] - now
        a_left = np.empty(len(pending))
        for g, policy in enumerate(pop.group_policies):
            sel = groups[pending] == g
            if sel.any():
                a_left[sel] = policy.residuals(balancer_ttl, rng, int(sel.sum()))
        life = cohort.stub.lifetimes_for(np.minimum(left, a_left), rng)
        t[pending] = shape.next_after(now + life, cohort.rate, rng)
        pending = pending[t[pending] < opens[idx[pending]]]
    return t


def query_counts(
    pop: Population, ttl: float, q: np.ndarray, shape: Intensity, seconds: int, rng: np.random.Generator
) -> np.ndarray:
    """Queries our authoritative servers answer, per second: every resolver's fetches of the service record."""
    counts = np.zeros(seconds, dtype=np.int64)
    end = shape.end
    for g, policy in enumerate(pop.group_policies):
        members = np.flatnonzero((pop.resolver_group == g) & (q > 0))
        if len(members) == 0:
            continue
        rate = q[members]
        if policy.kind == "none":
            # Every query reaches us: Poisson counts per second.
            lam = rate.sum() * shape.g[:seconds]
            counts += rng.poisson(lam)
            continue
        if policy.kind == "forever":
            continue  # primed in steady state: the answer is already there and stays
        expires = resolver_expiry(pop, ttl, q, 0.0, rng)[members]
        live = np.arange(len(members))
        while len(live):
            fetch = shape.next_after(expires[live], rate[live], rng)
            keep = fetch < end
            live, fetch = live[keep], fetch[keep]
            counts += np.bincount(fetch.astype(np.int64), minlength=seconds)[:seconds]
            expires[live] = fetch + policy.lifetimes(ttl, rng, len(live))
    return counts
