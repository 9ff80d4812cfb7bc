"""Clients and resolvers as arrays: one entry per client, one per resolver.

Clients are laid out as in the model: each cohort's members pick a resolver
group by share (or their `resolver_group`) and are spread evenly over the
group's resolvers (docs/scenario.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sim.policy.attempts import ConnectionReuse
from sim.policy.cache import WITHIN_TTL, CachePolicy
from sim.policy.cache import lets_go as _stub_lets_go
from sim.policy.resolver import ResolverSetup
from sim.policy.restarts import Restarts
from sim.policy.sessions import Sessions
from sim.scenario import models as m
from sim.scenario.build import Deployment, cache_policy

# WITHIN_TTL (sim.policy.cache): stub policies whose lifetime never exceeds the TTL they are
# given; sim.fast.dns takes it from here.


@dataclass
class Cohort:
    name: str
    rate: float
    stub: CachePolicy
    reuse: ConnectionReuse
    attempts: int
    timeout: float
    members: np.ndarray  # client indices
    next_address: bool = False  # address_mode next
    restarts: Restarts | None = None  # None: the process never restarts within the run
    grace: float = 0.0  # stub_grace: seconds an expired stub answer is still served (and refreshed)
    sessions: Sessions | None = None  # browsing sessions: requests drawn one by one (sim.fast.sessions)
    farm: bool = False  # Poisson clients that can use a resolver farm: drawn one by one too (on_farm)

    @property
    def followed(self) -> bool:
        """Are its requests drawn one by one and followed in time order (sim.fast.lookups)?"""
        return self.sessions is not None or self.farm


@dataclass
class Population:
    cohorts: list[Cohort]
    rate: np.ndarray  # per client, requests/s at traffic factor 1
    cohort: np.ndarray  # per client, cohort index
    resolver: np.ndarray  # per client, resolver index
    group_names: list[str]
    group_policies: list[CachePolicy]
    resolver_group: np.ndarray  # per resolver, group index
    group_setups: list[ResolverSetup] = field(default_factory=list)  # per group: farm, prefetch, serve-expired

    @property
    def size(self) -> int:
        return len(self.rate)


def population(deployment: Deployment, rng: np.random.Generator) -> Population:
    scenario = deployment.scenario
    groups = scenario.dns.resolvers
    names = [g.name for g in groups]
    shares = np.array([g.share for g in groups])
    first = np.cumsum([0] + [g.count for g in groups])
    spread = np.zeros(len(groups), dtype=np.int64)
    sizes = scenario.cohort_sizes()
    cohorts, rates, cohort_of, resolver_of = [], [], [], []
    start = 0
    for index, spec in enumerate(scenario.clients):
        n = sizes[spec.name]
        if spec.resolver_group is not None:
            picks = np.full(n, names.index(spec.resolver_group))
        else:
            picks = rng.choice(len(names), size=n, p=shares / shares.sum())
        resolvers = np.empty(n, dtype=np.int64)
        for g in range(len(groups)):
            where = np.flatnonzero(picks == g)
            # Round robin within the group, continuing where the previous cohort stopped.
            resolvers[where] = first[g] + (spread[g] + np.arange(len(where))) % groups[g].count
            spread[g] += len(where)
        rule = deployment.retries[spec.name]
        cohorts.append(
            Cohort(spec.name, spec.rate, deployment.stubs[spec.name], deployment.reuse[spec.name], rule.attempts,
                   rule.timeout, np.arange(start, start + n), getattr(spec, "address_mode", "first") == "next",
                   deployment.restarts.get(spec.name), spec.stub_grace, deployment.sessions.get(spec.name),
                   spec.sessions is None and on_farm(scenario, spec))
        )
        rates.append(np.full(n, spec.rate))
        cohort_of.append(np.full(n, index))
        resolver_of.append(resolvers)
        start += n
    return Population(
        cohorts,
        np.concatenate(rates),
        np.concatenate(cohort_of),
        np.concatenate(resolver_of),
        names,
        [deployment.resolver_policies[name] for name in names],
        np.repeat(np.arange(len(groups)), [g.count for g in groups]),
        [deployment.resolver_setups[name] for name in names],
    )


def on_farm(scenario: m.Scenario, spec: m.Cohort) -> bool:
    """Are a Poisson cohort's requests drawn one by one (sim.fast.sessions.requests) and
    followed in time order with every cache of its resolvers (sim.fast.lookups), as a
    session cohort's are? Yes if it can use a resolver farm (a group with `caches` > 1):
    a farm's caches turn to a new record one by one, so a client may go from the new answer
    back to the old one, and there is no single switch per client, the Poisson shortcuts'
    premise. Also if it can use a group that such a cohort uses too (and so on): a resolver
    is followed exactly only when all its clients are (a resolver shared with clients not
    followed turns at one drawn moment, sim.fast.lookups). And every cohort through a
    dns_down that the Poisson path cannot take (`outage_followed`)."""
    return bool(groups_of(scenario, spec) & followed_groups(scenario))


def followed_groups(scenario: m.Scenario) -> set[str]:
    """The resolver groups whose clients are all followed one by one (`on_farm`): the farms,
    and every group a Poisson cohort on one of them can use too, until none is added; every
    group through a DNS outage the Poisson path has no window for (`outage_followed`), or
    pooled connections through a migration under churn (`migration_followed`)."""
    if outage_followed(scenario) or migration_followed(scenario):
        return {g.name for g in scenario.dns.resolvers}
    out = {g.name for g in scenario.dns.resolvers if g.caches > 1}
    poisson = [groups_of(scenario, c) for c in scenario.clients if c.sessions is None]
    grown = True
    while grown:
        grown = False
        for groups in poisson:
            if groups & out and not groups <= out:
                out |= groups
                grown = True
    return out


def migration_followed(scenario: m.Scenario) -> bool:
    """Is every client followed request by request (sim.fast.lookups) because pooled
    connections go through a planned dns_change away from the churned active balancer (and
    its switch-off, if any)? A connection that a retired node drops reconnects through the
    stub, to the new target once the answer holds it: earlier than sim.fast.pooled's drain
    takes it (a connection kept to its age limit or an idle gap: drain mean 69.9 s against
    the model's 45.4 s, now 50.2 s; refused after a switch-off 220 against 154, now 136),
    while the follower meets the node lists, the connection and the change in each request,
    as the model's request path does."""
    faults, active = scenario.faults, scenario.active
    return (active.churn is not None and any(f.kind == "dns_change" for f in faults)
            and any(c.keepalive > 0 and c.sessions is None for c in scenario.clients))


def outage_followed(scenario: m.Scenario) -> bool:
    """Is every client followed request by request (sim.fast.lookups) because of a `dns_down`?
    The Poisson path gives each client one span of failed resolutions (sim.fast.engine
    `_dns_window`), which does not hold with a balancer fault or a planned change too (a client may fail to
    resolve, then reach the dead balancer, then resolve the new record), a second outage,
    resolvers that answer through it from what they keep (serve_stale, serve-expired) or
    refresh ahead (prefetch), or pooled connections that carry requests through it. The
    follower meets each of these in the requests, as the model's request path does. Pooled
    connections with balancer node churn are not: the churn's own request follower takes
    them through the outage (sim.fast.churn_requests), and behind a static address, where
    churn changes nothing, sim.fast.pooled_fault does."""
    if not any(isinstance(f, m.DnsDown) for f in scenario.faults):
        return False
    faults = scenario.faults
    churned = any(b.churn is not None for b in scenario.balancers)
    return (sum(isinstance(f, m.DnsDown) for f in faults) > 1
            or any(isinstance(f, m.BalancerDown) or f.kind in m.PLANNED for f in faults)
            or any(cache_policy(g.policy).stale_window > 0 or g.prefetch or g.serve_expired is not None
                   for g in scenario.dns.resolvers)
            or (not churned and any(c.keepalive > 0 and c.sessions is None for c in scenario.clients)))


def groups_of(scenario: m.Scenario, spec: m.Cohort) -> set[str]:
    """The resolver groups a cohort's clients can be on: its `resolver_group`, or every group
    (clients are spread by the groups' shares, each above 0)."""
    return {g.name for g in scenario.dns.resolvers if spec.resolver_group in (None, g.name)}


def without_sessions(pop: Population) -> Population:
    """`pop` with its followed clients' Poisson rate at 0 (session clients, and Poisson clients
    that can use a resolver farm: `Cohort.followed`): the engine's Poisson shortcuts then
    pass them by, and sim.fast.sessions draws their requests one by one. Resolver query rates
    and cache priming keep the long-run rate (the model primes them with it)."""
    if not any(c.followed for c in pop.cohorts):
        return pop
    rate = pop.rate.copy()
    cohorts = []
    for c in pop.cohorts:
        if c.followed:
            rate[c.members] = 0.0
            c = replace(c, rate=0.0)
        cohorts.append(c)
    return replace(pop, cohorts=cohorts, rate=rate)


def stub_primed_expiry(pop: Population, ttl: float, at: float, rng: np.random.Generator) -> np.ndarray:
    """Each client's stub-cache expiry as a random moment of steady state finds it (the model's priming).
    An expired stub is empty (expiry `at`), except with a grace period: it still holds the answer,
    expired an Exp(rate) time before `at` (the age of the wait for the next request, as the model
    primes), so the next request may be served from it. Callers draw that request after `at`."""
    out = np.full(pop.size, at)
    for cohort in pop.cohorts:
        n = len(cohort.members)
        if n == 0:
            continue
        life = cohort.stub.lifetimes(ttl, rng, n)
        gap = 1.0 / cohort.rate
        with np.errstate(invalid="ignore"):
            present = np.isinf(life) | (rng.random(n) < life / (life + gap))
        residual = cohort.stub.residuals(ttl, rng, n)
        expired = at - rng.exponential(gap, n) if cohort.grace > 0 else np.full(n, at)
        out[cohort.members] = np.where(present, at + residual, expired)
    return out


def resolver_query_rate(pop: Population, ttl: float, rng: np.random.Generator, pooled: bool = True) -> np.ndarray:
    """Queries each resolver receives: per client one per stub-cache cycle (stub life + wait for a
    request that opens a connection; every request when `pooled` is False).

    The stub's life is averaged over the answer's time left in the resolver,
    uniform over its cached lifetime: what a client finds at a random moment.
    """
    return resolver_rates(pop, ttl, rng, pooled)[0]


def resolver_rates(pop: Population, ttl: float, rng: np.random.Generator,
                   pooled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per resolver: its queries a second (resolver_query_rate), and the rate of its queries
    once its answer has expired (`refetch`): a stub that never outlives the resolver's answer
    (WITHIN_TTL, no grace) has let go by then, so its client's next request (or connection)
    asks, at the client's full rate, not once a stub cycle. The wait for that query is how
    long the resolver holds no answer (the model's dynamics). `q` primes at time 0 as the model
    does: the same full rate for stubs that let go without pooled connections, the averaged
    stub cycle for the others (tests/fast/test_targets.py's closed form)."""
    q = np.zeros(len(pop.resolver_group))
    refetch = np.zeros(len(pop.resolver_group))
    for cohort in pop.cohorts:
        if len(cohort.members) == 0:
            continue
        per_group = np.bincount(pop.resolver_group[pop.resolver[cohort.members]], minlength=len(pop.group_names))
        for g, policy in enumerate(pop.group_policies):
            if per_group[g] == 0:
                continue
            left = policy.residuals(ttl, rng, 256)
            lives = cohort.stub.lifetimes_for(left, rng)
            if cohort.restarts is not None:
                # An answer is kept until the next restart at most: a restart empties the stub and
                # the next request fetches, so that answer has a whole gap to the next restart.
                lives = np.minimum(lives, cohort.restarts.gaps(rng, len(lives)))
            life = float(np.mean(lives))
            # While the balancer is dead every request breaks its connection and looks up again.
            opens = connection_rate(cohort) if pooled else cohort.rate
            per_client = 0.0 if math.isinf(life) or opens <= 0 else 1.0 / (life + 1.0 / opens)
            members = cohort.members[pop.resolver_group[pop.resolver[cohort.members]] == g]
            let_go = cohort.stub.kind in WITHIN_TTL and cohort.grace == 0
            # The model primes a resolver behind stubs that let go (and no pooled connections)
            # with their clients' full rate (sim.model.building `_resolver_load`).
            prime = cohort.rate if let_go and cohort.reuse.keepalive <= 0 else per_client
            np.add.at(q, pop.resolver[members], prime)
            np.add.at(refetch, pop.resolver[members], opens if let_go and opens > 0 else per_client)
    return q, refetch


def resolver_lifetimes(pop: Population, res: np.ndarray, ttl: float, rng: np.random.Generator) -> np.ndarray:
    """How long resolvers `res` keep an answer of TTL `ttl`, each by its group's policy (drawn
    group by group, in the groups' order)."""
    life = np.empty(len(res))
    for g, policy in enumerate(pop.group_policies):
        mine = pop.resolver_group[res] == g
        if mine.any():
            life[mine] = policy.lifetimes(ttl, rng, int(mine.sum()))
    return life


def connection_rate(cohort: Cohort) -> float:
    """New connections per second of one client, each of which looks up the name.

    With keep-alive k, a Poisson request opens a connection when the previous
    one came more than k ago (rate x exp(-rate k)); a maximum age adds about
    one reopening per age. Restarts close the connection: a request reuses it only if
    the previous one came less than k ago and no restart fell in between; with restarts
    at rate rho (one over the mean gap, as if exponential) that chance is
    r / (r + rho) (1 - exp(-(r + rho) k)).
    """
    k = cohort.reuse.keepalive
    if k <= 0:
        return cohort.rate
    r = cohort.rate
    rho = 1.0 / float(cohort.restarts.every.mean) if cohort.restarts is not None else 0.0
    reuse = r / (r + rho) * -math.expm1(-(r + rho) * k) if r + rho > 0 else 0.0
    age = cohort.reuse.max_age
    return r * (1.0 - reuse) + (1.0 / age if math.isfinite(age) else 0.0)


def lets_go(cohort: Cohort) -> bool:
    """sim.policy.cache.lets_go for a fast-engine cohort (its stub lets go with its resolver's
    answer: the two are primed together, as the model primes them)."""
    return _stub_lets_go(cohort.stub.kind, cohort.grace, cohort.reuse.keepalive)
