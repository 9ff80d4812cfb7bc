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

from sim.fast import coupled, since_fault
from sim.fast.intensity import Intensity
from sim.fast.population import WITHIN_TTL, Population, stub_primed_expiry
from sim.policy.resolver import steady_cycles
from sim.scenario import models as m

MAX_REFRESHES = 100_000


def resolver_expiry(pop: Population, ttl: float, q: np.ndarray, at: float, rng: np.random.Generator) -> np.ndarray:
    """When each resolver's cached answer (TTL `ttl`) expires, seen at time `at` in steady state."""
    out = np.full(len(q), at)
    for g, policy in enumerate(pop.group_policies):
        members = np.flatnonzero(pop.resolver_group == g)
        if len(members) == 0:
            continue
        rate = q[members]
        if pop.group_setups and pop.group_setups[g].prefetch:
            # unbound's prefetch: a fetch cycle is A + X (sim.policy.resolver.steady_cycles); the
            # resolver answers the old value until its cycle's next fetch, or the answer's expiry
            # if no query came in the last tenth (then the next query fetches).
            life = policy.lifetimes(ttl, rng, len(members))
            age, cycle = steady_cycles(life, rate, rng)
            out[members] = np.where(age < life, at - age + np.minimum(cycle, life), at)
            continue
        mean_life = float(np.mean(policy.lifetimes(ttl, rng, 64)))
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
    fault: tuple[float, float],
    rng: np.random.Generator,
    record_ttl: float | None = None,
    chain_ttl: float | None = None,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per client: its first request that goes to the standby (cname_repoint), and the
    moment before it after which it sends nothing (its old answer's last expiry):
    requests before that moment went to the old balancer. inf: not within the run.
    Also per client, for the outage `fault` = [start, end): requests counted one by
    one (refreshes that got the old answer) and the G-measure of the time its
    requests are a Poisson stream to the dead balancer (stub periods with the old
    answer; for stubs that never outlive the resolver, all of it up to its switch);
    last, when its resolver answers the new value (a connection opened then gets it).
    Counting refreshes apart matters: the gap between a stub's expiry and the next
    request holds no request by construction, and a refresh is one by construction.
    `known`: per resolver, its old answer's expiry where already followed (NaN: drawn here;
    sim.fast.pooled_fault)."""
    n = pop.size
    lo, hi = fault
    if not math.isfinite(propagated) or propagated >= scenario.end:
        inf = np.full(n, np.inf)
        return inf, inf, np.zeros(n, dtype=np.int64), shape.measure(np.full(n, lo), np.full(n, hi)), inf
    dns = scenario.dns
    # The record that changes (a CNAME: service_ttl, chained to the balancer's A
    # records; an alias: the balancer's TTL, no chain; dns_failover: A records).
    record_ttl = dns.service_ttl if record_ttl is None else record_ttl
    prime_ttl = record_ttl if chain_ttl is None else min(record_ttl, chain_ttl)
    holding = holding_clients(pop)
    exact = coupled.exact_resolvers(pop, holding)
    per_client_q = _query_rate(pop, prime_ttl)
    exact_switch, exact_last, exact_open, exact_hits, exact_mass = coupled.follow(
        pop, shape, propagated, holding, per_client_q, exact, fault, record_ttl, chain_ttl, prime_ttl, rng
    )
    expiry = _known_or_drawn(known, resolver_expiry(pop, record_ttl, q, propagated, rng))
    expiry[exact] = exact_open[exact]
    since_hits, quiet = _since_fault(pop, shape, fault, propagated, q, record_ttl, known, expiry, rng)
    expiry = expiry[pop.resolver]
    opens = np.maximum(expiry, propagated)  # from here the client's resolver answers the new value
    stub = stub_primed_expiry(pop, prime_ttl, propagated, rng)
    out = np.full(n, np.inf)
    last_old = np.full(n, np.inf)
    hits = since_hits  # the fetches since the fault (only clients on resolvers followed from it)
    mass = shape.measure(np.full(n, lo), np.full(n, hi))  # forever: the whole outage
    in_exact = exact[pop.resolver]
    for cohort in pop.cohorts:
        idx = cohort.members
        if len(idx) and cohort.stub.kind == "forever" and cohort.restarts is not None:
            out[idx], last_old[idx], hits[idx], mass[idx] = _until_restarts(
                cohort, idx, expiry, opens, pop, shape, fault, propagated, rng
            )
            continue
        if len(idx) == 0 or cohort.stub.kind == "forever":
            continue
        if cohort.stub.kind in WITHIN_TTL and cohort.grace == 0:
            # Such a stub never outlives the resolver's answer, so it has expired by `opens`.
            out[idx] = shape.next_after(opens[idx], cohort.rate, rng)
            last_old[idx] = opens[idx]
            mass[idx] = np.maximum(shape.measure(np.full(len(idx), lo), np.minimum(opens[idx], hi)) - quiet[idx], 0.0)
            continue
        followed = idx[in_exact[idx]]
        out[followed] = exact_switch[followed]
        last_old[followed] = exact_last[followed]
        hits[followed] = exact_hits[followed]
        mass[followed] = exact_mass[followed]
        rest = idx[~in_exact[idx]]
        if len(rest):
            out[rest], last_old[rest], hits[rest], mass[rest] = _follow_stubs(
                cohort, rest, stub, expiry, opens, pop, shape, (prime_ttl, record_ttl, chain_ttl), fault,
                propagated, rng)
    _served_expired(pop, shape, propagated, expiry, q, (record_ttl, chain_ttl), fault, (out, last_old, hits, mass), rng)
    # `opens` is not moved by serve-expired's one stale answer per resolver: a pooled
    # connection opened in that moment would still get the old record (not followed)
    return out, last_old, hits, mass, opens


def _since_fault(pop, shape, fault, propagated, q, ttl, known, expiry, rng):  # type: ignore[no-untyped-def]
    """Resolvers behind stubs that let go, followed fetch by fetch from a fault that came before
    the change's propagation (sim.fast.since_fault): their old answers' expiry (written into
    `expiry`, per resolver), and per client the fetches that failed and the measure it sent nothing in."""
    hits, quiet = np.zeros(pop.size, dtype=np.int64), np.zeros(pop.size)
    lo = fault[0]
    if not lo < propagated:
        return hits, quiet
    chosen = since_fault.followable(pop)
    if known is not None:
        chosen &= np.isnan(known)
    chosen = np.flatnonzero(chosen)
    if len(chosen) == 0:
        return hits, quiet
    # A stream of its own, jumped from this one, leaves every other draw as it was.
    own = np.random.Generator(rng.bit_generator.jumped())
    at_fault = resolver_expiry(pop, ttl, q, lo, own)[chosen]
    expiry[chosen], hits, quiet = since_fault.follow(pop, shape, fault, propagated, at_fault, chosen, ttl, own)
    return hits, quiet


def _known_or_drawn(known: np.ndarray | None, drawn: np.ndarray) -> np.ndarray:
    """Each resolver's old answer's expiry: where already followed (`known`), else drawn."""
    return drawn if known is None else np.where(np.isnan(known), drawn, known)


def _follow_stubs(cohort, rest, stub, expiry, opens, pop, shape, ttls, fault, propagated, rng):  # type: ignore[no-untyped-def]
    """`switch_times` for a cohort's clients on resolvers not followed exactly (`rest`):
    each stub followed refresh by refresh, from the fault's start with a grace period,
    with each answer cut short by the next restart where the cohort restarts."""
    prime_ttl, record_ttl, chain_ttl = ttls
    lo = fault[0]
    if cohort.stub.kind in WITHIN_TTL:
        # A stub in grace that never outlives its resolver's answer expired by then.
        stub[rest] = np.minimum(stub[rest], expiry[rest])
    if cohort.grace > 0 and lo < propagated:
        # A grace period serves the first request after the expiry from the old answer, so
        # whether a client is affected at all depends on its stub since the fault began:
        # followed from there (the exact resolvers are followed from a burn-in).
        early = stub_primed_expiry(pop, prime_ttl, lo, rng)
        if cohort.stub.kind in WITHIN_TTL:
            early[rest] = np.minimum(early[rest], lo + np.minimum(expiry[rest] - propagated, prime_ttl))
        return _follow_refreshes(cohort, rest, early, expiry, opens, pop, shape, chain_ttl, fault, propagated, rng,
                                 early=(lo, record_ttl))
    if cohort.restarts is not None:
        # A restart empties the stub: each answer is held until its lifetime ends or the
        # next restart comes, whichever is first, from a random moment of the cycle.
        next_restart = propagated + cohort.restarts.equilibrium(rng, len(rest))[1]
        held = stub.copy()
        held[rest] = np.minimum(stub[rest], next_restart)
        return _follow_refreshes(cohort, rest, held, expiry, opens, pop, shape, chain_ttl, fault, propagated, rng,
                                 (cohort.restarts, next_restart))
    return _follow_refreshes(cohort, rest, stub, expiry, opens, pop, shape, chain_ttl, fault, propagated, rng)


def _served_expired(pop, shape, propagated, expiry, q, ttls, fault, tables, rng) -> None:  # type: ignore[no-untyped-def]
    """unbound's serve-expired with client timeout 0 (sim.policy.resolver.ServeExpired): the
    first query a resolver gets after its old answer expired is answered with that answer,
    TTL `reply` (capped by the record's TTL and, behind a CNAME, the chain's), and refreshed
    behind it. Its clients' stubs never outlive the resolver's
    answer (engine.unsupported refuses the others), so each one's first request after the
    resolver's old answer ran out is a query: the earliest of them, if within the limit
    of the old answer's expiry, gets the old answer once more and keeps it by its stub's
    policy. An answer already expired at the change (the resolver held none fresh) expired
    an Exp(q) time before it, the age of the gap a random moment falls in (as the model primes)."""
    out, last_old, hits, mass = tables
    lo, hi = fault
    for g, setup in enumerate(pop.group_setups):
        served = setup.serve_expired
        if served is None or not served.immediate:
            continue
        members = np.flatnonzero((pop.resolver_group[pop.resolver] == g) & np.isfinite(out))
        if len(members) == 0:
            continue
        # per resolver, its client with the earliest first request after the old answer ran out
        order = members[np.lexsort((out[members], pop.resolver[members]))]
        first = order[np.r_[True, pop.resolver[order][1:] != pop.resolver[order][:-1]]]
        r = pop.resolver[first]
        rate = q[r]
        with np.errstate(divide="ignore"):
            gone = np.where(rate > 0, rng.exponential(1.0, len(r)) / rate, np.inf)
        held_until = expiry[first]  # per client: its resolver's old answer's expiry as seen at the change
        expired_at = np.where(held_until > propagated, held_until, propagated - gone)
        stale = first[out[first] - expired_at < served.ttl]
        record_ttl, chain_ttl = ttls
        reply = served.reply(record_ttl if chain_ttl is None else min(record_ttl, chain_ttl))
        for c, cohort in enumerate(pop.cohorts):
            mine = stale[pop.cohort[stale] == c]
            if len(mine) == 0:
                continue
            at = out[mine]
            held = at + cohort.stub.lifetimes_for(np.full(len(mine), reply), rng)
            hits[mine] += (at >= lo) & (at < hi)
            mass[mine] += shape.measure(np.maximum(at, lo), np.minimum(held, hi))
            last_old[mine] = held
            out[mine] = shape.next_after(held, cohort.rate, rng)


def holding_clients(pop: Population) -> np.ndarray:
    """Per client: is its stub followed refresh by refresh? Stubs that may keep an answer past
    the resolver's (floor, fixed, extend), and any stub with a grace period, whose expired answer
    serves the request that refreshes it (so the switch is the request after that refresh).
    A `forever` stub never expires (its restarts empty it, leaving nothing in grace)."""
    kinds = np.array([c.stub.kind for c in pop.cohorts])[pop.cohort]
    grace = np.array([c.grace for c in pop.cohorts])[pop.cohort]
    return (~np.isin(kinds, WITHIN_TTL) | (grace > 0)) & (kinds != "forever")


def _query_rate(pop: Population, ttl: float) -> np.ndarray:
    """Queries per second of each client whose stub never outlives the resolver's answer."""
    out = np.zeros(pop.size)
    for cohort in pop.cohorts:
        if cohort.stub.kind == "none":
            out[cohort.members] = cohort.rate
        elif cohort.stub.kind in WITHIN_TTL:
            out[cohort.members] = cohort.rate / (1.0 + cohort.rate * ttl / 2.0)
    return out


def _until_restarts(cohort, idx, expiry, opens, pop, shape, fault, propagated, rng):  # type: ignore[no-untyped-def]
    """A `forever` stub that restarts: it holds each answer until the process's next
    restart, followed refresh by refresh as the stubs that hold answers. At `propagated`
    each client is at a random moment of its restart cycle (sim.policy.restarts): its
    stub is empty if no request came since the last restart, else it holds the old
    answer until the next one."""
    restarts = cohort.restarts
    k = len(idx)
    age, left = restarts.equilibrium(rng, k)
    idle = rng.exponential(1.0 / cohort.rate, k)  # since the last request, Poisson as in priming
    next_restart = propagated + left
    stub = np.full(pop.size, propagated)
    stub[idx] = np.where(idle < age, next_restart, propagated)
    return _follow_refreshes(cohort, idx, stub, expiry, opens, pop, shape, None, fault, propagated, rng,
                             (restarts, next_restart))


def _follow_refreshes(cohort, idx, stub, expiry, opens, pop, shape, balancer_ttl, fault, propagated, rng,  # type: ignore[no-untyped-def]
                      restarting=None, early=None):
    """Refresh by refresh, for stubs that may keep an answer past the resolver's (floor, fixed,
    extend), and stubs that restart (`restarting`: their Restarts and each client's next
    restart, which ends the answer it holds). `early`: (begin, record TTL) to follow
    the stubs from `begin` < `propagated` on (primed there; before the change a refresh's
    resolver answer is drawn from steady state)."""
    begin, record_ttl = early if early is not None else (propagated, None)
    since = stub[idx].copy()  # before `begin` only for an expired stub in grace (stub_primed_expiry)
    t = shape.next_after(np.maximum(since, begin), cohort.rate, rng)
    lo, hi = fault
    k = len(idx)
    # Before `begin` everything goes to the old balancer as Poisson requests; from it, old stub
    # periods and refreshes.
    mass = shape.measure(np.full(k, lo), np.full(k, min(begin, hi)))
    mass += shape.measure(np.maximum(begin, lo) + np.zeros(k), np.minimum(since, hi))
    hits = np.zeros(k, dtype=np.int64)
    pending = np.flatnonzero(t < opens[idx])
    groups = pop.resolver_group[pop.resolver[idx]]
    for _ in range(MAX_REFRESHES):
        if len(pending) == 0:
            break
        now = t[pending]
        # Time left on the resolver's answer: the CNAME's, or its balancer A record's if shorter
        # (drawn from steady state, each refresh on its own).
        left = expiry[idx[pending]] - now
        a_left = np.full(len(pending), np.inf)
        for g, policy in enumerate(pop.group_policies):
            sel = groups[pending] == g
            if sel.any() and balancer_ttl is not None:
                a_left[sel] = policy.residuals(balancer_ttl, rng, int(sel.sum()))
            before = sel & (now < propagated)
            if record_ttl is not None and before.any():
                left[before] = policy.residuals(record_ttl, rng, int(before.sum()))
        life = cohort.stub.lifetimes_for(np.minimum(left, a_left), rng)
        if restarting is not None:
            restarts, next_restart = restarting
            next_restart[pending] = restarts.after(next_restart[pending], now, rng)
            life = np.minimum(life, next_restart[pending] - now)
        hits[pending] += (now >= lo) & (now < hi)
        mass[pending] += shape.measure(np.maximum(now, lo), np.minimum(now + life, hi))
        since[pending] = now + life
        t[pending] = shape.next_after(since[pending], cohort.rate, rng)
        pending = pending[t[pending] < opens[idx[pending]]]
    # The switch request is the first after the stub's expiry given that it comes at or after
    # `opens` (and after the grace period: below); Poisson requests forget, so the time from
    # that moment to it is an unconditioned wait, which the engine's count of successes
    # (the intensity from `until` on) needs: from the expiry itself it would overstate them.
    until = np.maximum(since, opens[idx])
    if cohort.grace > 0:
        # The refresh that gets the new answer, within the grace period of the stub's expiry:
        # its request is served from the expired (old) answer, and the next one switches.
        late = np.isfinite(t) & (t < since + cohort.grace)
        hits[late] += (t[late] >= lo) & (t[late] < hi)
        until = np.where(late, t, np.maximum(until, since + cohort.grace))
        t[late] = shape.next_after(t[late], cohort.rate, rng)
    stuck = ~np.isfinite(t)
    mass[stuck] = shape.measure(np.full(int(stuck.sum()), lo), np.full(int(stuck.sum()), hi))
    hits[stuck] = 0
    return t, np.where(np.isfinite(t), until, np.inf), hits, mass


def query_counts(
    pop: Population,
    ttl: float,
    q: np.ndarray,
    q_busy: np.ndarray,
    busy: tuple[float, float],
    shape: Intensity,
    seconds: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Queries our authoritative servers answer, per second: every resolver's fetches of the
    service record, with queries at rate `q_busy` during `busy` (the outage) and `q` otherwise."""
    counts = np.zeros(seconds, dtype=np.int64)
    end = shape.end
    lo, hi = busy
    for g, policy in enumerate(pop.group_policies):
        members = np.flatnonzero((pop.resolver_group == g) & ((q > 0) | (q_busy > 0)))
        if len(members) == 0:
            continue
        base, extra = q[members], q_busy[members]
        if policy.kind == "none":
            # Every query reaches us: Poisson counts per second.
            t = np.arange(seconds)
            inside = (t >= lo) & (t < hi)
            counts += rng.poisson(np.where(inside, extra.sum(), base.sum()) * shape.g[:seconds])
            continue
        if policy.kind == "forever":
            continue  # primed in steady state: the answer is already there and stays
        prefetching = bool(pop.group_setups) and pop.group_setups[g].prefetch
        if prefetching:
            # from the prefetch point on, the next query fetches (a refresh or a miss alike)
            life = policy.lifetimes(ttl, rng, len(members))
            age, _ = steady_cycles(life, base, rng)
            expires = np.maximum(0.0, _prefetch_points(life) - age)
        elif caches(pop, g) > 1:
            # A farm: each of its N caches fetches on its own, with 1/N of the queries (as the
            # model primes them). The engine follows a farm's caches with their clients instead,
            # prefetch included (sim.fast.lookups), and gives this no rate for them.
            n = caches(pop, g)
            base, extra = np.repeat(base / n, n), np.repeat(extra / n, n)
            mean_life = float(np.mean(policy.lifetimes(ttl, rng, 64)))
            with np.errstate(divide="ignore", invalid="ignore"):
                present = (base > 0) & (rng.random(len(base)) < mean_life / (mean_life + 1.0 / base))
            expires = np.where(present, policy.residuals(ttl, rng, len(base)), 0.0)
        else:
            expires = resolver_expiry(pop, ttl, q, 0.0, rng)[members]
        live = np.arange(len(base))
        while len(live):
            fetch = _next_query(shape, expires[live], base[live], extra[live], lo, hi, rng)
            keep = fetch < end
            live, fetch = live[keep], fetch[keep]
            counts += np.bincount(fetch.astype(np.int64), minlength=seconds)[:seconds]
            life = policy.lifetimes(ttl, rng, len(live))
            expires[live] = fetch + (_prefetch_points(life) if prefetching else life)
    return counts


def caches(pop: Population, g: int) -> int:
    """The caches behind each resolver of group `g` (a farm: more than one)."""
    return pop.group_setups[g].farm.caches if pop.group_setups else 1


def _prefetch_points(life: np.ndarray) -> np.ndarray:
    """sim.policy.resolver.prefetch_from for many lifetimes."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(life), life - np.floor(np.nan_to_num(life, posinf=0.0) / 10.0), np.inf)


def _next_query(shape: Intensity, x, base, busy_rate, lo: float, hi: float, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """The first query after `x` of a Poisson stream at `base`, `busy_rate` within [lo, hi)."""
    g = shape.cumulative
    glo, ghi = g(min(lo, shape.end)), g(min(hi, shape.end))
    with np.errstate(divide="ignore", invalid="ignore"):
        gx = g(np.minimum(x, shape.end))
        # Q(t): the expected number of queries by t, piecewise linear in G.
        q_lo = base * glo
        q_hi = q_lo + busy_rate * (ghi - glo)
        qx = np.where(gx < glo, base * gx, np.where(gx < ghi, q_lo + busy_rate * (gx - glo), q_hi + base * (gx - ghi)))
        y = qx + rng.exponential(1.0, len(x))
        target = np.where(
            y < q_lo,
            y / base,
            np.where(y < q_hi, glo + (y - q_lo) / busy_rate, ghi + (y - q_hi) / base),
        )
    target = np.where(np.isnan(target), np.inf, target)
    return np.where(np.isfinite(x), shape.inverse(target), np.inf)
