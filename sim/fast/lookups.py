"""Followed clients request by request, in time order, with their resolvers.

The model's request path (sim.model.requests) for the clients whose requests
sim.fast.sessions drew (session clients, and Poisson clients on a resolver
farm's groups or through a dns_down with more: sim.fast.population.on_farm): a pooled connection while it is young and recently
used (reset once when the address it leads to has moved), otherwise the
stub cache (fresh, or within its grace period: the old answer served and
refreshed behind it), otherwise the resolver; a try to a balancer inside
one of its refusing faults fails (the active's: the old answer or address,
the standby's: the new), a lookup that needs our authoritative servers
during a dns_down fails before any balancer, and the client's own retries
come at once. Under node churn behind a name (`Plan.nodes`) an answer holds
the active's node list of when it was fetched, and a try to a node from its
retirement on is refused. From a change on (a failover's or a planned one) each first
try is counted to the previous or the current target.

A resolver whose clients are all followed is followed too, cache by
cache (a farm's query goes to the cache `Farm.pick` draws): it fetches at
the first query after its answer expired and keeps it for its policy's
lifetime, as the model's resolver does, so it holds an answer exactly when
its own clients' lookups left one there (with one client a resolver, a
client back from a long gap finds the resolver empty). With unbound's
prefetch a hit from the prefetch point on refetches behind the answer, and
with serve-expired at client timeout 0 a miss on an answer expired within
its limit is answered with it (the reply TTL) and refetched behind it, as
each of the model's caches does (sim.model.dns.Resolver._answer). Its
fetches of the service record are the authoritative queries it sends. A resolver shared with Poisson clients
is not followed: its answer turns at the moment sim.fast.dns finds for it
(`Plan.opens`), with the time left as seen then (every client of a farm is
followed, so such a resolver is one cache).

Requests are taken one by one in Python: session clients send few (the
consumer-web browsers one every 31 min), and their order across clients
matters wherever they share a resolver. They are followed only around the
faults (`follow`, `window`, `relaxation`): primed a few lifetimes before the
first fault or change, until nothing can differ from the current answer any
more; the requests outside reach the old or the current target (docs/fast.md,
"Resolver farms").
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.fast.population import Population, lets_go, stub_primed_expiry
from sim.fast.sessions import Outcome, Plan, Requests, homes
from sim.policy.cache import STALE_ANSWER_TTL, CachePolicy, Primed, primed_entry
from sim.policy.resolver import ResolverSetup, prefetch_from

PLAIN = ResolverSetup()

OLD, NEW = 0, 1


def priming_rates(pop: Population, ttl: float, rng: np.random.Generator) -> np.ndarray:
    """Per resolver, the query rate the model primes it with (Building._resolver_load): per
    client its long-run rate for a stub that lets go with the resolver's answer and no pooled
    connections, otherwise one query per stub cycle, the stub's lifetime for half the TTL plus
    the wait for a request at the cohort's long-run rate, whatever its pooled connections spare."""
    out = np.zeros(len(pop.resolver_group))
    for cohort in pop.cohorts:
        if len(cohort.members) == 0 or cohort.rate <= 0:
            continue
        life = cohort.stub.lifetimes_for(np.full(len(cohort.members), ttl / 2.0), rng)
        if lets_go(cohort):
            np.add.at(out, pop.resolver[cohort.members], cohort.rate)
            continue
        if cohort.restarts is not None:
            life = np.where(np.isinf(life), float(cohort.restarts.every.mean), life)  # kept until a restart
        with np.errstate(divide="ignore"):
            load = np.where(np.isinf(life), 0.0, 1.0 / (life + 1.0 / cohort.rate))
        np.add.at(out, pop.resolver[cohort.members], load)
    return out


def exact_resolvers(pop: Population) -> np.ndarray:
    """Per resolver: are all its clients followed clients (Cohort.followed: session clients, and
    Poisson clients that can use a farm)? Then it is followed too, cache by cache."""
    poisson = np.zeros(len(pop.resolver_group), bool)
    for cohort in pop.cohorts:
        if not cohort.followed and len(cohort.members):
            poisson[pop.resolver[cohort.members]] = True
    used = np.bincount(pop.resolver, minlength=len(pop.resolver_group)) > 0
    return used & ~poisson


class _Resolvers:
    """The followed resolvers' caches: per (resolver, cache), each key's `_Entry`."""

    def __init__(self, pop: Population, plan: Plan, q: np.ndarray, exact: np.ndarray, rng: np.random.Generator,
                 at: float = 0.0) -> None:
        self.pop, self.plan, self.rng = pop, plan, rng
        self.exact = exact
        self.fetches: list[float] = []
        self.caches: dict[tuple[int, int], dict[Any, _Entry]] = {}
        # Under churn, where each resolver's fetches start in the Poisson path's (sorted by
        # resolver, then time).
        cycles = plan.node_fetches
        self._first_fetch = np.searchsorted(cycles.res, np.arange(len(pop.resolver_group) + 1)) \
            if cycles is not None else np.empty(0, dtype=np.int64)
        record, chain = plan.ttls
        for r in np.flatnonzero(exact).tolist():
            g = int(pop.resolver_group[r])
            setup = _setup(pop, g)
            n = setup.farm.caches
            policy = pop.group_policies[g]
            for c in range(n):
                entries: dict[Any, _Entry] = {}
                # The model's priming: each cache with 1/n of the queries (Resolver.prime).
                rate = float(q[r]) / n
                for key, ttl in (("svc", record), (("a", OLD), chain)):
                    if ttl is None:
                        continue
                    primed = primed_entry(policy, setup, ttl, rate, rng)
                    if primed is not None:
                        # as a random moment of steady state finds it, that moment `at`
                        primed = Primed(primed.at + at, primed.lifetime)
                        entries[key] = _Entry.primed(primed, setup.prefetch, _window(policy, setup))
                self.caches[(r, c)] = entries

    def settled(self, now: float, target: int, used: set[int]) -> bool:
        """Can no cache of the resolvers `used` answer other than `target` from `now` on (our
        servers answering, the change propagated)? A followed cache's service entry holds it or
        is past keeping; a resolver not followed has turned."""
        for r in used:
            if not self.exact[r] and now < self.plan.opens_of(r) and target == NEW:
                return False
        for entries in self.caches.values():
            entry = entries.get("svc")
            if entry is not None and entry.value != target and now < entry.kept_until:
                return False
        return True

    def resolve(self, r: int, home: int, now: float) -> tuple[int, float, float] | None:
        """(old or new, seconds the answer stays valid, when the balancer's addresses in it were
        fetched) from resolver `r` at `now`; None (SERVFAIL) when it must ask our authoritative
        servers while they are down."""
        pop, plan, rng = self.pop, self.plan, self.rng
        g = int(pop.resolver_group[r])
        setup = _setup(pop, g)
        cache = setup.farm.pick(home, rng) if setup.farm.caches > 1 else 0
        record, chain = plan.ttls
        if not self.exact[r]:  # never a farm: all of a farm's clients are followed (population.on_farm)
            turn = plan.opens_of(r)
            value = OLD if now < turn else NEW
            if plan.nodes is not None and plan.node_fetches is not None:
                return (value, *self._churned(r, g, now, turn))
            left = _left(pop.group_policies[g], now, turn, plan, record, chain, rng)
            return value, left, -math.inf
        entries = self.caches[(r, cache)]
        current = NEW if plan.changes_dns and now >= plan.effective else OLD
        got = self._answer(entries, "svc", current, record, g, now, plan.servers_down(now))
        if got is None:
            return None
        value, expires, at = got
        if chain is None:
            return value, expires - now, at
        # the balancer's own name, in its provider's zone: its fetches are not counted
        a = self._answer(entries, ("a", value), value, chain, g, now, False)
        assert a is not None  # the provider's zone answers through our outage
        return value, min(expires, a[1]) - now, a[2]

    def _churned(self, r: int, g: int, now: float, turn: float) -> tuple[float, float]:
        """Under node churn, a resolver not followed (shared with Poisson clients): the time left
        on its answer and when its node list was fetched, from the Poisson path's fetches of
        the nodes' record (`Plan.node_fetches`): the fetch that covers `now`, else a fetch of
        this query's own, kept for the policy's lifetime. The service record's residual (behind
        a CNAME) and the turn to the new record as `_left`."""
        plan, rng = self.plan, self.rng
        record, chain = plan.ttls
        cycles = plan.node_fetches
        assert cycles is not None
        policy = self.pop.group_policies[g]
        lo, hi = int(self._first_fetch[r]), int(self._first_fetch[r + 1])
        i = lo + int(np.searchsorted(cycles.fetched[lo:hi], now, side="right")) - 1
        if i >= lo and now < float(cycles.expires[i]):
            at, nodes_left = float(cycles.fetched[i]), float(cycles.expires[i]) - now
        else:
            at, nodes_left = now, float(policy.lifetime(record if chain is None else chain, rng))
        known = plan.changes_dns and plan.effective <= now < turn
        if chain is None:
            return (turn - now if known else nodes_left), at
        return min(turn - now if known else float(policy.residuals(record, rng, 1)[0]), nodes_left), at

    def _answer(self, entries: dict[Any, _Entry], key: Any, current: int, ttl: float, g: int,
                now: float, down: bool) -> tuple[int, float, float] | None:
        """One record from a cache, as the model's Resolver._answer: (value, when it stops being
        valid). A fresh hit is answered from the cache, and with prefetch refreshed behind it
        from its prefetch point on; a miss fetches `current`, and with serve-expired at client
        timeout 0 an expired entry within its window is answered instead, with the reply TTL.
        While our servers are `down` a miss fetches nothing and counts no query (the model's
        Authoritative): an entry expired within its stale window is served with STALE_ANSWER_TTL
        (serve-expired's reply TTL if the group sets it) and kept as it was, otherwise None
        (SERVFAIL); a prefetch due then fetches nothing, and the next hit tries again."""
        entry = entries.get(key)
        if entry is not None and now < entry.expires:
            if now >= entry.refresh and not down:  # unbound's prefetch (never without it: refresh is inf)
                entries[key] = self._fetch(key, current, ttl, g, now)
            return entry.value, entry.expires, entry.at
        served = _setup(self.pop, g).serve_expired
        if down:
            # serve-expired's reply TTL, whatever its client timeout; RFC 8767's otherwise
            reply = STALE_ANSWER_TTL if served is None else served.reply(ttl)
            return (entry.value, now + reply, entry.at) if entry is not None and now < entry.kept_until else None
        entries[key] = fresh = self._fetch(key, current, ttl, g, now)
        if entry is not None and served is not None and served.immediate and now < entry.kept_until:
            return entry.value, now + served.reply(ttl), entry.at
        return fresh.value, fresh.expires, fresh.at

    def _fetch(self, key: Any, value: int, ttl: float, g: int, now: float) -> _Entry:
        """`value` fetched at `now` and kept for the group's policy's lifetime (Cache.fetched)."""
        if key == "svc":
            self.fetches.append(now)  # our zone's: an authoritative query
        policy, setup = self.pop.group_policies[g], _setup(self.pop, g)
        return _Entry.fetched(value, now, policy.lifetime(ttl, self.rng), setup.prefetch, _window(policy, setup))


@dataclass(frozen=True, slots=True)
class _Entry:
    """One cached record (sim.policy.cache.Cache's entry): its value, when it stops being fresh,
    when a hit starts refreshing it (prefetch; inf: never), and until when it is kept expired
    (serve-expired's window)."""

    value: int
    expires: float
    refresh: float
    kept_until: float
    at: float = -math.inf  # when it was fetched (-inf: before the run): its node list under churn

    @staticmethod
    def fetched(value: int, at: float, life: float, prefetch: bool, window: float) -> _Entry:
        return _Entry(value, at + life, at + prefetch_from(life) if prefetch else math.inf, at + life + window, at)

    @staticmethod
    def primed(primed: Primed, prefetch: bool, window: float) -> _Entry:
        """The old answer as primed at time 0 (sim.policy.cache.primed_entry): fetched with its
        lifetime, or kept until its time whatever the policy and never prefetched (Cache.put_until)."""
        if primed.lifetime is not None:
            return _Entry.fetched(OLD, primed.at, primed.lifetime, prefetch, window)
        return _Entry(OLD, primed.at, math.inf, primed.at + window)


def _setup(pop: Population, g: int) -> ResolverSetup:
    return pop.group_setups[g] if pop.group_setups else PLAIN


def _window(policy: CachePolicy, setup: ResolverSetup) -> float:
    """Seconds after expiry an entry is kept (Cache: the policy's stale window or serve-expired's)."""
    return max(policy.stale_window, setup.expired_window)


def _left(policy, now, turn, plan, record, chain, rng) -> float:  # type: ignore[no-untyped-def]
    """Time left on a resolver's answer not followed: the old one's until it turns, once the
    change has propagated; otherwise drawn from steady state (and the chain's, if shorter)."""
    known = plan.changes_dns and plan.effective <= now < turn
    left = turn - now if known else float(policy.residuals(record, rng, 1)[0])
    if chain is not None:
        left = min(left, float(policy.residuals(chain, rng, 1)[0]))
    return left


class _Clients:
    """The followed clients, per lane: the stub's answer (None: empty) and expiry, the pooled
    connection (None: none), when it opened and was last used, the restarts to come; and
    their resolvers. Primed as the model primes them."""

    def __init__(self, req: Requests, pop: Population, plan: Plan, rng: np.random.Generator, at: float = 0.0) -> None:
        self.pop, self.plan, self.rng = pop, plan, rng
        record, chain = plan.ttls
        prime = record if chain is None else min(record, chain)
        # Primed as a random moment of steady state finds them, that moment `at` (the window's start).
        self.stub_exp = stub_primed_expiry(pop, prime, at, rng)[req.clients].tolist()
        self.resolvers = _Resolvers(pop, plan, priming_rates(pop, record, rng), exact_resolvers(pop), rng, at)
        self.cohort_of = pop.cohort[req.clients].tolist()
        self.resolver_of = pop.resolver[req.clients].tolist()
        self.home_of = homes(pop)[req.clients].tolist()
        cohorts = pop.cohorts
        self.stub: list[int | None] = [OLD if (e > at or cohorts[c].grace > 0) else None
                                       for e, c in zip(self.stub_exp, self.cohort_of, strict=True)]
        self._within_resolvers(pop, at)
        self.conn, self.opened, self.last = _primed_connections(pop, self.cohort_of, rng, at)
        self.restarts = _restarts(req, pop, self.cohort_of, self.stub, self.conn, self.opened, self.last, rng, at)
        # One address per balancer: each client's rotation, primed as the model's (a random start
        # among the answer's two addresses), one on at every answer it keeps; and the answer the
        # lane's last try went by (None: a pooled connection, which has no next address).
        k = len(req.clients)
        # Under node churn (`Plan.nodes`) the answer lists the active's nodes, the rotation
        # alike; per lane when its answer's node list was fetched, and when the node its last
        # try and its pooled connection went to retire (inf: not a churned node).
        addresses = 2 if plan.per_balancer else plan.nodes.nodes if plan.nodes is not None else 0
        self.rotation = rng.integers(0, addresses, k).tolist() if addresses else []
        self.addresses = addresses
        self.held: list[int | None] = [None] * k
        self.fetched = [-math.inf] * k
        self.retire, self.conn_retire = [math.inf] * k, [math.inf] * k
        if plan.per_balancer:
            # A primed connection leads to the address the rotation starts at (the model's _prime_client).
            self.conn = [None if c is None else OLD if not (r if plan.rotate else 0) % 2 else NEW
                         for c, r in zip(self.conn, self.rotation, strict=True)]
        if plan.nodes is not None:
            # A primed connection leads to the node the rotation starts at, in the first list.
            first = plan.nodes.retire[0]
            self.conn_retire = [math.inf if c is None else float(first[(r if plan.rotate else 0) % addresses])
                                for c, r in zip(self.conn, self.rotation, strict=True)]

    def settled(self, now: float) -> bool:
        """From `now` on (no fault or change ahead), does every request reach the current target
        and get through? Yes when no fault of it is ahead and nothing still holds the old
        answer or a connection to the old target that a request could use: a stub (fresh or in
        its grace period), a followed cache's entry (fresh, or kept expired by its policy or
        serve-expired), a resolver not followed before it turns, a pooled connection. One
        address per balancer with no change: both targets, neither with a fault ahead."""
        plan = self.plan
        target = NEW if now >= plan.effective else OLD
        both = plan.per_balancer and target == OLD
        if any(hi > now and (on == target or both) for on, _, hi, _ in plan.down):
            return False
        if plan.nodes is not None and target == OLD:
            return False  # the old target's nodes churn on
        if both:
            return True
        cohorts = self.pop.cohorts
        for conn, opened, last, c in zip(self.conn, self.opened, self.last, self.cohort_of, strict=True):
            if conn is not None and conn != target and cohorts[c].reuse.can_reuse(opened, last, now):
                return False
        if not plan.changes_dns:
            return True  # the address decides, not the answer
        for value, expires, c in zip(self.stub, self.stub_exp, self.cohort_of, strict=True):
            if value is not None and value != target and now < expires + cohorts[c].grace:
                return False
        return self.resolvers.settled(now, target, set(self.resolver_of))

    def _within_resolvers(self, pop: Population, at: float) -> None:
        """A stub that lets go with its resolver's answer (one cache) holds nothing where that
        holds nothing at `at` (the priming's moment), and expires by its expiry, as the model
        primes it (Building._prime_client)."""
        caches = self.resolvers.caches
        for lane, (c, r) in enumerate(zip(self.cohort_of, self.resolver_of, strict=True)):
            if self.stub[lane] is None or not lets_go(pop.cohorts[c]) or (r, 1) in caches or (r, 0) not in caches:
                continue
            held = [e.expires for key, e in caches[(r, 0)].items() if key in ("svc", ("a", OLD))]
            until = min(held) if len(held) == (1 if self.plan.ttls[1] is None else 2) else -math.inf
            if until <= at:
                self.stub[lane], self.stub_exp[lane] = None, -math.inf
            else:
                self.stub_exp[lane] = min(self.stub_exp[lane], until)

    def restart_until(self, lane: int, now: float) -> None:
        """A restart since the lane's last request: the stub and the connection are gone."""
        pending = self.restarts[lane]
        if pending and pending[-1] <= now:
            while pending and pending[-1] <= now:
                pending.pop()
            self.stub[lane], self.stub_exp[lane], self.conn[lane] = None, -math.inf, None

    def target(self, lane: int, now: float, attempt: int = 0) -> tuple[int | None, bool]:
        """Where try `attempt` of a request at `now` goes (None: nowhere, its lookup failed),
        and whether it goes down a connection to the address that moved since (reset, once)."""
        cohort, plan = self.pop.cohorts[self.cohort_of[lane]], self.plan
        conn = self.conn[lane]
        self.held[lane] = None
        if conn is not None and cohort.reuse.can_reuse(self.opened[lane], self.last[lane], now):
            self.last[lane] = now
            self.retire[lane] = self.conn_retire[lane]
            return conn, not plan.changes_dns and conn == OLD and now >= plan.effective
        self.conn[lane] = None
        answer, stale = _answer(lane, now, cohort, self.stub, self.stub_exp, self._resolve, self.rng)
        if answer is None:
            return None, False
        self.held[lane] = answer
        target = self._address(lane, now, attempt)
        if stale:
            # The refresh behind a request served in grace, after its address was taken (as the
            # model's _attempt): the try goes by the old answer's node list and rotation.
            _refresh(lane, now, cohort, self.stub, self.stub_exp, self._resolve, self.rng)
        return target, False

    def next_address(self, lane: int, now: float, attempt: int, tries: int) -> int | None:
        """address_mode next, after a refused try: the target of the held answer's next address
        (None: the answer has no other, or the try went down a pooled connection)."""
        answer = self.held[lane]
        if not (answer == OLD and tries < self.addresses):
            return None
        return self._address(lane, now, attempt + tries)

    def _address(self, lane: int, now: float, shift: int) -> int:
        """The target of the held answer's address for try `shift` past where the client's
        answer starts (the model's addresses[(rotation * rotate + attempt + tries) % n]),
        kept as the pooled connection."""
        cohort, plan, answer = self.pop.cohorts[self.cohort_of[lane]], self.plan, self.held[lane]
        start = (self.rotation[lane] if plan.rotate else 0) if self.addresses else 0
        retire = math.inf
        if plan.per_balancer:
            # The old answer lists the active's address (OLD) then the standby's; the new one, the standby's.
            target = NEW if answer == NEW or (start + shift) % 2 else OLD
        else:
            target = answer if plan.changes_dns else (OLD if now < plan.effective else NEW)
            if plan.nodes is not None and target == OLD:
                # the node at that position of the list the answer was fetched with
                nodes = plan.nodes
                retire = float(nodes.retire[int(nodes.list_at(self.fetched[lane])), (start + shift) % nodes.nodes])
        self.retire[lane] = retire
        if cohort.reuse.keepalive > 0:
            self.conn[lane], self.opened[lane], self.conn_retire[lane] = target, now, retire
        self.last[lane] = now
        return target

    def _resolve(self, lane: int, now: float) -> tuple[int, float] | None:
        got = self.resolvers.resolve(self.resolver_of[lane], self.home_of[lane], now)
        if got is not None and self.addresses:
            self.rotation[lane] += 1  # the model's _keep_answer
            self.fetched[lane] = got[2]  # kept in the stub with the answer (no grace under churn)
        return got


def follow(req: Requests, pop: Population, plan: Plan,
           rng: np.random.Generator) -> tuple[Outcome, np.ndarray, tuple[float, float]]:
    """Every followed request's outcome (module doc), the followed resolvers' fetches, and the
    span [start, stop) in which requests were followed one by one (`window`); the fetches are
    those in it. A try the balancer blackholes is known failed after the client's timeout, and
    its retry comes then, in time order with every other request (the client's state may have
    moved on meanwhile, as in the model)."""
    total = len(req.times)
    out = Outcome(np.zeros(total, bool), np.zeros(total, bool), np.zeros(total, bool), np.zeros(total, bool),
                  np.zeros(total, np.int64), np.zeros(total, bool), req.times.copy(), np.full(total, np.inf),
                  np.full(total, -np.inf), np.zeros(total, bool), np.zeros(total, bool))
    start, quiet = _followed_span(req, pop, plan)
    clients = _Clients(req, pop, plan, rng, start if math.isfinite(start) else 0.0)
    cohorts, cohort_of = pop.cohorts, clients.cohort_of
    lanes = req.lane()
    order_ = np.lexsort((lanes, req.times))
    # Before the window every request reaches the old target (no fault, no change yet).
    nxt = int(np.searchsorted(req.times[order_], start, side="left"))
    _reached(out, req.times, order_[:nxt], OLD)
    # The requests in time order, as Python lists a block at a time (a day of a large farm's
    # requests as lists would take hundreds of MB; only the window's are needed).
    times_, lanes_ = req.times[order_], lanes[order_]
    base, order, times, lane_list = nxt, *_block(order_, times_, lanes_, nxt)
    # Retries after a blackholed try: (when, sequence, request, lane, attempt, failed tries so far).
    waiting: list[tuple[float, int, int, int, int, int]] = []
    seq = 0
    # From `quiet` on, check now and then (ever further apart) whether the clients and caches
    # have settled (`_Clients.settled`): then every later request reaches the current target.
    check, step = quiet, max(min(t for t in plan.ttls if t is not None), 1.0) / 4.0
    stop = math.inf
    while nxt < total or waiting:
        if nxt < total and nxt - base == len(order):
            base, order, times, lane_list = nxt, *_block(order_, times_, lanes_, nxt)
        if waiting and (nxt == total or waiting[0][0] < times[nxt - base]):
            now, _, at, lane, first, fails = heapq.heappop(waiting)
        else:
            at, lane, first, fails = order[nxt - base], lane_list[nxt - base], 0, 0
            now = times[nxt - base]
            if not waiting and now >= check:
                if clients.settled(now):
                    stop = now
                    break
                check, step = now + step, 2.0 * step
            nxt += 1
        cohort = cohorts[cohort_of[lane]]
        clients.restart_until(lane, now)
        ok, later = False, False
        for attempt in range(first, cohort.attempts):
            target, reset = clients.target(lane, now, attempt)
            if target is None:
                # No answer (our servers down): the try fails before reaching a balancer and
                # is not counted to either target; the next try comes at once, as a retry.
                fails += 1
                out.refused[at] = False
                out.unresolved[at] = True  # type: ignore[index]
                continue
            ok, hole, failed = _tries(out, clients, plan, cohort, (at, lane, attempt), target, reset, now)
            fails += failed
            if ok:
                break
            if hole:
                # Blackholed: known after the timeout; the retry (if any) starts then.
                now += cohort.timeout
                if attempt + 1 < cohort.attempts:
                    seq += 1
                    heapq.heappush(waiting, (now, seq, at, lane, attempt + 1, fails))
                    later = True
                    break
        if later:
            continue
        out.failed[at] = not ok
        out.rescued[at] = fails if ok else 0
        out.done[at] = now
    if nxt < total:
        _reached(out, req.times, order_[nxt:], NEW if stop >= plan.effective else OLD)
    return out, np.array(clients.resolvers.fetches), (start, stop)


def _tries(out: Outcome, clients: _Clients, plan: Plan, cohort: Any, where: tuple[int, int, int], target: int,
           reset: bool, now: float) -> tuple[bool, bool, int]:
    """One attempt's tries of request `at` of `lane` (`where`: with the attempt): whether one got
    through, whether the last was blackholed, and how many failed. address_mode next goes on
    to the answer's next address at once after a refused connect (one address per balancer;
    a blackhole with it is refused by the engine)."""
    at, lane, attempt = where
    tries = failed = 0
    while True:
        _went(out, at, attempt + tries, target, now)
        out.unresolved[at] = False  # type: ignore[index]
        hole = False
        if not reset:
            span = next((h for on, lo, hi, h in plan.down if target == on and lo <= now < hi), None)
            retired = now >= clients.retire[lane]  # a retired node (churn) refuses, whatever its balancer's mode
            if span is None and not retired:
                return True, False, failed
            hole = bool(span) and not retired
        clients.conn[lane] = None
        failed += 1
        out.refused[at] = not hole
        other = None if hole or reset or not cohort.next_address else \
            clients.next_address(lane, now, attempt, tries + 1)
        if other is None:
            return False, hole, failed
        target, tries = other, tries + 1


def _followed_span(req: Requests, pop: Population, plan: Plan) -> tuple[float, float]:
    """From when requests are followed one by one, and from when the clients may have settled
    (`window`)."""
    begin, quiet = window(plan)
    # Primed a while before the first fault, so that the state there has forgotten the priming
    # as the model's has by then (or from time 0, as the model, when the fault comes early).
    start = max(begin - relaxation(pop, plan, req), 0.0) if math.isfinite(begin) else math.inf
    if plan.nodes is not None:
        start = 0.0  # retired nodes refuse from the start
    if _fetches_ahead(pop, req):
        # The engine counts the fetches outside the window as a plain cache's renewals
        # (sim.fast.dns.query_counts): not a farm's caches with prefetch or serve-expired.
        start, quiet = 0.0, math.inf
    return start, quiet


def window(plan: Plan) -> tuple[float, float]:
    """When answers and targets can first differ from steady state on the old one (the first
    balancer fault, DNS outage or change; inf: never in the run), and from when no fault or
    change is ahead (`quiet`): only then can the clients and caches settle."""
    starts = [plan.changed_at, *(lo for lo, _ in plan.auth_down), *(lo for _, lo, _, _ in plan.down)]
    ends = [plan.changed_at, plan.effective, *(hi for _, hi in plan.auth_down), *(hi for _, _, hi, _ in plan.down)]
    return min(starts), max((t for t in ends if math.isfinite(t)), default=-math.inf)


def relaxation(pop: Population, plan: Plan, req: Requests) -> float:
    """How long the followed clients and caches take to forget how they were primed: four
    times the longest an entry primed at a moment can last (a cache's lifetime of the record
    and the time kept expired, a stub's lifetime and grace, as drawn by their policies; kept
    forever: no forgetting, and no change either), at least a minute. The model primes its
    caches with the clients' rate whatever their pooled connections spare, and the state
    relaxes to the real one in about a lifetime (a fault 10 s in meets caches fuller than
    one 12 h in)."""
    rng = np.random.default_rng(0)  # a bound, not a draw of the run
    ttl = max(t for t in plan.ttls if t is not None)
    groups = np.unique(pop.resolver_group[pop.resolver[req.clients]])
    cache = max((_finite_max(pop.group_policies[g].lifetimes(ttl, rng, 256)) +
                 _window(pop.group_policies[g], _setup(pop, int(g))) for g in groups.tolist()), default=0.0)
    cohorts = {int(c) for c in np.unique(pop.cohort[req.clients])}
    stub = max((_finite_max(pop.cohorts[c].stub.lifetimes_for(np.full(256, ttl), rng)) + pop.cohorts[c].grace
                for c in cohorts), default=0.0)
    longest = cache + stub
    return 4.0 * max(longest if math.isfinite(longest) else 0.0, 60.0)


def _fetches_ahead(pop: Population, req: Requests) -> bool:
    """Does a followed client's resolver group prefetch or serve expired answers?"""
    groups = np.unique(pop.resolver_group[pop.resolver[req.clients]]).tolist()
    return any(_setup(pop, g).prefetch or _setup(pop, g).serve_expired is not None for g in groups)


def _finite_max(x: np.ndarray) -> float:
    finite = x[np.isfinite(x)]
    return float(finite.max()) if len(finite) else 0.0


def _block(order: np.ndarray, times: np.ndarray, lanes: np.ndarray,
           at: int, size: int = 1 << 16) -> tuple[list[int], list[float], list[int]]:
    """Positions [at, at + size) of the requests in time order: their indices, times and lanes."""
    return order[at:at + size].tolist(), times[at:at + size].tolist(), lanes[at:at + size].tolist()


def _reached(out: Outcome, times: np.ndarray, idx: np.ndarray, target: int) -> None:
    """Requests `idx`, not followed, each reached `target` at its first try and got through."""
    out.first_sent[idx] = True
    if target == OLD:
        out.first_old[idx] = True
        out.any_old[idx] = True
        out.old_at[idx] = times[idx]
    else:
        out.any_new[idx] = True
        out.new_at[idx] = times[idx]


def _went(out: Outcome, at: int, attempt: int, target: int, now: float) -> None:
    """Request `at`'s try number `attempt` went to `target` at `now`."""
    if attempt == 0:
        out.first_old[at] = target == OLD
        out.first_sent[at] = True
    if target == OLD:
        out.any_old[at] = True
        out.old_at[at] = now
    else:
        out.any_new[at] = True
        out.new_at[at] = min(out.new_at[at], now)


def _primed_connections(pop: Population, cohort_of: list[int], rng: np.random.Generator,
                        at: float = 0.0) -> tuple[list[int | None], list[float], list[float]]:
    """Per lane, its pooled connection at time `at` (None: none), when it opened and was last
    used: open if the time since its last request (drawn at the cohort's long-run rate, as
    the model primes it at time 0) is within the keep-alive."""
    k = len(cohort_of)
    conn: list[int | None] = [None] * k
    opened, last = [-math.inf] * k, [-math.inf] * k
    for lane in range(k):
        cohort = pop.cohorts[cohort_of[lane]]
        if cohort.reuse.keepalive > 0:
            idle = float(rng.exponential(1.0 / cohort.rate))  # since its last request, as the model primes
            if idle < cohort.reuse.keepalive:
                age = cohort.reuse.max_age
                conn[lane], last[lane] = OLD, at - idle
                # with no age limit any opening time at or before its last use, as the model
                opened[lane] = at - idle - (float(rng.random()) * (age - idle) if math.isfinite(age) and age > idle else 0.0)
    return conn, opened, last


def _answer(lane, now, cohort, stub, stub_exp, resolve, rng) -> tuple[int | None, bool]:  # type: ignore[no-untyped-def]
    """The answer a try without a connection goes by: the stub's, fresh; or expired within the
    grace period (served; the caller refreshes it behind the request: the second item);
    otherwise the resolver's (kept in the stub). None: no answer (the lookup failed, our
    servers down). A failed lookup leaves the stub as it was, so an answer in grace stays in
    grace."""
    answer = stub[lane] if now < stub_exp[lane] else None
    if answer is None and cohort.grace > 0 and stub[lane] is not None \
            and stub_exp[lane] <= now < stub_exp[lane] + cohort.grace:
        return stub[lane], True
    if answer is None:
        answer = _refresh(lane, now, cohort, stub, stub_exp, resolve, rng)
    return answer, False


def _refresh(lane, now, cohort, stub, stub_exp, resolve, rng) -> int | None:  # type: ignore[no-untyped-def]
    """The resolver's answer, kept in the stub for the stub's lifetime of its time left (None:
    the lookup failed, the stub left as it was)."""
    got = resolve(lane, now)
    if got is None:
        return None
    stub[lane], stub_exp[lane] = got[0], now + cohort.stub.lifetime(got[1], rng)
    return int(got[0])


def _restarts(req, pop, cohort_of, stub, conn, opened, last, rng, at=0.0) -> list[list[float]]:  # type: ignore[no-untyped-def]
    """Per lane, its restarts in the run, latest first (to pop from the end), from a random
    moment of its restart cycle (sim.policy.restarts); and what the last restart before
    time 0 undid of its primed state, as the model's undo_before_start: a `forever` stub
    is empty if no request came since (the time since the last request drawn at the
    cohort's long-run rate, as the model primes it), a connection idle since is closed."""
    out: list[list[float]] = [[] for _ in range(len(req.clients))]
    end = float(req.times.max()) if len(req.times) else 0.0
    lanes_of = np.asarray(cohort_of)
    for c, cohort in enumerate(pop.cohorts):
        lanes = np.flatnonzero(lanes_of == c)
        if cohort.restarts is None or len(lanes) == 0:
            continue
        age, wait = cohort.restarts.equilibrium(rng, len(lanes))
        idle = rng.exponential(1.0 / cohort.rate, len(lanes))
        for lane, a, w, i in zip(lanes.tolist(), age.tolist(), wait.tolist(), idle.tolist(), strict=True):
            if cohort.stub.kind == "forever" and i >= a:
                stub[lane] = None
            if conn[lane] is not None:
                if at - last[lane] >= a:
                    conn[lane] = None
                else:
                    opened[lane] = max(opened[lane], at - a)
            times = [at + w]
            while times[-1] <= end:
                times.append(times[-1] + float(cohort.restarts.gaps(rng, 1)[0]))
            out[lane] = times[::-1]
    return out

