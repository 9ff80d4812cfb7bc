"""One replication of one strategy, per client with numpy instead of per request.

Outline (docs/fast.md has the reasoning and what is approximated), with the
phase of `_Replication.run` that does each step:
1. the control plane as in the model: fault, detection, the plan's effective
   time (sim.fast.control, when the replication is set up);
2. per client, the moment its requests reach a live balancer again: the
   standby after its caches let go of the old record (a plan that changes
   DNS), the address's move (a plan that moves addresses), or the end of the
   fault (`_window`); with node churn behind a name that resolves to the
   nodes, the spans in which a retired node refuses its requests, and the
   requests of clients whose stub or pooled connection outlives the
   resolver's answer followed one by one (`_churn`, sim.fast.churn,
   sim.fast.churn_requests);
3. per client, the requests that fail are those it issues in between: a
   Poisson number, their times drawn only for those (`_dead_requests`; one
   address per balancer: followed request by request, sim.fast.multia), less
   the blackholed ones a retry gets through late (`_rescue`);
4. the backend fleet (dead instances, full queues, waiting, autoscaling:
   sim.fast.fleet) per second (`_backends`), whose failures are drawn per
   client like step 3's (`_backend_losses`);
5. per client, its recovery: its first request after the window (`_recovery`),
   plus one connection reset for pooled connections that outlive an address
   move (`_resets`);
6. per second, successful requests as Poisson counts of the remaining
   intensity, balancer capacity by formula (sim.fast.load), and authoritative
   DNS queries from resolver renewal processes (sim.fast.dns): `_clients`,
   `_timeline`, `_metrics`.

The engine knows a strategy only by what its plan publishes and who detects
(sim.scenario.build.Deployment), never by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sim.fast import (
    churn,
    churn_requests,
    fleet,
    load,
    lookups,
    multia,
    pooled,
    pooled_fault,
    scaling,
    sessions,
    targets,
)
from sim.fast.control import ControlPlane, control_plane
from sim.fast.dns import WITHIN_TTL, query_counts, resolver_expiry, switch_times
from sim.fast.intensity import Intensity
from sim.fast.intensity import window_mass as _window_mass
from sim.fast.population import (
    Population,
    population,
    resolver_rates,
    without_sessions,
)
from sim.fast.refusals import Strategy, balancer_faults, merged_faults, unsupported
from sim.policy.attempts import CONNECT_TIMEOUT
from sim.replication import OUTCOMES, ReplicationOutput, streams
from sim.scenario import build
from sim.scenario import models as m


def _per_client(span: Span, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A span as per-client arrays (start, back); empty (inf, inf) for the clients not in it."""
    lo, hi = np.full(n, np.inf), np.full(n, np.inf)
    lo[span.who], hi[span.who] = span.lo, span.hi
    return lo, hi


def _cut(failing: list[tuple[np.ndarray, ...]], start: np.ndarray,
         back: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Churn spans (who, lo, hi, share) less each client's [start, back)."""
    out = []
    for who, lo, hi, share in failing:
        s, b = start[who], back[who]
        for a, z in ((lo, np.minimum(hi, s)), (np.maximum(lo, b), hi)):
            keep = z > a
            out.append((who[keep], a[keep], z[keep], share[keep]))
    return out


def _within(failing: list[tuple[np.ndarray, ...]], start: np.ndarray,
            back: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """Churn spans (who, lo, hi, share) within each client's [start, back), one a client an entry."""
    out = []
    for who, lo, hi, share in failing:
        a, z = np.maximum(lo, start[who]), np.minimum(hi, back[who])
        keep = z > a
        out.append((who[keep], a[keep], z[keep], share[keep]))
    return out


def simulate(scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence,
             replication: int = 0) -> ReplicationOutput:
    """One replication of `strategy` (a name, a plan class, a plan, or a Deployment of `scenario`)."""
    deployment = build.compile(scenario, strategy)
    reasons = unsupported(scenario, [deployment])
    if reasons:
        raise ValueError("the fast engine does not model: " + "; ".join(reasons))
    merged = merged_faults(scenario)
    if merged is not scenario:
        deployment = build.compile(merged, deployment.plan)
    return _Replication(deployment, streams(seed)).run()


@dataclass(frozen=True)
class Window:
    """Per client, the span [start, back) in which its requests go to the dead balancer."""

    fault: float  # the active balancer's fault; inf: none within the run
    start: np.ndarray
    back: np.ndarray  # its path is back (the switch, the move or the fault's end); = start: no window
    until: np.ndarray  # until when its requests go to the dead balancer, fault or not
    reach: np.ndarray  # its first request that reaches a live balancer by its switch (inf: drawn later)
    hits: np.ndarray  # requests in the window counted one by one (refreshes with the old answer)
    mass: np.ndarray  # the intensity measure of the rest of the window (Poisson requests)
    busy: tuple[float, float]  # when resolvers see the outage's query rate
    # The span is a DNS outage (dns_down), not a dead balancer: its requests fail to resolve.
    dns: bool = False
    # More spans in which clients' requests meet a dead balancer, in time order (each client's
    # disjoint): the active's later faults before the client left it, the standby's after the
    # client reached it. Refused requests, like the first fault's.
    extra: tuple[Span, ...] = ()
    # After a planned DNS change, per client with pooled connections: its first request on a
    # connection opened with the new record (inf: none; NaN: not pooled). None: no such client.
    pooled: np.ndarray | None = None
    # Their drains in full (per client over the population; sim.fast.pooled.Drain).
    pooled_drain: pooled.Drain | None = None

    @property
    def faulted(self) -> bool:
        return math.isfinite(self.fault)


@dataclass(frozen=True)
class Span:
    """Clients `who`, each with a span [lo, hi) whose requests are refused, each with
    chance `share` (one for all, or one per client: under node churn, the share of the
    answer's positions whose tries all meet retired nodes; sim.fast.churn)."""

    who: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    share: float | np.ndarray = 1.0

    @property
    def thinned(self) -> bool:
        return bool(np.any(np.asarray(self.share) < 1.0))

    @classmethod
    def of(cls, lo: np.ndarray, hi: np.ndarray) -> Span:
        """The clients whose span is not empty."""
        who = np.flatnonzero(hi > lo)
        return cls(who, lo[who], hi[who])


@dataclass(frozen=True)
class Failed:
    """Requests that fail: each one's client and issue time, and each client's count."""

    count: np.ndarray
    owner: np.ndarray
    issued: np.ndarray
    # Per request, the wait before its failure is known (a blackhole's timeouts); None: its
    # client's cost (_Replication.cost), as for every request drawn on the Poisson path.
    spent: np.ndarray | None = None


@dataclass(frozen=True)
class Rescued:
    """Blackholed requests whose retry got through once the path was back: late successes."""

    owner: np.ndarray
    at: np.ndarray  # issued
    delay: np.ndarray  # from issue to success

    @classmethod
    def none(cls) -> Rescued:
        return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0))


@dataclass(frozen=True)
class Backends:
    """The backend fleet per second (sim.fast.fleet), and what it does to a client's requests."""

    fleet: fleet.Fleet
    mean: np.ndarray  # the share of the requests past the balancers that fail at the backends
    detour: np.ndarray  # the share of successes that first waited out a blackholed instance's connect
    attempt_class: np.ndarray  # per client: its row in `fail` and `shed` (clients by attempts)
    fail: np.ndarray  # per class and second: the share of a client's requests that fail in the end
    shed: np.ndarray  # per class and second: the part of those shed


@dataclass(frozen=True)
class BackendLosses:
    """Requests lost at the backends (a dying instance, a dead one still called healthy, a full queue)."""

    who: np.ndarray
    when: np.ndarray  # issued
    end: np.ndarray  # when each is known to fail
    shed: np.ndarray  # per second, those the fleet shed

    @classmethod
    def none(cls, seconds: int) -> BackendLosses:
        return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0), np.zeros(seconds, dtype=np.int64))


@dataclass(frozen=True)
class Recovery:
    """Per client: its failures and its first success after the first of them."""

    failed: np.ndarray  # failed requests
    first_fail: np.ndarray  # when the first is known to fail (inf: none)
    recovered: np.ndarray  # issue time of the first success after it (inf: none in the run)
    reach: np.ndarray  # its first request that reaches a live balancer
    reset_at: np.ndarray  # when a reset of its pooled connection fails its request (inf: none)
    # When its pooled connection is reset, failing the request or rescued by a retry (inf: none).
    resets: np.ndarray | None = None


class _Replication:
    """One replication, in phases that each return what the next ones need (see `run`)."""

    def __init__(self, deployment: build.Deployment, rng: dict[str, np.random.Generator]) -> None:
        scenario = deployment.scenario
        self.sc = scenario
        self.published = deployment.published
        self.rng = rng
        self.end = scenario.end
        self.seconds = int(math.ceil(self.end))
        self.shape = Intensity(scenario)
        # `full`: every client at its long-run rate, for resolvers and priming; `pop`: the
        # same with session clients at rate 0, for the Poisson shortcuts (sim.fast.sessions
        # draws and follows their requests one by one).
        self.full: Population = population(deployment, rng["clients"])
        self.pop: Population = without_sessions(self.full)
        self.ctl: ControlPlane = control_plane(deployment, rng["control"])
        ttl = self.published.answer_ttl
        # `q` primes caches at time 0 as the model does; a change or outage later meets them as
        # the run has kept them: an expired answer is refetched at the rate `*_refetch`.
        self.q, self.q_refetch = resolver_rates(self.full, ttl, rng["priming"])
        self.q_outage, self.q_outage_refetch = resolver_rates(self.full, ttl, rng["priming"], pooled=False)
        traffic = [(f.at, f.at + f.for_, f.factor) for f in scenario.faults if isinstance(f, m.Traffic)]
        self.session_requests = sessions.requests(self.full, self.end, rng["arrivals"], traffic, self.shape)
        self.session_outcome: sessions.Outcome | None = None
        self.session_fetches = np.empty(0)  # authoritative queries of the resolvers followed with them
        # The span in which they were followed one by one (sim.fast.lookups.follow; those fetches are in it).
        self.session_window = (0.0, math.inf)
        self._opens: np.ndarray | None = None
        self._cname_out = np.empty(0)  # per resolver, when its service record ran out in a dns_down
        cohorts = self.pop.cohorts
        self.attempts = np.array([c.attempts for c in cohorts])[self.pop.cohort]
        self.timeout = np.array([c.timeout for c in cohorts])[self.pop.cohort]
        # A blackholed balancer makes each client wait out its timeouts before a failure is known.
        self.waits = self.ctl.mode == "blackhole"
        self.cost = self.attempts * self.timeout if self.waits else np.zeros(self.pop.size)
        # Per pooled client, its first request after an address move (set with the resets).
        self._after_move = np.full(self.pop.size, np.nan)
        # First attempts a retired node refused and a retry rescued (set with the churn spans).
        self._churn_rescued = targets.OneByOne.none()
        # The active's node lists under churn behind a name, for the clients sim.fast.lookups follows.
        self._nodes: churn.Replacements | None = None
        # And every resolver's fetches of the nodes' record (sim.fast.churn.resolver_cycles).
        self._node_fetches: churn.Cycles | None = None
        # Clients followed request by request under churn (sim.fast.churn_requests; None: no churn).
        self._churn_followed: churn_requests.Followed | None = None
        # Under node churn and a blackholing fault, the churn's spans within each client's window
        # (who, lo, hi, share): a window request there meets retired nodes only, refused at once.
        self._churn_inside: list[tuple[np.ndarray, ...]] = []
        # Under node churn and a blackhole, the clients that count its requests one by one (`_hole_window`).
        self._hole_followed = np.zeros(self.pop.size, dtype=bool)
        # How many of Window.extra are other faults' spans (the rest are the churn's; None: all).
        self._fault_spans: int | None = None
        # Per second, the requests offered to the balancers and those they shed (set with the counts).
        self._offered_shed = (np.zeros(0), np.zeros(0))
        # Node scaling behind a name followed answer by answer (sim.fast.scaling.held_shares): who
        # holds which node (clients with a stub cache or pooled connections), each node's shed share.
        self._node_sheds: tuple[scaling.Held, np.ndarray] | None = None

    def run(self) -> ReplicationOutput:
        window = self._churn(self._extra_windows(self._window()))
        window, dead, followed = self._dead_requests(window)
        dead, rescued = self._rescue(window, dead)
        dead = self._session_failures(window, dead)
        backends = self._backends(window)
        failed, first_fail, losses = self._backend_losses(dead, backends)
        recovery = self._recovery(window, failed.count, first_fail, followed, backends, rescued)
        recovery = self._resets(window, recovery)
        moved = self._moves(window, recovery, rescued)
        # As in the model, a request is counted when it ends: one still waiting out its
        # timeouts when the run ends is not counted at all.
        ends_in_run = failed.issued + self._spent(failed) <= self.end
        timeline, ok = self._timeline(window, recovery, failed, ends_in_run, backends, losses, rescued)
        recovery = self._balancer_sheds(recovery)
        clients = self._clients(recovery, moved)
        metrics = self._metrics(timeline, clients, ok, backends, rescued)
        metrics["changed_at"] = self.ctl.changed_at if moved is not None and self.ctl.changed_at < self.end else math.nan
        return ReplicationOutput(metrics, clients, timeline, None if moved is None else moved.table)

    # -- the dead balancer ------------------------------------------------------------

    def _window(self) -> Window:
        """Per client: until when its requests go to the dead balancer (`until`), and the
        request that first reaches a live one when the failover brings it (`reach`)."""
        ctl, pop, shape, published = self.ctl, self.pop, self.shape, self.published
        n = pop.size
        fault = ctl.fault_at if ctl.fault_at < self.end else math.inf
        outage = (fault, min(ctl.fault_end, self.end))
        hits = np.zeros(n, dtype=np.int64)
        mass = None
        outages = [f for f in self.sc.faults if isinstance(f, m.DnsDown) and f.at < self.end]
        if outages and not balancer_faults(self.sc):
            return self._dns_window(outages[0])
        # With a balancer fault too, every client is followed request by request and meets the
        # outage in its lookups (sim.fast.population.outage_followed): the window is the fault's.
        changed = ctl.changed_at < self.end
        # A change made while the old target serves (planned): connections stay open
        # through it, and resolvers see the usual queries, not the outage's.
        planned = changed and ctl.changed_at < fault
        pool_switch = pool_drain = None
        if not (math.isfinite(fault) or changed):
            reach = until = np.full(n, np.inf)
        elif published.changes_dns:
            known = None if planned or not math.isfinite(fault) else \
            self._pooled_resolvers(pooled_fault.Fault(fault, ctl.fault_end, ctl.mode == "blackhole"), ctl.effective_at)[0]
            if planned:
                known = self._primed_past(ctl.effective_at)
            reach, until, hits, mass, opens = switch_times(
                self.sc, self.full, shape, ctl.effective_at, self.q_refetch if planned else self.q_outage_refetch, outage,
                self.rng["dns"], published.record_ttl, published.chain_ttl, known,
            )
            self._opens = opens
            if self.session_requests is not None:
                hits[self.session_requests.clients] = 0  # followed request by request (sim.fast.sessions)
            if planned:
                pool_drain = self._pooled_switches(opens)
                pool_switch = None if pool_drain is None else pool_drain.switch
        else:
            until = np.full(n, ctl.effective_at)
            reach = np.full(n, np.inf)  # drawn after the window
        start = np.full(n, fault if math.isfinite(fault) else self.end)
        back = np.maximum(np.minimum(np.minimum(until, ctl.fault_end), self.end), start)
        if mass is None:
            mass = shape.measure(start, back)
        # Queries run at the outage rate while most clients' paths are dead.
        busy = (fault, float(np.median(back))) if math.isfinite(fault) else (math.inf, math.inf)
        return Window(fault, start, back, until, reach, hits, mass, busy, pooled=pool_switch, pooled_drain=pool_drain)

    def _primed_past(self, at: float) -> np.ndarray | None:
        """Per resolver with pooled clients, the expiry of the answer it holds at `at` (a planned
        change's propagation), followed from time 0: primed as the model primes it (at its
        clients' request rates, pooled or not: sim.fast.pooled_fault.priming_rates), then
        refetched at its first query after each expiry (queries at the engine's refetch rate,
        one per connection opened). NaN: drawn at `at` from steady state (the other resolvers,
        farms, prefetching ones). Drawn at `at` at the refetch rate, a resolver behind pooled
        clients whose connections rarely open (keepalive 1 h) held no answer there, where the
        model's held its primed one: every pooled client reached the new balancer at the
        switch-off, and with TTLs stretched to 6 min 100 failed against the model's 1,359."""
        pop, rng = self.full, self.rng["priming"]
        ttl = self.sc.dns.service_ttl if self.published.record_ttl is None else self.published.record_ttl
        pooled_ = np.zeros(len(pop.resolver_group), dtype=bool)
        for cohort in pop.cohorts:
            # Connections with an age limit reopen within it, and their resolvers' answers are
            # drawn from steady state at the change (tests/fast/test_pooled_planned.py); with
            # none a connection may never reopen, and the resolver keeps what it was primed with.
            if cohort.reuse.keepalive > 0 and not math.isfinite(cohort.reuse.max_age) and not cohort.followed \
                    and cohort.stub.kind != "forever":
                pooled_[pop.resolver[cohort.members]] = True
        setups = pop.group_setups
        plain = np.array([not setups or (setups[g].farm.caches == 1 and not setups[g].prefetch)
                          for g in range(len(pop.group_names))], dtype=bool)[pop.resolver_group]
        mine = np.flatnonzero(pooled_ & plain)
        if len(mine) == 0:
            return None
        t = resolver_expiry(pop, ttl, pooled_fault.priming_rates(pop, self.sc.dns.service_ttl, rng), 0.0, rng)[mine]
        out = np.full(len(pop.resolver_group), np.nan)
        q, group = self.q_refetch[mine], pop.resolver_group[mine]
        todo = np.flatnonzero(t <= at)
        for _ in range(100_000):
            if len(todo) == 0:
                break
            fetch = self.shape.next_after(t[todo], q[todo], rng)
            t[todo] = np.where(fetch < at, fetch, at)  # none before `at`: it holds nothing there
            got = todo[fetch < at]
            for g in np.unique(group[got]):
                sel = got[group[got] == g]
                t[sel] += pop.group_policies[g].lifetimes(ttl, rng, len(sel))
            todo = got[t[got] <= at]
        out[mine] = t
        return out

    def _pooled_resolvers(self, met: pooled_fault.Fault, at: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The expiry at `at` (the change's propagation, or a dns_down's start) of the answer
        held by each resolver of pooled clients, followed from time 0 through the balancer
        fault or DNS outage `met` (sim.fast.pooled_fault; NaN: drawn from steady state), and
        per client its first failed lookup in the outage (NaN: not followed there)."""
        if not (met.start < at < self.end or (math.isinf(met.start) and at < self.end)):
            return None, None
        dns, published = self.sc.dns, self.published
        record_ttl = dns.service_ttl if published.record_ttl is None else published.record_ttl
        return pooled_fault.old_expiry(self.full, self.shape, met, at, dns.service_ttl,
                                       (record_ttl, published.chain_ttl), self.rng["dns"])

    def _pooled_outage(self, start: np.ndarray, opens: np.ndarray, fails: np.ndarray | None, lo: float,
                       hi: float) -> tuple[np.ndarray, np.ndarray]:
        """A dns_down: a pooled client fails from its first request that opens a connection
        once its resolver's answer ran out (`opens`), not at its first request then: that
        request as followed from time 0 (`fails`, counted one by one: the window's requests
        after it are Poisson), or else from the moment after which it is the first
        (sim.fast.pooled_fault.outage_starts). Clients followed request by request meet the
        outage in their lookups (sim.fast.lookups)."""
        start, hits = start.copy(), np.zeros(len(start), dtype=np.int64)
        ttl = self.published.answer_ttl
        for cohort in self.pop.cohorts:
            if cohort.reuse.keepalive <= 0 or cohort.followed or len(cohort.members) == 0:
                continue
            idx = cohort.members
            got = np.full(len(idx), np.nan) if fails is None else fails[idx]
            mine = ~np.isnan(got)
            start[idx[mine]] = np.minimum(got[mine], hi)
            hits[idx[mine]] = got[mine] < hi
            rest = idx[~mine]
            if len(rest):
                stub = cohort.stub.residuals(ttl, self.rng["dns"], len(rest)) + lo
                start[rest] = pooled_fault.outage_starts(cohort, self.shape, lo, hi, opens[rest], stub, self.rng["dns"])
        return start, hits

    def _pooled_switches(self, opens: np.ndarray) -> pooled.Drain | None:
        """Per client with pooled connections (and a stub that ever lets go), its first request
        on a connection opened with the new record, its last to the old target and its idle
        gaps between (sim.fast.pooled.Drain); NaN for the others. None: no such client. Clients followed request by request keep their connections there
        (sim.fast.lookups)."""
        pop, published = self.pop, self.published
        cohorts = [c for c in pop.cohorts
                   if c.reuse.keepalive > 0 and c.stub.kind != "forever" and len(c.members) and not c.followed]
        if not cohorts:
            return None
        out, before, idle = np.full(pop.size, np.nan), np.full(pop.size, np.nan), np.zeros(pop.size)
        who, when = [], []
        ttl = published.answer_ttl
        for cohort in cohorts:
            idx = cohort.members
            stub = cohort.stub.residuals(ttl, self.rng["dns"], len(idx)) + self.ctl.changed_at
            got = pooled.switches(cohort, self.shape, self.ctl.changed_at, opens[idx], stub, self.rng["dns"])
            out[idx], before[idx], idle[idx] = got.switch, got.last, got.idle
            who.append(idx[got.opened[0]])
            when.append(got.opened[1])
        return pooled.Drain(out, before, idle, (np.concatenate(who), np.concatenate(when)))

    def _extra_windows(self, window: Window) -> Window:
        """The spans of the balancer faults after the active's first (`Window.extra`).
        A client's requests leave the active at its switch (`until`: the last expiry of its
        old answer, or the address's move; a planned change's too) and go to the standby from
        then on. Clients followed request by request meet every fault in their requests
        (sim.fast.lookups): no span of theirs here."""
        n, end = self.pop.size, self.end
        faults = sorted((f for _, f in balancer_faults(self.sc)), key=lambda f: f.at)
        first = next((f for f in faults if f.target == self.sc.active.name), None)
        others = [f for f in faults if f is not first and f.at < end]
        if not others:
            return window
        changed = window.faulted or self.ctl.changed_at < end
        until = window.until if changed else np.full(n, np.inf)
        followed = np.zeros(n, bool)
        if self.session_requests is not None:
            followed[self.session_requests.clients] = True
        spans = []
        for f in others:
            a, b = f.at, min(end, math.inf if f.for_ is None else f.at + f.for_)
            if f.target == self.sc.active.name:
                lo, hi = np.full(n, a), np.maximum(np.minimum(until, b), a)
            else:
                lo, hi = np.minimum(np.maximum(until, a), b), np.full(n, b)
            spans.append(Span.of(lo, np.where(followed, lo, hi)))
        return replace(window, extra=tuple(spans))

    def _churn(self, window: Window) -> Window:
        """The spans in which the active balancer's retired nodes refuse a client's requests
        (sim.fast.churn), and the requests of the clients followed one by one there
        (sim.fast.churn_requests): node churn where the service name resolves to the nodes,
        until the balancer's refusing fault (then every node refuses: the window), or around
        its window if the fault ends or blackholes (then the churn's spans within the window
        mark its requests refused at once, `_refused_at_once`), and around the other balancer
        faults' spans. Behind static addresses (the balancer's front) churn changes nothing,
        as in the model."""
        spec = self.sc.active
        if self.published.record == "addresses" or spec.churn is None:
            return window
        published, pop = self.published, self.pop
        reps = churn.replacements(spec.nodes, spec.churn, spec.drain, self.end, self.rng["control"])
        self._nodes = reps
        # The record that changes is the balancer's A records: behind a CNAME, the chain's TTL.
        node_ttl = published.record_ttl if published.chain_ttl is None else published.chain_ttl
        asks = _churn_queries(pop, node_ttl)
        move = self._churn_move(window)
        if move is not None:
            reps = reps.with_target()
        outage = (window.fault, min(window.fault + self._dns_outage_for(), self.end)) if window.dns else None
        cycles = churn.resolver_cycles(pop, self.shape, reps, node_ttl, self.q, asks, self.rng["dns"], move, outage)
        self._node_fetches = cycles
        # A blackholing fault: a retired node refuses at once where a live one times out, so the
        # churn goes on through the window too, and its spans there split the window's requests.
        blackhole = self.waits and window.faulted and not window.dns
        if published.chain_ttl is not None and any(c.stub.kind == "honor" and churn.by_answer(c, blackhole)
                                                   and len(c.members) for c in pop.cohorts):
            # An honouring stub lets go at the CNAME's expiry too, and takes the list one on.
            cycles = replace(cycles, cname=churn.cname_fetches(pop, self.shape, published.record_ttl, self.q, asks,
                                                               self.rng["dns"], outage))
        if outage is not None and published.chain_ttl is None:
            window = self._outage_from_cycles(window, cycles, outage[0])
        # A DNS outage is no balancer fault: the nodes serve on through it. A balancer fault with
        # an end: every node refuses in each client's window, the churn goes on around it.
        gap = window.dns or (window.faulted and self.ctl.fault_end < self.end)
        gap = gap or blackhole
        until = window.fault if window.faulted and not gap else math.inf
        out = churn.spans(pop, self.shape, reps, cycles, until, self.rng["dns"], blackhole)
        faults = self.sc.fault_times(published.changes_dns)
        # The other balancer faults' spans (the active's later ones, the standby's): every node
        # refuses there too, and the engine counts those requests (`_extra_windows`).
        more = tuple(_per_client(span, self.pop.size) for span in window.extra) if gap else ()
        # The clients followed request by request go through the window too (counted there).
        cname_out = self._cname_out if window.dns and published.chain_ttl is not None else None
        through = churn_requests.Gap(self._pooled_gap(window), window.back, outage, cname_out, more) if gap else None
        if blackhole:
            # The clients followed request by request count the blackhole's requests themselves
            # (timed out, or refused at once by a retired node; `_hole_window`): no window there.
            never = np.full(pop.size, np.inf)
            through = churn_requests.Gap(never, never, None, None, more, (window.fault, self.ctl.fault_end))
        followed = churn_requests.follow(pop, self.shape, reps, cycles, node_ttl, published.rotate, until,
                                         faults[0] if faults else math.inf, self.rng["dns"], through)
        self._churn_followed = followed
        self._churn_until = min(until, self.end)
        if followed.unresolved_at is not None:
            window = self._pooled_dropped(window, followed.unresolved_at)
        failing = self._churn_failing(window, out, followed, gap, blackhole, more)
        extra = tuple(Span(who, lo, hi, share) for who, lo, hi, share in failing if len(who))
        self._fault_spans = len(window.extra)
        window = replace(window, extra=window.extra + extra)
        return self._hole_window(window) if blackhole else window


    def _churn_failing(self, window: Window, out: churn.Spans, followed: churn_requests.Followed, gap: bool,
                       blackhole: bool, more: tuple) -> list[tuple[np.ndarray, ...]]:
        """The churn's spans of failing requests per client, and its rescued tries (kept for the
        targets table), with the window's span (and the other faults') left out where the window
        counts those requests."""
        r_owner, r_at, r_count = out.rescued_owner, out.rescued_at, out.rescued_count
        # Session clients (rate 0 here) are followed by sim.fast.lookups: no span of theirs.
        failing = [part for part in (tuple(x[keep] for x in entry) for entry in out.failing
                                     for keep in [self.pop.rate[entry[0]] > 0]) if len(part[0])]
        if gap:
            # A request in the client's span of failed resolutions (or of the balancer's fault)
            # meets no live node: the window counts it, so the churn's spans and rescues leave
            # that span out.
            if blackhole:
                # Past its switch (`until`) a client's requests go to the standby: the churn's
                # spans end there (with an alias the resolvers' old lists, drawn apart, may
                # outlast it: alias_apex, stretching resolvers, 4 replications, failed 27,600
                # against the model's 24,300 without this cut).
                never = np.full(self.pop.size, np.inf)
                failing = _cut(failing, window.until, never)
                keep = r_at < window.until[r_owner]
                r_owner, r_at, r_count = r_owner[keep], r_at[keep], r_count[keep]
                self._churn_inside = _within(failing, window.start, window.back)
            for start, back in ((window.start, window.back), *more):
                keep = ~((r_at >= start[r_owner]) & (r_at < back[r_owner]))
                r_owner, r_at, r_count = r_owner[keep], r_at[keep], r_count[keep]
                failing = _cut(failing, start, back)
        self._churn_rescued = targets.OneByOne(np.concatenate([r_owner, followed.rescued_owner]),
                                               np.concatenate([r_at, followed.rescued_at]),
                                               np.concatenate([r_count, followed.rescued_count]))
        return failing

    def _hole_window(self, window: Window) -> Window:
        """Under node churn and the churned balancer's blackhole, the clients followed request
        by request (sim.fast.churn_requests; a retry's cohorts too, sim.fast.churn.by_answer)
        count their requests through it: each try at one of its live nodes waits out the
        client's timeout, one at a retired node is refused at once, and a retry a timeout
        later meets the nodes and the fault of its moment (with one window request drawn as
        Poisson for all, 10,300 timeouts against the model's 8,610). Their window is empty."""
        mine = np.zeros(self.pop.size, dtype=bool)
        for c in self.pop.cohorts:
            mine[c.members] = not churn.by_answer(c, True) and c.rate > 0 and not c.followed
        self._hole_followed = mine
        if not mine.any():
            return window
        start = np.where(mine, window.back, window.start)
        hits = np.where(mine, 0, window.hits)
        return replace(window, start=start, hits=hits, mass=self.shape.measure(start, window.back))

    def _outage_from_cycles(self, window: Window, cycles: churn.Cycles, lo: float) -> Window:
        """Under churn through a DNS outage, a stub that never outlives its resolver's answer
        and is followed request by request (`cap`) fails to resolve from its resolver's expiry
        of the answer held at the outage's start in the churn's own fetches (`cycles`), not
        from one drawn apart (sim.fast.dns.switch_times): the follower serves the held list
        until then, so a window drawn apart left a client whose resolver ran out early
        unaffected through the outage (its failed lookups counted nowhere) and failed one whose
        resolver held on (with sim.fast.churn_requests' late first success after the window:
        recovery mean 55.4 s against the model's 46.1 s, clients affected 268 against 285,
        `cap` stubs, three nodes, a retry, `alias_apex`, 24 replications; now 46.6 s, 279).
        Behind a CNAME the lookup fails once the CNAME runs out, drawn as before (`_cname_out`)."""
        held = cycles.held_until(len(self.pop.resolver_group), lo)[self.pop.resolver]
        mine = np.zeros(self.pop.size, dtype=bool)
        for c in self.pop.cohorts:
            mine[c.members] = (not churn.by_answer(c) and c.stub.kind in WITHIN_TTL and c.grace == 0
                               and c.reuse.keepalive <= 0 and not c.followed)
        mine &= ~np.isnan(held)
        if not mine.any():
            return window
        start, hits = window.start.copy(), window.hits.copy()
        # As _dns_window for such stubs: Poisson from the expiry (memoryless), none counted apart.
        start[mine] = np.minimum(held[mine], window.back[mine])
        hits[mine] = 0
        return replace(window, start=start, hits=hits, mass=self.shape.measure(start, window.back))

    def _pooled(self) -> np.ndarray:
        """Per client: has it pooled connections (and its requests are not followed elsewhere)?"""
        out = np.zeros(self.pop.size, dtype=bool)
        for c in self.pop.cohorts:
            out[c.members] = c.reuse.keepalive > 0 and not c.followed
        return out

    def _pooled_gap(self, window: Window) -> np.ndarray:
        """Under churn through a DNS outage, the pooled clients' windows are left to the request
        follower (sim.fast.churn_requests): empty there, so it follows them through the outage."""
        if not window.dns:
            return window.start
        return np.where(self._pooled(), window.back, window.start)

    def _pooled_dropped(self, window: Window, unresolved_at: np.ndarray) -> Window:
        """Under churn through a DNS outage, a pooled client followed request by request
        fails to resolve from its first lookup in vain (its connection dropped by a retired
        node, its age or an idle gap; sim.fast.churn_requests) until the outage ends: its
        window starts at that request (counted one by one, the rest Poisson). Those not
        followed through the outage keep the window of their connection's own reopening
        (`_pooled_outage`)."""
        who = np.flatnonzero(self._pooled() & ~np.isnan(unresolved_at))
        if len(who) == 0:
            return window
        start, hits = window.start.copy(), window.hits.copy()
        got = unresolved_at[who]
        start[who] = np.minimum(got, window.back[who])
        hits[who] = got < window.back[who]
        return replace(window, start=start, hits=hits, mass=self.shape.measure(start, window.back))

    def _dns_outage_for(self) -> float:
        return next(f.for_ for f in self.sc.faults if isinstance(f, m.DnsDown) and f.at < self.end)

    def _churn_move(self, window: Window) -> churn.Move | None:
        """A DNS change away from the churned balancer, planned or the failover's
        (sim.fast.churn.Move): per resolver, from when it answers the new target."""
        ctl, published = self.ctl, self.published
        if not (published.changes_dns and ctl.changed_at < self.end):
            return None
        n_res = len(self.pop.resolver_group)
        at = ctl.effective_at
        if published.chain_ttl is None:
            # The changed record is the churned one: the answer a resolver holds at the change
            # lasts until it expires, when its clients switch (drawn with them, `opens`).
            hold = None
            if self._opens is not None:
                hold = np.full(n_res, at)
                np.maximum.at(hold, self.full.resolver, self._opens)
            return churn.Move(np.full(n_res, at), cut=False, hold=hold)
        # Behind a CNAME: when the resolver answers the new value, as the switch is drawn
        # (sim.fast.dns.switch_times, coupled to the stubs that hold answers).
        opens = np.full(n_res, np.inf)
        if self._opens is not None:
            np.minimum.at(opens, self.full.resolver, self._opens)
        return churn.Move(opens, cut=True)

    def _dns_window(self, outage: m.DnsDown) -> Window:
        """Per client, the span in which its requests fail to resolve while our authoritative
        servers are down: from its first resolution after its resolver's answer expired (as
        a client meets the new record after a DNS change, sim.fast.dns.switch_times, with the
        change at the outage's start) until the outage ends; a failed resolution leaves the
        stub empty, so every request in between tries again and fails (as in the model)."""
        n, published = self.pop.size, self.published
        lo, hi = outage.at, min(outage.at + outage.for_, self.end)
        known, fails = self._pooled_resolvers(pooled_fault.Fault(math.inf, math.inf, False, (lo, hi)), lo)
        _, last, _, _, opens = switch_times(self.sc, self.full, self.shape, lo, self.q_refetch, (lo, hi),
                                            self.rng["dns"], published.record_ttl, published.chain_ttl, known)
        start, hits = self._pooled_outage(np.minimum(np.maximum(last, lo), hi), opens, fails, lo, hi)
        self._cname_out = np.full(len(self.full.resolver_group), np.inf)
        np.minimum.at(self._cname_out, self.full.resolver, opens)
        back = np.full(n, hi)
        never = np.full(n, np.inf)  # no switch: recovery is the first request after the outage
        return Window(lo, start, back, never, never, hits, self.shape.measure(start, back), (math.inf, math.inf),
                      dns=True)

    def _dead_requests(self, window: Window) -> tuple[Window, Failed, np.ndarray | None]:
        """Requests issued while the client's path is dead: how many, and when. With one
        address per balancer, followed request by request (sim.fast.multia), which also gives
        each client's recovery (the third item; None otherwise)."""
        pop, shape, arrivals = self.pop, self.shape, self.rng["arrivals"]
        n, rate = pop.size, pop.rate
        count = window.hits + arrivals.poisson(rate * window.mass) if window.faulted else np.zeros(n, np.int64)
        owner = np.repeat(np.arange(n), count)
        issued = shape.uniform_between(window.start[owner], window.back[owner], arrivals.random(len(owner)))
        # Under node churn and a blackhole, what each request waits before it fails: a try to a
        # live node times out, a retired one refuses at once (the churn's, in and out of the window).
        spent = None
        if self.waits and self._fault_spans is not None:
            spent = np.where(self._refused_at_once(owner, issued), 0.0, self.cost[owner])
        for k_span, span in enumerate(window.extra):
            more = arrivals.poisson(rate[span.who] * span.share * shape.measure(span.lo, span.hi))
            k = np.repeat(np.arange(len(span.who)), more)
            owner = np.concatenate([owner, span.who[k]])
            issued = np.concatenate([issued, shape.uniform_between(span.lo[k], span.hi[k], arrivals.random(len(k)))])
            count = count + np.bincount(span.who, weights=more, minlength=n).astype(np.int64)
            if spent is not None:
                churned = self._fault_spans is not None and k_span >= self._fault_spans
                spent = np.concatenate([spent, np.zeros(len(k)) if churned else self.cost[span.who[k]]])
        followed = self._churn_followed
        if followed is not None and len(followed.failed_owner):
            owner = np.concatenate([owner, followed.failed_owner])
            issued = np.concatenate([issued, followed.failed_at])
            count = count + np.bincount(followed.failed_owner, minlength=n)
            if spent is not None:
                waited = followed.failed_spent  # through a blackhole, the tries' timeouts
                spent = np.concatenate([spent, np.zeros(len(followed.failed_owner)) if waited is None else waited])
        if not (self.published.per_balancer and window.faulted):
            return window, Failed(count, owner, issued, spent), None
        owner, issued, recovered = multia.follow(
            pop, shape, window.fault, window.back, self.published.answer_ttl, self.published.rotate, arrivals)
        # No window: the failures followed are all there is; and clients re-resolve once
        # after a failure, not all outage long.
        window = replace(window, back=window.start.copy(), busy=(window.fault, window.fault))
        return window, Failed(np.bincount(owner, minlength=n), owner, issued), recovered

    def _refused_at_once(self, owner: np.ndarray, issued: np.ndarray) -> np.ndarray:
        """Of window requests under a blackhole, those whose every try meets a retired node (a
        churn span within the window, each request with its chance `share`)."""
        out = np.zeros(len(owner), dtype=bool)
        n = self.pop.size
        for who, lo, hi, share in self._churn_inside:
            a, b, c = np.full(n, np.inf), np.full(n, np.inf), np.zeros(n)
            a[who], b[who], c[who] = lo, hi, share
            inside = (issued >= a[owner]) & (issued < b[owner])
            out |= inside & (self.rng["arrivals"].random(len(owner)) < c[owner])
        return out

    def _session_failures(self, window: Window, dead: Failed) -> Failed:
        """The session clients followed request by request through the fault and the change
        (sim.fast.sessions): their failed requests join the others."""
        req = self.session_requests
        if req is None:
            return dead
        ctl, published = self.ctl, self.published
        record = published.answer_ttl
        if published.changes_dns:
            record = self.sc.dns.service_ttl if published.record_ttl is None else published.record_ttl
        opens = None
        if self._opens is not None:
            opens = np.full(len(self.full.resolver_group), np.inf)
            opens[self.full.resolver] = self._opens  # the same for every client of a resolver
        outage = tuple((f.at, f.at + f.for_) for f in self.sc.faults if isinstance(f, m.DnsDown))
        plan = sessions.Plan(self._balancers_down(), published.changes_dns, ctl.effective_at, ctl.changed_at, opens,
                             (record, published.chain_ttl if published.changes_dns else None), outage,
                             published.per_balancer, published.rotate, self._nodes, self._node_fetches)
        out, self.session_fetches, self.session_window = lookups.follow(req, self.full, plan, self.rng["arrivals"])
        self.session_outcome = out
        owner, issued = req.owner[out.failed], req.times[out.failed]
        # A followed request's own wait: its blackholed tries' timeouts (a reset costs none).
        spent = np.concatenate([self._spent(dead), out.done[out.failed] - issued])
        return Failed(dead.count + np.bincount(owner, minlength=self.pop.size),
                      np.concatenate([dead.owner, owner]), np.concatenate([dead.issued, issued]), spent)

    def _spent(self, failed: Failed) -> np.ndarray:
        """Per failed request, the wait before its failure is known (Failed.spent)."""
        return self.cost[failed.owner] if failed.spent is None else failed.spent

    def _balancers_down(self) -> tuple[tuple[int, float, float, bool], ...]:
        """The balancer faults as the follower meets them (sessions.Plan.down): each span of
        the active (the old target) and of the standby (the new one), and whether it blackholes."""
        sc, out = self.sc, []
        for _, f in balancer_faults(sc):
            if f.target in (sc.active.name, sc.standby.name) and f.at < self.end:
                end = math.inf if f.for_ is None else f.at + f.for_
                target = lookups.OLD if f.target == sc.active.name else lookups.NEW
                out.append((target, f.at, end, f.mode == "blackhole"))
        return tuple(out)

    def _session_passed(self, attempts: int | None = None) -> np.ndarray:
        """Per second, the session clients' requests that got past the balancers (of clients
        with `attempts` tries, or all)."""
        req, out = self.session_requests, self.session_outcome
        if req is None or out is None:
            return np.zeros(self.seconds, dtype=np.int64)
        # As in the model, a request still waiting out a blackholed try when the run ends is not counted.
        mask = ~out.failed & (out.done <= self.end)
        if attempts is not None:
            mask = mask & (self.attempts[req.owner] == attempts)
        return sessions.per_second(req.times[mask], self.seconds)

    def _session_passed_new(self) -> np.ndarray:
        """Per second, the followed clients' requests past the balancers whose last try went to
        the new target (`_session_passed`'s, on the standby)."""
        req, out = self.session_requests, self.session_outcome
        if req is None or out is None:
            return np.zeros(self.seconds, dtype=np.int64)
        # A try to the old target after the first to the new one (a retry): the last went there.
        mask = ~out.failed & (out.done <= self.end) & out.any_new & ~(out.old_at > out.new_at)
        return sessions.per_second(req.times[mask], self.seconds)

    def _next_request(self, who: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Each client's first request after `t`: drawn for Poisson clients, looked up for
        session clients."""
        out = self.shape.next_after(t, self.pop.rate[who], self.rng["arrivals"])
        req = self.session_requests
        if req is not None:
            lane = self._lanes()[who]
            mine = lane >= 0
            out[mine] = req.next_after(lane[mine], np.asarray(t, dtype=float)[mine])
        return out

    def _lanes(self) -> np.ndarray:
        """Per client, its lane in the session requests (-1: a Poisson client)."""
        lanes = np.full(self.pop.size, -1, dtype=np.int64)
        if self.session_requests is not None:
            lanes[self.session_requests.clients] = np.arange(len(self.session_requests.clients))
        return lanes

    def _rescue(self, window: Window, dead: Failed) -> tuple[Failed, Rescued]:
        """A blackholed attempt is retried after the client's timeout; a retry that starts
        once the path is back succeeds, late (as in the model)."""
        if not self.waits:
            return dead, Rescued.none()
        owner, issued = dead.owner, dead.issued
        timeout = self.timeout[owner]
        spare = (self.attempts[owner] - 1) * timeout
        saved = issued >= window.back[owner] - spare
        if dead.spent is not None:
            saved &= dead.spent > 0  # refused at once by retired nodes (node churn): no wait, no retry later
        saved &= ~self._hole_followed[owner]  # their retries followed one by one (sim.fast.churn_requests)
        tries = np.ceil((window.back[owner][saved] - issued[saved]) / timeout[saved])
        rescued = Rescued(owner[saved], issued[saved], np.maximum(tries, 1.0) * timeout[saved])
        count = dead.count - np.bincount(owner[saved], minlength=self.pop.size)
        spent = None if dead.spent is None else dead.spent[~saved]
        return Failed(count, owner[~saved], issued[~saved], spent), rescued

    # -- the backend fleet ---------------------------------------------------------------

    def _backends(self, window: Window) -> Backends:
        """The fleet per second (dead instances still called healthy, full queues,
        autoscaling), loaded by what gets past the balancers; per client class of
        attempts, the share of requests that fail at the backends (its own attempts retry
        a refused or shed one) and the part of those shed."""
        out, mean = self._fleet(window)
        share = out.share
        # Successful requests that first waited out a blackholed instance's connect timeout.
        detour = np.where(share < 1, (out.first_dead - share) / np.maximum(1 - share, 1e-12), 0.0) \
            if out.mode == "blackhole" else np.zeros(self.seconds)
        classes, attempt_class = np.unique(self.attempts, return_inverse=True)
        finals = [out.final(int(a)) for a in classes]
        return Backends(out, mean, detour, attempt_class, np.array([f for f, _ in finals]),
                        np.array([sh for _, sh in finals]))

    def _fleet(self, window: Window) -> tuple[fleet.Fleet, np.ndarray]:
        """The fleet's per-second state, given the requests that get past the balancers
        (every client's intensity, less its dead-balancer window), per client attempts; and
        per second the share of those requests that then fail at the backends."""
        pop, g = self.pop, self.shape.g[: self.seconds]
        load: dict[int, np.ndarray] = {}
        for a in np.unique(self.attempts):
            mask = self.attempts == a
            alive = pop.rate[mask].sum() * g
            if window.faulted:
                alive = alive - _window_mass(pop.rate[mask], window.start[mask], window.back[mask], self.seconds) * g
            for span in window.extra:
                mine = mask[span.who]
                weight = np.broadcast_to(span.share, span.who.shape)[mine]
                alive = alive - _window_mass(pop.rate[span.who[mine]] * weight, span.lo[mine], span.hi[mine],
                                             self.seconds) * g
            followed = self._churn_followed
            if followed is not None and len(followed.failed_owner):
                alive = alive - _per_second(followed.failed_at[mask[followed.failed_owner]], self.seconds)
            load[int(a)] = np.maximum(alive, 0.0) + self._session_passed(int(a))
        out = fleet.simulate(self.sc, self.seconds, load, self.rng["faults"], self.rng["control"])
        total = sum(load.values())
        lost = sum(v * out.final(a)[0] for a, v in load.items())
        return out, np.divide(lost, total, out=np.zeros(self.seconds), where=total > 0)

    def _backend_losses(self, dead: Failed, backends: Backends) -> tuple[Failed, np.ndarray, BackendLosses]:
        """Every failed request (the dead balancer's, then the backends'), and per client when
        its first failure is known."""
        n = self.pop.size
        # As in the model, a client's failures count from the first fault on (a retired node
        # refuses requests before any); the timeline has them all.
        faults = self.sc.fault_times(self.published.changes_dns)
        ends = dead.issued + self._spent(dead)
        known = ends >= (faults[0] if faults else math.inf)
        first_fail = np.full(n, np.inf)
        np.minimum.at(first_fail, dead.owner[known], ends[known])
        if not known.all():
            dead = Failed(np.bincount(dead.owner[known], minlength=n), dead.owner, dead.issued, dead.spent)
        if not (backends.fail.any() or backends.fleet.kills):
            return dead, first_fail, BackendLosses.none(self.seconds)
        losses = self._backend_requests(backends)
        who, end = losses.who, losses.end
        # As in the model, a client's failures count from the first fault on (a fleet
        # overloaded from the start fails requests before it); the timeline has them all.
        counted = end >= min((f.at for f in self.sc.faults), default=math.inf)
        count = dead.count + np.bincount(who[counted], minlength=n)
        # A blackholed instance costs the balancer's connect timeout per try (504),
        # or the client's own timeout if that is shorter (as the model).
        spent = np.zeros(n)
        if backends.fleet.mode == "blackhole":
            spent = np.minimum(self.timeout, CONNECT_TIMEOUT * (self.sc.backends.retries + 1))
        first_backend = np.full(n, np.inf)
        np.minimum.at(first_backend, who[counted], end[counted])
        first_fail = np.minimum(first_fail, first_backend + spent)
        spent = None if dead.spent is None else np.concatenate([dead.spent, self.cost[who]])
        failed = Failed(count, np.concatenate([dead.owner, who]), np.concatenate([dead.issued, losses.when]), spent)
        return failed, first_fail, losses

    def _backend_requests(self, backends: Backends) -> BackendLosses:
        """Requests that fail at the backends: those a dying instance held, and per class of
        attempts a Poisson number spread over the seconds by their share of failures."""
        whos, whens, ends = self._kill_losses(backends.fleet)
        shed = np.zeros(self.seconds, dtype=np.int64)
        g, arrivals = self.shape.g[: self.seconds], self.rng["arrivals"]
        for c in range(len(backends.fail)):
            weight = backends.fail[c] * g
            if not weight.sum() > 0:
                continue
            members = np.flatnonzero(backends.attempt_class == c)
            # Session clients at their long-run rate: their backend losses are not followed one by one.
            who = np.repeat(members, arrivals.poisson(self.full.rate[members] * weight.sum()))
            second = arrivals.choice(self.seconds, size=len(who), p=weight / weight.sum())
            # Which of them the fleet shed (the last attempt found a full queue).
            dropped = arrivals.random(len(who)) * backends.fail[c][second] < backends.shed[c][second]
            shed += np.bincount(second[dropped], minlength=self.seconds)[: self.seconds]
            whos.append(who)
            whens.append(second + arrivals.random(len(who)))
            ends.append(whens[-1])
        if not whos:
            return replace(BackendLosses.none(self.seconds), shed=shed)
        return BackendLosses(np.concatenate(whos), np.concatenate(whens), np.concatenate(ends), shed)

    def _kill_losses(self, fl: fleet.Fleet) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Requests a dying instance held (in service or waiting): lost with it, as in the
        model (a 502, or the client's timeout for a blackhole); the client's own retry, if it
        has one left, is an attempt like any other (it fails with the second's q)."""
        pop, arrivals = self.full, self.rng["arrivals"]
        whos, whens, ends = [], [], []
        holding = float(self.sc.backends.service_time.mean) + self.sc.rtt
        q = 1.0 - (1.0 - fl.share) * (1.0 - fl.block)
        for at, held in fl.kills:
            k = int(arrivals.poisson(held))
            if k == 0:
                continue
            who = arrivals.choice(pop.size, size=k, p=pop.rate / pop.rate.sum())
            s = min(int(at), self.seconds - 1)
            final = arrivals.random(k) < q[s] ** (self.attempts[who] - 1)
            whos.append(who[final])
            whens.append(np.maximum(at - arrivals.exponential(holding, int(final.sum())), 0.0))
            ends.append(np.full(int(final.sum()), at))
        return whos, whens, ends

    # -- recovery ----------------------------------------------------------------------

    def _recovery(self, window: Window, failed: np.ndarray, first_fail: np.ndarray, followed: np.ndarray | None,
                  backends: Backends, rescued: Rescued) -> Recovery:
        """The first successful request after the first failure: the client's own switch
        request (a DNS change) when it comes after, otherwise the next request once both the
        path is back and the failure is known."""
        n, rate, ctl = self.pop.size, self.pop.rate, self.ctl
        back, until, reach = window.back, window.until, window.reach
        window_end = back if window.faulted else np.full(n, -np.inf)  # no balancer fault: no window
        after = np.maximum(window_end, np.where(np.isfinite(first_fail), first_fail, back))
        next_req = self.shape.next_after(after, rate, self.rng["arrivals"])
        if self.published.changes_dns:
            # switch_times drew `reach` = inf for a client that sends nothing between its
            # switch and the end of the run; drawing its next request again here would hand
            # it a recovery it never has (never recovered: 0 against the model's 0.5 a run).
            silent = ~np.isfinite(reach) & (until < min(ctl.fault_end, self.end))
            next_req = np.where(silent, np.inf, next_req)
        by_switch = (until < ctl.fault_end) & np.isfinite(reach) & (reach >= after)
        # For a client that first fails before the window ends, its recovery past the window.
        landing = np.where(by_switch, reach, next_req)
        recovered = landing.copy() if followed is None else followed
        req, out = self.session_requests, self.session_outcome
        if req is not None and out is not None:
            mine = req.clients
            recovered[mine] = sessions.recovered(req, out, first_fail)[mine]
            reach = reach.copy()
            reach[mine] = sessions.switches(req, out, ctl.changed_at, n)[0][mine]
            next_req[mine] = reach[mine]
        if self._churn_followed is not None:
            recovered = self._before_the_window(window, first_fail, recovered)
        if backends.fail.any():
            recovered = self._past_the_backends(recovered, backends)
        if len(rescued.delay):
            # A retried request that got through after the first failure is a recovery too
            # (its finish time stands in for its issue time: latency is added later).
            done = rescued.at + rescued.delay
            late = done > first_fail[rescued.owner]
            earliest = np.full(n, np.inf)
            np.minimum.at(earliest, rescued.owner[late], done[late])
            recovered = np.minimum(recovered, earliest)
        recovered = self._past_the_extra_windows(window, recovered, landing)
        reach = np.where(np.isfinite(reach), reach, next_req)
        return Recovery(failed.copy(), first_fail, recovered, reach, np.full(n, np.inf))

    def _before_the_window(self, window: Window, first_fail: np.ndarray, recovered: np.ndarray) -> np.ndarray:
        """Under node churn a client may first fail before the balancer's fault: it recovers at
        its next request that gets through (for a client followed request by request, the one
        it was followed to), unless that falls in the fault's window (then as any client, and
        for a client followed request by request through the window's end, at its first
        request after it that gets through); so does one followed that first fails after
        a window with an end."""
        followed = self._churn_followed
        assert followed is not None
        start = window.start if window.faulted else np.full(self.pop.size, np.inf)
        recovered = recovered.copy()
        # Followed through a blackhole (`_hole_window`): the recovery they were followed to.
        mine = self._hole_followed & np.isfinite(first_fail) & (followed.first_fail == first_fail)
        recovered[mine] = followed.recovered[mine]
        if window.faulted:
            # A window with an end (a DNS outage, a balancer fault that ends): a client that
            # recovers after it does so at its first request that gets through then, which for
            # a client followed there may meet a retired node as well.
            # A client followed there to the run's end with nothing through (after_gap inf: its
            # list's nodes all retired, its resolver's answer held on) never recovers.
            late = ~np.isnan(followed.after_gap) & (first_fail < window.back) & (recovered >= window.back)
            recovered[late] = followed.after_gap[late]
            # One whose first failure comes after it, followed there: the one it was followed to.
            after = np.isfinite(first_fail) & (first_fail >= window.back) & (followed.first_fail == first_fail)
            recovered[after] = followed.recovered[after]
        # Clients sim.fast.lookups follows have their recovery from their own requests.
        early = np.isfinite(first_fail) & (first_fail < start) & (self._lanes() < 0)
        who = np.flatnonzero(early)
        if len(who) == 0:
            return recovered
        nxt = self.shape.next_after(first_fail[who], self.pop.rate[who], self.rng["arrivals"])
        mine = followed.first_fail[who] == first_fail[who]
        nxt = np.where(mine, followed.recovered[who], nxt)
        before = (nxt < start[who]) | ~np.isfinite(start[who])  # no window: inf is never recovered
        recovered[who[before]] = nxt[before]
        return recovered

    def _past_the_extra_windows(self, window: Window, recovered: np.ndarray, landing: np.ndarray) -> np.ndarray:
        """A recovery that falls in another fault's span fails too: the client recovers at its
        first request after that span (a client's spans are disjoint). The spans are in time
        order per kind (the other faults', then the churn's): pushed past a churn span, a
        recovery may land in a fault's span met before, or in the first fault's window (a
        churn span cut at the fault ends where the window starts: then `landing`, the
        client's recovery past the window), so go round until none moves, each span taking
        only the recoveries that moved since it last saw them (a recovery a thinned span let
        through keeps its coin)."""
        recovered = recovered.copy()
        seen: list[np.ndarray | None] = [None] * len(window.extra)
        for _ in range(len(window.extra) + 2):
            moved = False
            for i, span in enumerate(window.extra):
                at = recovered[span.who]
                fresh = np.ones(len(at), dtype=bool) if seen[i] is None else at != seen[i]
                if span.thinned:
                    if seen[i] is None or np.any(fresh & (at >= span.lo) & (at < span.hi)):
                        recovered = self._past_a_thinned_span(span, recovered, fresh)
                else:
                    inside = (at >= span.lo) & (at < span.hi) & fresh
                    if inside.any():
                        who = span.who[inside]
                        recovered[who] = self.shape.next_after(span.hi[inside], self.pop.rate[who],
                                                               self.rng["arrivals"])
                seen[i] = recovered[span.who]
                moved = moved or bool(np.any(seen[i] != at))
            recovered, pushed = self._past_the_window(window, recovered, landing)
            if not (moved or pushed):
                break
        return recovered

    def _past_the_window(self, window: Window, recovered: np.ndarray, landing: np.ndarray) -> tuple[np.ndarray, bool]:
        """A Poisson client's recovery inside the first fault's window, where every request
        fails, moves to its recovery past the window (`landing`: its switch request, or its
        next request after the window). Only a span can put it there: before this, a
        stub kept `forever` whose node retired before the balancer's refusing fault for
        the rest of the run recovered at its first request after the fault, its churn span
        being cut there (12% of the clients recovered, mean 36 s, against none in the
        model). Clients followed request by request (sim.fast.lookups) meet the window in
        their own requests."""
        if not window.faulted:
            return recovered, False
        inside = (recovered >= window.start) & (recovered < window.back) & (self._lanes() < 0)
        if not inside.any():
            return recovered, False
        out = recovered.copy()
        out[inside] = landing[inside]
        return out, bool(np.any(out[inside] != recovered[inside]))

    def _past_a_thinned_span(self, span: Span, recovered: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """In a span where a request fails with chance `share`, the recovery is the client's
        first request from its recovery on that gets through (a coin per request)."""
        recovered = recovered.copy()
        rate, rng = self.pop.rate, self.rng["arrivals"]
        at = recovered[span.who]
        pending = (at >= span.lo) & (at < span.hi) & fresh
        for _ in range(1000):
            pending &= rng.random(len(at)) < span.share
            if not pending.any():
                break
            at[pending] = self.shape.next_after(at[pending], rate[span.who[pending]], rng)
            pending &= at < span.hi
        recovered[span.who] = at
        return recovered

    def _balancer_sheds(self, recovery: Recovery) -> Recovery:
        """The requests a balancer endpoint shed (over its capacity in their second), each a
        client's failure as in the model (its retry, in the same second, is shed too): drawn
        per second among the clients by rate. The model's token bucket admits a second's first
        requests and sheds the rest, so a second that sheds a share of its requests sheds those
        in the last part of it, and a recovery that falls there fails."""
        offered, shed = self._offered_shed
        if not shed.any():
            return recovery
        n, rng = self.pop.size, self.rng["arrivals"]
        share = np.divide(shed, offered, out=np.zeros(len(shed)), where=offered > 0)
        faults = self.sc.fault_times(self.published.changes_dns)
        followed, poisson_shed = self._followed_sheds(offered, shed)
        # The Poisson clients' by their rate. (Drawn among all clients by the long-run rate, a
        # session client that sent nothing after the change was shed too: 300 of 300 affected
        # against the model's 284, never recovered 8.3% against 3.1%; alias_apex, 300 clients.)
        rate = self.full.rate if followed is None else self.pop.rate
        second = np.repeat(np.arange(len(shed)), poisson_shed)
        owner = rng.choice(n, size=len(second), p=rate / rate.sum()) if rate.sum() > 0 else \
            np.zeros(0, dtype=np.int64)
        at = second + 1.0 - share[second] * rng.random(len(second))
        held_first = held_count = None
        if self._node_sheds is not None:
            # A client with a stub cache meets its own node's shedding (sim.fast.scaling): its
            # failures are drawn there, the others' among them by rate as below.
            held, node_share = self._node_sheds
            stubbed = np.zeros(n, dtype=bool)
            stubbed[held.who] = True
            owner, at = owner[~stubbed[owner]], at[~stubbed[owner]]
            held_first, held_count = scaling.first_failures(held, node_share, self.shape, self.pop.rate,
                                                            faults[0] if faults else math.inf, rng)
        if followed is not None:
            req = self.session_requests
            assert req is not None
            owner, at = np.concatenate([owner, req.owner[followed]]), np.concatenate([at, req.times[followed]])
        counted = at >= (faults[0] if faults else math.inf)
        first = np.full(n, np.inf) if held_first is None else held_first.copy()
        np.minimum.at(first, owner[counted], at[counted])
        earlier = first < recovery.first_fail
        first_fail = np.where(earlier, first, recovery.first_fail)
        recovered = recovery.recovered.copy()
        who = np.flatnonzero(earlier)
        recovered[who] = self._next_request(who, first[who])
        pending = np.isfinite(recovered)
        if followed is not None:
            recovered = self._followed_recovered(followed, first_fail, earlier, recovered)
            pending &= self._lanes() < 0  # theirs are exact: the requests shed are known
        for _ in range(1000):
            sec = np.clip(recovered, 0, self.seconds - 1).astype(np.int64)
            tail = share[sec]
            if self._node_sheds is not None:
                # A client with a stub sends its requests to one node: that node's shedding.
                held, node_share = self._node_sheds
                node = held.node_at(np.arange(n), recovered, self.end)
                tail = np.where(node >= 0, node_share[sec, np.maximum(node, 0)], tail)
            pending &= np.isfinite(recovered) & (recovered - sec >= 1.0 - tail)
            if not pending.any():
                break
            who = np.flatnonzero(pending)
            recovered[who] = self._next_request(who, recovered[who])
        failed = recovery.failed + np.bincount(owner[counted], minlength=n)
        if held_count is not None:
            failed = failed + held_count
        return replace(recovery, failed=failed, first_fail=first_fail, recovered=recovered)

    def _followed_sheds(self, offered: np.ndarray, shed: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Which of the followed clients' requests past the balancers were shed (a mask over
        the session requests; None: none followed, or a client's own node sheds them under
        node scaling), and per second the shed left to the Poisson clients. A second's shed
        falls on its followed requests by their count among the requests offered."""
        req, out = self.session_requests, self.session_outcome
        if req is None or out is None or self._node_sheds is not None:
            return None, shed
        passed = ~out.failed & (out.done <= self.end)
        sec = np.minimum(req.times, self.seconds - 1).astype(np.int64)
        mine = np.bincount(sec[passed], minlength=self.seconds)[:self.seconds]
        mine = np.minimum(mine, offered)
        rng = self.rng["balancing"]
        theirs = rng.hypergeometric(mine, offered - mine, np.minimum(shed, offered)) if offered.any() else mine * 0
        # Which ones, at random among the second's: on two balancers shedding apart, the
        # tail of the second (the token bucket's) is not the tail of each.
        idx = np.flatnonzero(passed)
        order = idx[np.lexsort((rng.random(len(idx)), sec[idx]))]
        start = np.concatenate([[0], np.cumsum(mine)[:-1]])
        rank = np.arange(len(order)) - np.repeat(start, mine)
        mask = np.zeros(len(req.times), dtype=bool)
        mask[order[rank < np.repeat(theirs, mine)]] = True
        return mask, shed - theirs

    def _followed_recovered(self, followed: np.ndarray, first_fail: np.ndarray, earlier: np.ndarray,
                            recovered: np.ndarray) -> np.ndarray:
        """The followed clients' recovery: their first request after the first failure that got
        past the balancers and was not shed (no earlier than found before, where the first
        failure stands: the backends' failures are in that one)."""
        req, out = self.session_requests, self.session_outcome
        assert req is not None and out is not None
        exact = sessions.recovered(req, replace(out, failed=out.failed | followed), first_fail)
        mine = req.clients
        recovered = recovered.copy()
        recovered[mine] = np.where(earlier[mine], exact[mine], np.maximum(recovered[mine], exact[mine]))
        return recovered

    def _past_the_backends(self, recovered: np.ndarray, backends: Backends) -> np.ndarray:
        """A request that fails at the backends (a dead instance, a full queue) fails too:
        the recovery is the first request after it that gets through."""
        n, arrivals = self.pop.size, self.rng["arrivals"]
        recovered = recovered.copy()
        pending = np.isfinite(recovered)
        for _ in range(1000):
            sec = np.clip(recovered, 0, self.seconds - 1).astype(np.int64)
            chance = backends.fail[backends.attempt_class, sec]
            pending &= np.isfinite(recovered) & (arrivals.random(n) < chance)
            if not pending.any():
                break
            recovered[pending] = self._next_request(np.flatnonzero(pending), recovered[pending])
        return recovered

    # -- connection resets at an address move -----------------------------------------

    def _resets(self, window: Window, recovery: Recovery) -> Recovery:
        """A client with no retry whose pooled connection is reset at the address move fails
        that request; if it is its only failure, it recovers at its next request."""
        reset_time = self._connection_resets(window, recovery.failed)
        reset_fail = np.isfinite(reset_time) & (self.attempts == 1)
        if not reset_fail.any():
            # Every reset rescued by a retry: no failure, but a try sent to the old target.
            return replace(recovery, resets=reset_time)
        reset_at = np.where(reset_fail, reset_time, np.inf)
        only_reset = reset_fail & ~np.isfinite(recovery.first_fail)
        after_reset = self.shape.next_after(reset_at, self.pop.rate, self.rng["arrivals"])
        return replace(
            recovery,
            failed=recovery.failed + reset_fail,
            first_fail=np.where(only_reset, reset_at, recovery.first_fail),
            recovered=np.where(only_reset, after_reset, recovery.recovered),
            reset_at=reset_at,
            resets=reset_time,
        )

    def _pooled_resets(self, window: Window) -> np.ndarray:
        """After a planned DNS change, a pooled connection still open to the old balancer when
        it dies breaks at its next use (as in the model): one failed try, unless the client
        retries; then it behaves as a client without a pool. Those whose resolver still
        answers the old value then are in the window already."""
        n, fault, ctl = self.pop.size, window.fault, self.ctl
        reset_time = np.full(n, np.inf)
        if not window.faulted or window.pooled is None:
            return reset_time
        # Still on it: a request used the old connection after the fault (its last one does);
        # one whose last came before it and whose switch after opens its next connection to the
        # new target, with no request in between to break.
        assert window.pooled_drain is not None
        last = window.pooled_drain.last
        on_old = np.flatnonzero(~np.isnan(window.pooled) & (window.pooled > fault) & (last > fault))
        first = self.shape.next_after(np.full(len(on_old), fault), self.pop.rate[on_old], self.rng["arrivals"])
        first = np.minimum(first, last[on_old])
        # One whose resolver still answers the old value is in the window until then; if its first
        # request comes after that, the connection breaks there all the same (as in the model;
        # left out, 2.5 of 100 such clients were never affected, none in the model).
        until = window.until[on_old]
        broken = (first < min(ctl.fault_end, self.end)) & ((until <= fault) | (first >= until))
        reset_time[on_old[broken]] = first[broken]
        return reset_time

    def _connection_resets(self, window: Window, failures: np.ndarray) -> np.ndarray:
        """Per client, when its first request after the static address moved goes down a
        pooled connection opened before the move: it is reset once (as in the model); inf:
        no reset."""
        n, fault, rng = self.pop.size, window.fault, self.rng["arrivals"]
        reset_time = np.full(n, np.inf)
        if window.pooled is not None:
            return self._pooled_resets(window)
        moved = self.ctl.effective_at
        # A planned move with no fault before it resets connections as a failover's does.
        if not self.published.moves_address or not moved < self.end:
            return reset_time
        if not window.faulted and not self.ctl.changed_at < self.end:
            return reset_time
        for cohort in self.pop.cohorts:
            idx = cohort.members
            if len(idx) == 0 or cohort.reuse.keepalive <= 0 or cohort.followed:
                continue  # followed clients' resets are followed with their requests
            first = self.shape.next_after(np.full(len(idx), moved), cohort.rate, rng)
            if fault <= moved <= self.ctl.fault_end:
                # Any request during the outage failed and closed the connection.
                last = self.shape.last_before(np.full(len(idx), fault), cohort.rate, rng)
                open_ = failures[idx] == 0
            else:
                last = self.shape.last_before(np.full(len(idx), moved), cohort.rate, rng)
                open_ = ~((last >= fault) & (last < self.ctl.fault_end))
            age = cohort.reuse.max_age
            # A connection with no age limit is alive whenever it has not idled out and no
            # restart closed it (with no restarts it opened at -inf: inf - inf would say otherwise).
            opened = last - (rng.random(len(idx)) * age if math.isfinite(age) else np.inf)
            if cohort.restarts is not None:
                # A restart closes the connection: it was opened after the last restart before
                # `last`, and lives on only if the next restart comes after `first`.
                since, until = cohort.restarts.equilibrium(rng, len(idx))
                opened = np.maximum(opened, last - since)
                open_ = open_ & (until > first - last)
            young = first - opened < age if math.isfinite(age) else True
            alive = open_ & (first - last < cohort.reuse.keepalive) & young & (first < self.end)
            reset_time[idx] = np.where(alive, first, np.inf)
            # Each pooled client's first request after the move, reset or not: its switch
            # (drawing it again for those not reset would bias it: theirs come after long gaps).
            self._after_move[idx] = first
        return reset_time

    # -- where requests go after the change --------------------------------------------

    def _moves(self, window: Window, recovery: Recovery, rescued: Rescued) -> targets.Moves | None:
        """Each client's switch to the current target and its last request to the previous
        one, and the targets table (sim.fast.targets); None where one address per balancer
        makes a client's target its own history's (not tracked)."""
        if self.published.per_balancer:
            return None
        n, ctl, rng = self.pop.size, self.ctl, self.rng["traffic"]
        reset_at = recovery.reset_at if recovery.resets is None else recovery.resets
        reset = np.flatnonzero(np.isfinite(reset_at))
        retried = self.attempts > 1
        opened, drain = targets.OneByOne.none(), None
        if self.published.changes_dns:
            until, switched = window.until, window.reach
            if window.pooled is not None:
                until, switched, opened, drain = self._pooled_moves(window, reset_at, retried)
            else:
                until, switched = self._pooled_after_fault(window, recovery, until, switched)
        else:
            until = np.full(n, ctl.effective_at)
            # A reset connection's request is retried on a new one, which reaches the standby;
            # without a retry, the client's next request does.
            after = np.where(np.isfinite(reset_at), reset_at, ctl.effective_at)
            switched = np.where(np.isfinite(reset_at) & retried, reset_at,
                                self.shape.next_after(after, self.pop.rate, rng))
            drawn = ~np.isnan(self._after_move) & ~np.isfinite(reset_at)
            switched = np.where(drawn, self._after_move, switched)
        previous = targets.OneByOne(np.concatenate([reset, opened.owner]),
                                    np.concatenate([reset_at[reset], opened.at]),
                                    np.concatenate([np.ones(len(reset), dtype=np.int64), opened.count]))
        saved = reset[retried[reset]]
        tries = np.maximum(np.rint(rescued.delay / np.maximum(self.timeout[rescued.owner], 1e-12)), 1).astype(np.int64)
        more = self._churn_rescued
        rescues = targets.OneByOne(np.concatenate([saved, rescued.owner, more.owner]),
                                   np.concatenate([reset_at[saved], rescued.at, more.at]),
                                   np.concatenate([np.ones(len(saved), dtype=np.int64), tries, more.count]))
        moved = targets.moves(self.pop, self.shape, self.seconds, ctl.changed_at, until, switched, previous, rescues,
                              rng, drain)
        return self._session_moves(moved)

    def _session_moves(self, moved: targets.Moves) -> targets.Moves:
        """The session clients' switches and their tries to each target, from their requests."""
        req, out, changed = self.session_requests, self.session_outcome, self.ctl.changed_at
        if req is None or out is None:
            return moved
        mine = req.clients
        switched_at, last_previous_at = moved.switched_at.copy(), moved.last_previous_at.copy()
        if math.isfinite(changed) and changed < self.end:
            first_new, last_old = sessions.switches(req, out, changed, self.pop.size)
            switched_at[mine] = np.where(first_new[mine] < self.end, first_new[mine], np.nan)
            last_previous_at[mine] = np.where(np.isfinite(last_old[mine]), last_old[mine], np.nan)
        previous, current, saved = sessions.targets_counts(req, out, self.pop, changed, self.seconds)
        table = moved.table.copy()
        for column, add in (("to_previous", previous), ("to_current", current), ("rescued", saved)):
            table[column] = table[column].to_numpy() + add.reshape(-1)
        return targets.Moves(switched_at, last_previous_at, table)

    def _pooled_moves(self, window: Window, reset_at: np.ndarray, retried: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, targets.OneByOne, targets.Pooled]:
        """Until when each client's requests go to the previous target, and its switch, with
        pooled clients on their connections (`Window.pooled`): a connection broken by the
        old balancer's death hands over at its reset; one whose resolver still answered the
        old value then, at its switch as a client without a pool. Otherwise its requests to
        the old target are those on its connections there (sim.fast.pooled.Drain): the ones
        that opened them counted one by one, the rest Poisson at an open connection's
        density, none in the idle gaps between, the last its last before the switch (as
        Poisson up to the switch, 1000 clients every 20 s with a 30 s keepalive sent 3,983
        requests to the old target against the model's 3,215, the last at 126 s on average
        against 112 s)."""
        ps, drain, fault, changed = window.pooled, window.pooled_drain, window.fault, self.ctl.changed_at
        assert ps is not None and drain is not None
        pooled_ = ~np.isnan(ps)
        reset = np.isfinite(reset_at)
        stays = window.faulted & (ps > fault) & (window.until > fault)
        after_reset = self.shape.next_after(reset_at, self.pop.rate, self.rng["traffic"])
        known = pooled_ & ~reset & ~stays & (drain.last < np.minimum(ps, self.end))
        ends_at = np.where(known, np.maximum(drain.last, changed), ps)
        until = np.where(reset, reset_at, np.where(stays, window.until, ends_at))
        switched = np.where(reset, np.where(retried, reset_at, after_reset), np.where(stays, window.reach, ps))
        whose, at = drain.opened
        mine = known[whose] & (at < drain.last[whose])
        opened = targets.OneByOne(whose[mine], at[mine], np.ones(int(mine.sum()), dtype=np.int64))
        span = self.shape.measure(np.full(len(ps), changed), ends_at)
        with np.errstate(divide="ignore", invalid="ignore"):
            busy = np.where(known & (span > 0), np.clip(1.0 - drain.idle / span, 0.0, 1.0), 1.0)
        density = {c: pooled.density(self.shape, cohort.rate, cohort.reuse.keepalive, self.seconds)
                   for c, cohort in enumerate(self.pop.cohorts) if known[cohort.members].any()}
        return (np.where(pooled_, until, window.until), np.where(pooled_, switched, window.reach), opened,
                targets.Pooled(np.where(known, drain.last, np.nan), busy, density))

    def _pooled_after_fault(self, window: Window, recovery: Recovery, until: np.ndarray,
                            switched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fault with an end: a pooled client whose answer has not turned by its first request
        after the end opens a connection to the old balancer there and stays on it (as in the
        model) until it opens one at or after its old answer ran out (`until`), which is then
        both its switch and the end of its requests to the old balancer (sim.fast.pooled)."""
        end = self.ctl.fault_end
        if not (window.faulted and end < self.end and self.ctl.changed_at > window.fault):
            return until, switched
        until, switched = until.copy(), switched.copy()
        rng = self.rng["traffic"]
        for cohort in self.pop.cohorts:
            if cohort.reuse.keepalive <= 0 or cohort.stub.kind == "forever" or cohort.followed \
                    or len(cohort.members) == 0:
                continue
            idx = cohort.members[switched[cohort.members] > end]
            if len(idx) == 0:
                continue
            got = recovery.recovered[idx]
            first = np.where(np.isfinite(got) & (got >= end), got, self.shape.next_after(np.full(len(idx), end),
                                                                                          cohort.rate, rng))
            stuck = first < until[idx]
            who = idx[stuck]
            switch = pooled.reopened_after(cohort, self.shape, first[stuck], until[who], rng)
            until[who], switched[who] = switch, switch
        return until, switched

    # -- tables ----------------------------------------------------------------------

    def _clients(self, recovery: Recovery, moved: targets.Moves | None) -> pd.DataFrame:
        """Every client (as the model lists them): the affected ones (a failure from the first
        fault on, within the run) with their recovery, all with when they moved."""
        sc, pop, first_fail, n = self.sc, self.pop, recovery.first_fail, self.pop.size
        hit = np.isfinite(first_fail) & (first_fail <= self.end) & (first_fail >= sc.warmup)
        affected = np.flatnonzero(hit)
        fault_times = np.array(sc.fault_times(self.published.changes_dns))
        ff = first_fail[affected]
        anchor = fault_times[np.maximum(np.searchsorted(fault_times, ff, side="right") - 1, 0)] if len(fault_times) else ff
        done = recovery.recovered[affected]
        service = np.asarray(sc.backends.service_time.sample(self.rng["service"], len(affected)), dtype=float)
        finished = done + sc.rtt + service
        recovered = np.full(n, np.nan)
        recovered[affected] = np.where(finished <= self.end, finished - anchor, np.nan)
        fault_at = np.full(n, np.nan)
        fault_at[affected] = anchor
        nan = np.full(n, np.nan)
        # Categories: a million clients' names as Python strings cost seconds and a gigabyte.
        cohorts = pd.Categorical.from_codes(pop.cohort, [c.name for c in pop.cohorts])
        groups = pd.Categorical.from_codes(pop.resolver_group[pop.resolver], pop.group_names)
        return pd.DataFrame(
            {
                "client": np.arange(n, dtype=np.int64),
                "cohort": cohorts,
                "resolver_group": groups,
                "recovery_s": recovered,
                "failed": np.where(hit, recovery.failed, 0).astype(np.int64),
                "fault_at": fault_at,
                "switched_at": nan if moved is None else moved.switched_at,
                "last_previous_at": nan if moved is None else moved.last_previous_at,
            }
        )

    def _timeline(self, window: Window, recovery: Recovery, failed: Failed, ends_in_run: np.ndarray,
                  backends: Backends, losses: BackendLosses, rescued: Rescued) -> tuple[pd.DataFrame, np.ndarray]:
        """Requests per second by outcome, the clients on the old target and our DNS queries;
        and the successful requests per second."""
        counts = self._counts(window, recovery, failed, ends_in_run, backends, losses, rescued)
        timeline = pd.DataFrame({"t": np.arange(self.seconds, dtype=np.int64)})
        timeline["requests"] = sum(counts.values())
        for name in OUTCOMES:
            timeline[name] = counts[name]
        timeline["on_old_target"] = self._on_old_target(self._balancer_fault(window), recovery.reach)
        # The record our servers answer (an alias carries the balancer's TTL).
        q, q_outage = self.q, self.q_outage
        if self.session_requests is not None:
            # Resolvers whose clients all browse in sessions are followed with them (sim.fast.lookups).
            followed = lookups.exact_resolvers(self.full)
            q, q_outage = np.where(followed, 0.0, q), np.where(followed, 0.0, q_outage)
        whole = self._whole_run_resolvers()
        if whole is not None:
            drawn = q, q_outage
            q, q_outage = np.where(whole, 0.0, q), np.where(whole, 0.0, q_outage)
        queries = query_counts(self.pop, self.published.record_ttl, q, q_outage,
                               window.busy, self.shape, self.seconds, self.rng["dns"])
        if window.dns:
            queries = self._queries_around_outage(window, queries)
        # The followed resolvers' fetches, none while our servers are down (sim.fast.lookups).
        queries = queries + sessions.per_second(self.session_fetches, self.seconds)
        if self.session_requests is not None:
            queries = queries + self._followed_queries_outside()
        if whole is not None:
            queries = queries + self._whole_run_queries(window, whole, *drawn)
        queries = queries + self._switch_off_fetches(window, recovery)
        timeline["dns_queries"] = queries
        return timeline, counts["ok"]

    def _switch_off_fetches(self, window: Window, recovery: Recovery) -> np.ndarray:
        """After a planned change, the old balancer's switch-off breaks the pooled connections
        still on it and their clients look the name up: a resolver whose clients all keep
        connections fetches at the first of those lookups that finds its answer expired, which
        its steady stream (one query per connection opened, none with a 1 h keepalive) does not
        hold: at once where its clients' connections broke at their first request (if it holds
        no answer then: 1 / (1 + q L) of the time at its refetch rate q, lifetime L), or at
        the first request after its old answer ran out where they kept getting it. Per second."""
        out = np.zeros(self.seconds, dtype=np.int64)
        if window.pooled is None or not window.faulted:
            return out
        pop, rng = self.pop, self.rng["dns"]
        n_res = len(pop.resolver_group)
        pooled_only = np.ones(n_res, dtype=bool)
        for cohort in pop.cohorts:
            if cohort.reuse.keepalive <= 0 or cohort.followed:
                pooled_only[pop.resolver[cohort.members]] = False
        stays = ~np.isnan(window.pooled) & (window.until > window.fault) & ~np.isfinite(recovery.reset_at)
        first_reset, first_stay = np.full(n_res, np.inf), np.full(n_res, np.inf)
        np.minimum.at(first_reset, pop.resolver, recovery.reset_at)
        np.minimum.at(first_stay, pop.resolver, np.where(stays, window.reach, np.inf))
        ttl = self.published.record_ttl if self.published.record_ttl is not None else self.sc.dns.service_ttl
        life = np.array([float(np.mean(p.lifetimes(ttl, rng, 64))) for p in pop.group_policies])[pop.resolver_group]
        empty = rng.random(n_res) < 1.0 / (1.0 + self.q_refetch * life)
        fetch = np.minimum(np.where(empty, first_reset, np.inf), first_stay)
        return out + _per_second(fetch[pooled_only & (fetch < self.end)], self.seconds)

    def _whole_run_resolvers(self) -> np.ndarray | None:
        """Under churn, the resolvers whose clients are all followed for the whole run
        (sim.fast.churn_requests.whole_run), None if there are none."""
        followed = self._churn_followed
        if followed is None or followed.queries is None:
            return None
        exact = churn_requests.exact_resolvers(self.pop)
        return exact if exact.any() else None

    def _whole_run_queries(self, window: Window, exact: np.ndarray, q: np.ndarray, q_outage: np.ndarray) -> np.ndarray:
        """Our DNS queries per second from resolvers `exact` (`_whole_run_resolvers`): they
        fetch our record at their stubs' queries, which under churn come mostly in bursts
        after a node retired, not at the steady rate of idle gaps that `query_counts` draws
        (that gave 0 against the model's 90, honouring stubs, two nodes replaced every 30 s):
        before the churn's end (`until`) their fetches are those queries'
        (sim.fast.churn_requests.resolver_fetches, primed as the model primes them), after
        it drawn as for any resolver."""
        pop, ttl, until = self.pop, self.published.record_ttl, self._churn_until
        res, at = self._churn_followed.queries  # type: ignore[union-attr]
        mine = exact[res] & (at < until)
        primed = resolver_expiry(pop, ttl, churn_requests.priming_rate(pop, ttl), 0.0, self.rng["dns"])
        _, fetched, _ = churn_requests.resolver_fetches(pop, res[mine], at[mine], ttl, primed, self.end,
                                                        self.rng["dns"])
        drawn = query_counts(pop, ttl, np.where(exact, q, 0.0), np.where(exact, q_outage, 0.0), window.busy,
                             self.shape, self.seconds, self.rng["dns"])
        return np.where(np.arange(self.seconds) < until, _per_second(fetched, self.seconds), drawn)

    def _followed_queries_outside(self) -> np.ndarray:
        """The followed resolvers' fetches outside the span their clients were followed in
        (sim.fast.lookups.follow: before the first fault or change, and once every client and
        cache has settled on the current answer): the steady renewal process the Poisson path
        draws for any resolver (sim.fast.dns.query_counts, a farm cache by cache), per second
        outside that span."""
        lo, hi = self.session_window
        t = np.arange(self.seconds)
        # np.floor, not math.floor: with no fault or change nothing is followed (lo = inf).
        outside = (t < np.floor(lo)) | (t >= np.ceil(min(hi, self.end)))
        if not outside.any():
            return np.zeros(self.seconds, dtype=np.int64)
        q = np.where(lookups.exact_resolvers(self.full), self.q, 0.0)
        counts = query_counts(self.full, self.published.record_ttl, q, q, (math.inf, math.inf), self.shape,
                              self.seconds, self.rng["dns"])
        return np.where(outside, counts, 0)

    def _queries_around_outage(self, window: Window, queries: np.ndarray) -> np.ndarray:
        """Nothing answers while our servers are down, so nothing is counted then (the model
        counts answered queries); each resolver whose answer expired in the outage fetches
        again at its first query after it, on top of its renewal process."""
        t = np.arange(self.seconds)
        end = float(window.back[0])
        out = np.where((t >= window.fault) & (t < end), 0, queries)
        lost = np.unique(self.pop.resolver[window.start < end])
        # Resolvers followed with their clients count their own fetches (sim.fast.lookups).
        lost = lost[~lookups.exact_resolvers(self.full)[lost]]
        rate = self.q[lost]
        lost = lost[rate > 0]
        refetch = self.shape.next_after(np.full(len(lost), end), self.q[lost], self.rng["dns"])
        return out + _per_second(refetch[refetch < self.end], self.seconds)

    @staticmethod
    def _balancer_fault(window: Window) -> float:
        return math.inf if window.dns else window.fault

    def _counts(self, window: Window, recovery: Recovery, failed: Failed, ends_in_run: np.ndarray,
                backends: Backends, losses: BackendLosses, rescued: Rescued) -> dict[str, np.ndarray]:
        """Requests per second by outcome: the failures drawn one by one, the successes as
        Poisson counts of the intensity left once every client's dead window is taken out
        (in expectation the failures drawn per client: a stub refresh counted one by one
        stands for the empty gap before it; subtracting the drawn failures instead adds
        noise where everyone fails)."""
        seconds, rate = self.seconds, self.pop.rate
        issued, owner = failed.issued, failed.owner
        g = self.shape.g[:seconds]
        total = rate.sum() * g
        dead = _window_mass(rate, window.start, window.back, seconds) * g if window.faulted else 0.0
        for span in window.extra:
            dead = dead + _window_mass(rate[span.who] * span.share, span.lo, span.hi, seconds) * g
        if self._churn_followed is not None:
            dead = dead + self._followed_dead(g)
        backend = np.isin(issued, losses.when) if len(losses.when) else np.zeros(len(issued), bool)
        lost_to_backends = _per_second(issued[backend], seconds)
        issued, owner, ends_in_run = issued[~backend], owner[~backend], ends_in_run[~backend]
        recorded = _per_second(issued[ends_in_run], seconds)
        churned = np.zeros(seconds, dtype=np.int64)
        if window.dns and self._churn_followed is not None:
            # Under node churn through a DNS outage, a failure outside the client's span of
            # failed resolutions met a retired node: refused, as in the model.
            # Not the clients followed request by request (rate 0 here): their outcome says
            # (`_followed_refused`; a dns_change too: counted by this rule, 4,906 refused
            # against the model's 3,040, `cname_repoint`, no stub cache).
            met = ends_in_run & ~((issued >= window.start[owner]) & (issued < window.back[owner])) & (rate[owner] > 0)
            churned = _per_second(issued[met], seconds)
            recorded = recorded - churned
        if window.dns:
            followed = self._followed_refused()
            churned, recorded = churned + followed, recorded - followed
        reset_at = recovery.reset_at
        refused_resets = np.bincount(reset_at[np.isfinite(reset_at)].astype(np.int64), minlength=seconds)[:seconds]
        if self.published.per_balancer:
            # Drawn one by one (sim.fast.multia); a followed client's are not in `total` (rate 0 there).
            poisson = self.pop.rate[owner] > 0
            dead = dead + _per_second(issued[poisson], seconds)
        ok = self.rng["traffic"].poisson(np.maximum((total - dead) * (1.0 - backends.mean) - refused_resets, 0.0))
        ok = ok + self._followed_ok(backends)
        passed = self._session_passed()
        if passed.any():
            # The session clients' requests past the balancers, less the backends' share of failures.
            ok = ok + self.rng["traffic"].binomial(passed, np.clip(1.0 - backends.mean, 0.0, 1.0))
        if len(rescued.at):
            ok = ok + _per_second(rescued.at, seconds)  # the dead window's requests a retry got through
        # Who is on which balancer by the long-run rate, session clients' included, over the
        # requests offered that second, theirs included.
        # Pooled clients after a planned change stay on the old balancer until their switch
        # (sim.fast.pooled), not their resolver's: the load each balancer sheds follows them.
        reach = recovery.reach if window.pooled is None else \
            np.where(np.isnan(window.pooled), recovery.reach, window.pooled)
        shed = self._shed(ok, self._balancer_fault(window), reach, g, total - dead + passed)
        self._offered_shed = (ok, shed)
        counts = {name: np.zeros(seconds, dtype=np.int64) for name in OUTCOMES}
        counts["ok"] = ok - shed
        counts["dns_error" if window.dns else "timeout" if self.waits else "refused"] += recorded
        at_once_counted = self.waits and not window.dns and self._fault_spans is not None and failed.spent is not None
        if at_once_counted:
            # Under node churn, a request whose tries met retired nodes only was refused at once.
            at_once = _per_second(issued[ends_in_run & (failed.spent[~backend] == 0)], seconds)
            counts["timeout"] -= at_once
            counts["refused"] += at_once
            self._count_refused_late(counts)
        self._count_session_outcomes(counts, window, at_once_counted)
        counts["refused"] += churned
        counts[backends.fleet.outcome] += lost_to_backends - losses.shed
        counts["refused"] += refused_resets
        counts["shed"] = shed + losses.shed
        return counts

    def _count_session_outcomes(self, counts: dict[str, np.ndarray], window: Window, at_once_counted: bool) -> None:
        """Move the requests followed one by one (sim.fast.lookups) from the window's outcome to
        their own: a failed lookup is a DNS error, a refusal through a blackhole is refused."""
        req, out, seconds = self.session_requests, self.session_outcome, self.seconds
        if window.dns or req is None or out is None:
            return
        if out.unresolved is not None:
            # A followed request whose last try failed to resolve (a dns_down with a balancer fault).
            lookup = _per_second(req.times[out.failed & out.unresolved & (out.done <= self.end)], seconds)
            counts["timeout" if self.waits else "refused"] -= lookup
            counts["dns_error"] += lookup
        if self.waits:
            # Under a blackhole, a followed request whose last try a reset connection (or a retired
            # node) refused; one refused at once is counted above already under churn (no wait).
            late = out.done > req.times if at_once_counted else True
            reset = _per_second(req.times[out.failed & out.refused & late & (out.done <= self.end)], seconds)
            counts["timeout"] -= reset
            counts["refused"] += reset

    def _followed_refused(self) -> np.ndarray:
        """Per second, the requests followed one by one (sim.fast.lookups) that failed at a
        balancer, not at their lookup: through a DNS outage, a retired node's refusal under
        node churn (no balancer fault: nothing else refuses there)."""
        req, out = self.session_requests, self.session_outcome
        if req is None or out is None or out.unresolved is None:
            return np.zeros(self.seconds, dtype=np.int64)
        return _per_second(req.times[out.failed & ~out.unresolved & (out.done <= self.end)], self.seconds)

    def _followed_dead(self, g: np.ndarray) -> np.ndarray:
        """Per second, the requests of the clients followed one by one under churn taken out of
        the Poisson successes: their failures; through a blackhole, all their lanes' requests
        (their successes counted one by one, `Followed.ok_at`)."""
        followed, seconds = self._churn_followed, self.seconds
        assert followed is not None
        if followed.lanes is None:
            return _per_second(followed.failed_at, seconds)
        who, lo, hi = followed.lanes
        return _window_mass(self.pop.rate[who], lo, hi, seconds) * g

    def _followed_ok(self, backends: Backends) -> np.ndarray:
        """Per second, the successes of the clients followed one by one through a blackhole
        (`_followed_dead`), less the backends' share of failures."""
        followed = self._churn_followed
        if followed is None or followed.ok_at is None:
            return np.zeros(self.seconds, dtype=np.int64)
        return self.rng["traffic"].binomial(_per_second(followed.ok_at, self.seconds),
                                            np.clip(1.0 - backends.mean, 0.0, 1.0))

    def _count_refused_late(self, counts: dict[str, np.ndarray]) -> None:
        """Move from the timeouts to the refusals, per second of issue, the requests followed one
        by one through a blackhole whose last try a retired node refused after an earlier try
        timed out (sim.fast.churn_requests)."""
        followed = self._churn_followed
        if followed is None or followed.failed_refused is None or followed.failed_spent is None:
            return
        spent = followed.failed_spent
        late = followed.failed_refused & (spent > 0) & (followed.failed_at + spent <= self.end)
        moved = _per_second(followed.failed_at[late], self.seconds)
        counts["timeout"] -= moved
        counts["refused"] += moved

    def _shed(self, ok, fault, reach, g, live):  # type: ignore[no-untyped-def]
        """Requests beyond a balancer endpoint's capacity in their second (sim.fast.load.shed)."""
        sc, rng, seconds, rate = self.sc, self.rng["balancing"], self.seconds, self.full.rate
        on_standby = self._on_standby(ok, fault, reach, g, live)
        out = np.zeros(seconds, dtype=np.int64)
        for spec, counts in ((sc.active, ok - on_standby), (sc.standby, on_standby)):
            if not self.published.changes_dns:
                # A static address leads to the front: every node's capacity, however many.
                nodes = spec.nodes if spec.scale_delay is None else \
                    load.nodes_over_time(counts, spec.nodes, spec.capacity, spec.scale_delay, self.rng["control"])
                out += load.shed(counts, 1, nodes * spec.capacity, rng)
            elif spec.scale_delay is None:
                out += load.shed(counts, spec.nodes, spec.capacity, rng)
            else:
                # A name that resolves to the nodes: a new node meets only the requests of
                # clients whose answer lists it (sim.fast.scaling); each node sheds on its own.
                joins = load.node_joins(counts, spec.nodes, spec.capacity, spec.scale_delay, self.rng["control"])
                # The balancer's A records: behind a CNAME the chained ones, else the alias's.
                ttl = self.published.record_ttl if self.published.chain_ttl is None else self.published.chain_ttl
                # A DNS change away from the active, planned or the failover's (sim.fast.churn.Move):
                # the answers fetched after it hold the standby, which the standby's clients are
                # from then on (`arriving`; engine.unsupported refuses both balancers scaling).
                move = self._churn_move(None)  # type: ignore[arg-type]
                arriving = spec is sc.standby
                if arriving and move is None:
                    continue  # no change in the run: no client on the standby
                # Our authoritative servers down: no fetch of our zone's records in it.
                outage = next(((f.at, f.at + f.for_) for f in sc.faults if isinstance(f, m.DnsDown)), None)
                plain = all(c.stub.kind == "none" and c.reuse.keepalive <= 0 for c in self.full.cohorts)
                if plain and move is None and outage is None and not arriving:
                    reaches = scaling.reaches(self.full, self.shape, self.q, joins, ttl, self.rng["dns"])
                    shares = scaling.node_shares(spec.nodes, reaches, rate, seconds)
                else:
                    # A stub's answer, or a pooled connection, sends a client's requests to one
                    # node: followed answer by answer.
                    cname_ttl = None if self.published.chain_ttl is None else self.published.record_ttl
                    held = scaling.held_shares(self.full, self.shape, joins, spec.nodes, ttl, cname_ttl,
                                               self.published.rotate, seconds, self.rng["dns"], move, outage,
                                               arriving)
                    met, shed = scaling.shed_per_node(counts, held.shares, spec.capacity, rng)
                    out += shed.sum(axis=1)
                    # Such a client's next requests meet its own node's shedding (_balancer_sheds).
                    self._node_sheds = (held, np.divide(shed, met, out=np.zeros(shed.shape), where=met > 0))
                    continue
                out += load.shed_by_share(counts, shares, spec.capacity, rng)
        return out

    def _on_standby(self, ok: np.ndarray, fault: float, reach: np.ndarray, g: np.ndarray,
                    live: np.ndarray) -> np.ndarray:
        """Per second, how many of the `ok` requests offered went to the standby."""
        rng, seconds = self.rng["balancing"], self.seconds
        t = np.arange(seconds, dtype=float)
        down = (t >= fault) & (t < self.ctl.fault_end)
        if not self.published.changes_dns:
            standby = np.clip(t + 1 - self.ctl.effective_at, 0.0, 1.0)
        elif not math.isfinite(self.ctl.changed_at):
            # No change in the run: every client is on the active. (A DNS outage's window
            # holds each client's first request after it in `reach`, not a move.)
            standby = np.zeros(seconds)
        else:
            # The Poisson clients on the standby by their long-run rate from their switch on
            # (memoryless: a client's rate after it is its rate). Not a followed client's: a
            # session client not yet switched has sent nothing since its resolver's answer
            # turned, so it is likely between sessions; weighted by its long-run rate it kept
            # a third of the load on the old balancer long after the model's had moved
            # (alias_apex, 300 clients: 66.7% available against the model's 56.9%). Their
            # requests to the new target are counted one by one, and not drawn again: a
            # binomial split of them adds spread that shedding (convex) turns into more shed
            # (consumer-web, one node of 2/s a balancer: 43.1% available against 44.5%).
            order = np.sort(reach)
            weights = np.cumsum(self.pop.rate[np.argsort(reach)])
            k = np.searchsorted(order, t + 1.0, side="right")
            switched = np.where(k > 0, weights[np.maximum(k - 1, 0)], 0.0) * g
            mine, new = self._session_passed(), self._session_passed_new()
            theirs = np.minimum(mine, ok)  # less the backends' failures, drawn among them
            on_new = rng.hypergeometric(new, mine - new, theirs) if theirs.any() else theirs
            p = np.divide(switched, live - mine, out=np.zeros(seconds), where=live - mine > 0)
            return np.where(down, ok, on_new + rng.binomial(ok - theirs, np.clip(p, 0.0, 1.0)))
        standby = np.where(down, 1.0, np.clip(standby, 0.0, 1.0))
        return rng.binomial(ok, standby)

    def _on_old_target(self, fault: float, reach: np.ndarray) -> np.ndarray:
        seconds = self.seconds
        t = np.arange(seconds, dtype=float)
        out = np.zeros(seconds, dtype=np.int64)
        if not math.isfinite(fault):
            return out
        down = (t >= fault) & (t < self.ctl.fault_end)
        if not self.published.changes_dns:
            out[down & (t < self.ctl.effective_at)] = self.pop.size
        else:
            order = np.sort(reach)
            out[down] = len(order) - np.searchsorted(order, t[down], side="right")
        return out

    def _metrics(self, timeline: pd.DataFrame, clients: pd.DataFrame, ok: np.ndarray, backends: Backends,
                 rescued: Rescued) -> dict[str, float]:
        start = int(math.floor(self.sc.warmup))
        measured = timeline.iloc[start:]
        requests = int(measured["requests"].sum())
        failed = requests - int(measured["ok"].sum())
        lat = self._latencies(ok, start, backends, rescued) * 1000.0
        affected = clients["failed"].to_numpy() > 0
        recovery = clients["recovery_s"].to_numpy()[affected]
        return {
            "requests": requests,
            "failed": failed,
            "clients_affected": int(affected.sum()),
            "stragglers_5m": float(np.mean(~(recovery <= 300.0))) if affected.any() else 0.0,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
            "dns_queries": int(measured["dns_queries"].sum()),
            "dropped": int(measured["shed"].sum()),
        }

    def _latencies(self, ok: np.ndarray, start: int, backends: Backends, rescued: Rescued) -> np.ndarray:
        """A sample of the successful requests' latencies (s) from `start` on: queueing, the
        detours past blackholed instances, and the late successes of retries."""
        sc, rng = self.sc, self.rng["service"]
        lat = load.latencies(ok[start:].astype(float), backends.fleet.queue, start, sc.backends.service_time, sc.rtt,
                             rng)
        if backends.detour.any() and len(lat):
            measured_ok = ok[start:].astype(float)
            detoured = float((measured_ok * backends.detour[start:]).sum())
            k = int(round(len(lat) * detoured / max(measured_ok.sum(), 1.0)))
            if k:
                lat[rng.choice(len(lat), size=min(k, len(lat)), replace=False)] += CONNECT_TIMEOUT
        late = rescued.delay[rescued.at >= sc.warmup] if len(rescued.delay) else rescued.delay
        followed = self._churn_followed
        if followed is not None and followed.late_at is not None and followed.late_delay is not None:
            # Followed through a blackhole: successes that first waited out a timeout.
            ends = followed.late_at + followed.late_delay
            keep = (followed.late_at >= sc.warmup) & (ends <= self.end)
            late = np.concatenate([late, followed.late_delay[keep]])
        req, out = self.session_requests, self.session_outcome
        if req is not None and out is not None:
            # The followed clients' requests that a retry got through after a blackholed try.
            mine = ~out.failed & (out.done > req.times) & (out.done <= self.end) & (req.times >= sc.warmup)
            late = np.concatenate([late, out.done[mine] - req.times[mine]])
        if len(late) and len(lat):
            # The sample stands for all successful requests; the late ones join at their share.
            k = int(round(len(lat) * len(late) / max(int(ok[start:].sum()), 1)))
            if k:
                pick = rng.choice(late, size=k)
                lat = np.concatenate([lat, pick + np.asarray(sc.backends.service_time.sample(rng, k)) + sc.rtt])
        return lat


def _churn_queries(pop: Population, node_ttl: float) -> np.ndarray:
    """Per client, how often it asks its resolver for the nodes' record once the resolver's
    answer has expired (sim.fast.churn_requests.query_rate); a `forever` stub that restarts,
    once a restart (sim.fast.churn_restarts): the resolver's cache holds what an earlier
    restart fetched for its TTL (stretched: longer); a stub that holds an answer, at most
    until the next restart."""
    asks = np.zeros(pop.size)
    for c in pop.cohorts:
        asks[c.members] = base = churn_requests.query_rate(c, node_ttl)
        if c.restarts is None or c.rate <= 0:
            continue
        if c.stub.kind == "forever":
            asks[c.members] = 1.0 / (float(c.restarts.every.mean) + 1.0 / c.rate)
        elif base > 0:
            # A stub that holds an answer (floor, fixed) holds it until the next restart at most:
            # mean of min(its hold, a restart gap), as sim.fast.population.resolver_rates takes it.
            held = 1.0 / base - 1.0 / c.rate
            gaps = c.restarts.gaps(np.random.default_rng(0), 1024)  # an expectation, not a draw of the run
            asks[c.members] = 1.0 / (float(np.mean(np.minimum(held, gaps))) + 1.0 / c.rate)
    return asks


def _per_second(times: np.ndarray, seconds: int) -> np.ndarray:
    """How many of `times` fall in each second of the run (the last second takes any later)."""
    return np.bincount(np.minimum(times, seconds - 1).astype(np.int64), minlength=seconds)[:seconds]
