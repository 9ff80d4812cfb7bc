"""Browsing sessions in the fast engine: every request drawn with the model's law.

A cohort with `sessions` (sim.policy.sessions) sends its requests in bursts,
so nothing of the Poisson shortcuts holds for it (the first request after a
moment is not an exponential wait, and a window's count is not Poisson).
Such clients send few requests (a page view every half hour or so), so the
engine draws every one of them, with the model's law (the same start in the
cycle, session lengths, thinks and gaps, and the traffic faults applied as
the model applies them; `requests`), and sim.fast.lookups follows them one
by one. Poisson clients that can use a resolver farm are drawn here too
(`poisson`) and followed alike: a farm's caches turn one by one, so such a
client has no single switch (sim.fast.population.on_farm). This module holds
the requests, what the engine needs of the replication to follow them
(`Plan`), and what it reads back from their outcomes (failures, recovery,
switches, the targets table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.fast.churn import Cycles, Replacements
from sim.fast.intensity import Intensity
from sim.fast.population import Population
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


def requests(pop: Population, end: float, rng: np.random.Generator,
             traffic: Sequence[tuple[float, float, float]] = (), shape: Intensity | None = None) -> Requests | None:
    """Every followed cohort's requests (None: none is followed; Cohort.followed). A session
    cohort's with the traffic faults (at, until, factor) as the model applies them: a drop
    keeps each session request with its share (sim.model.lifecycle), a surge adds Poisson
    requests at (factor - 1) times the cohort's rate, each to a member drawn uniformly
    (sim.model.control). A Poisson cohort's (one that can use a resolver farm) as a Poisson
    process of intensity rate x g(t), `shape` the traffic faults' factors as the engine
    applies them to every Poisson client (sim.fast.intensity): the model's thinned base
    arrivals plus a surge's own, per client."""
    clients, times = [], []
    for cohort in pop.cohorts:
        if not cohort.followed or len(cohort.members) == 0:
            continue
        clients.append(cohort.members)
        if cohort.sessions is None:
            assert shape is not None, "Poisson clients behind a farm need the traffic shape"
            times.extend(poisson(cohort.rate, len(cohort.members), end, shape, rng))
            continue
        drawn = draw(cohort.sessions, len(cohort.members), end, rng)
        if traffic:
            drawn = [_with_traffic(x, cohort.rate, end, traffic, rng) for x in drawn]
        times.extend(drawn)
    if not clients:
        return None
    sizes = np.array([len(x) for x in times], dtype=np.int64)
    return Requests(np.concatenate(clients), np.concatenate(times) if times else np.empty(0),
                    np.concatenate([[0], np.cumsum(sizes)]))


def poisson(rate: float, n: int, end: float, shape: Intensity, rng: np.random.Generator) -> list[np.ndarray]:
    """The requests before `end` of `n` Poisson clients of base `rate`: per client a Poisson
    count of mean rate x G(end), each time uniform in G-measure (G the integral of g)."""
    total = shape.measure(np.zeros(1), np.full(1, end))[0]
    count = rng.poisson(rate * total, n)
    at = shape.uniform_between(np.zeros(int(count.sum())), np.full(int(count.sum()), end), rng.random(int(count.sum())))
    at = np.minimum(at, np.nextafter(end, 0.0))
    return [np.sort(x) for x in np.split(at, np.cumsum(count)[:-1])]


def _with_traffic(times: np.ndarray, rate: float, end: float, traffic: Sequence[tuple[float, float, float]],
                  rng: np.random.Generator) -> np.ndarray:
    """One client's session requests thinned by the drops and joined by the surges' requests."""
    keep = np.ones(len(times), bool)
    extra = []
    for at, until, factor in traffic:
        inside = (times >= at) & (times < until)
        if factor < 1:
            keep &= ~inside | (rng.random(len(times)) < factor)
        elif factor > 1:
            span = max(min(until, end) - at, 0.0)
            extra.append(at + rng.random(int(rng.poisson((factor - 1.0) * rate * span))) * span)
    return np.sort(np.concatenate([times[keep], *extra]))


@dataclass(frozen=True)
class Plan:
    """What the follower needs of the replication: the dead balancers and the change."""

    # Each balancer fault in the run: (OLD for the active, NEW for the standby, its start,
    # its end (inf: down to the end), blackholed); a try to that target inside it fails, at
    # once if refused, after the client's timeout if blackholed.
    down: tuple[tuple[int, float, float, bool], ...]
    changes_dns: bool  # else the address moves at `effective`
    effective: float  # the new record propagated, or the address moved (inf: never)
    changed_at: float  # from here the old balancer is the previous target
    opens: np.ndarray | None  # per resolver: it answers the new record from here (DNS; sim.fast.dns)
    ttls: tuple[float, float | None]  # the record's TTL and, behind a CNAME, the chain's
    # Each dns_down: [start, end) in which our authoritative servers answer nothing (a
    # resolver followed cache by cache that must fetch then fails the lookup).
    auth_down: tuple[tuple[float, float], ...] = ()
    # One address per balancer (multi_a): the old answer lists the active's then the standby's,
    # rotated by the client's count of resolutions when `rotate` (sim.fast.lookups._Clients.target).
    per_balancer: bool = False
    rotate: bool = True
    # Node churn on the active balancer behind a name that resolves to its nodes: its node
    # lists (sim.fast.churn.Replacements); a try to a node from its retirement on is refused.
    nodes: Replacements | None = None
    # With them, the resolvers' fetches of the nodes' record that the Poisson path follows
    # (sim.fast.churn.resolver_cycles): a resolver shared with Poisson clients holds the list
    # of the fetch that covers a moment (one followed cache by cache keeps its own).
    node_fetches: Cycles | None = None

    def servers_down(self, now: float) -> bool:
        """Are our authoritative servers down at `now` (inside one of the dns_down faults)?"""
        return any(lo <= now < hi for lo, hi in self.auth_down)

    def opens_of(self, resolver: int) -> float:
        """When a resolver not followed (one with Poisson clients) answers the new record."""
        return math.inf if self.opens is None else float(self.opens[resolver])


@dataclass(frozen=True)
class Outcome:
    """Per request (aligned with Requests.times): how it went."""

    failed: np.ndarray  # its last try failed at the balancer (refused, or reset)
    first_old: np.ndarray  # its first try went to the old balancer
    any_old: np.ndarray  # some try went to the old balancer
    any_new: np.ndarray  # some try went to the new target
    rescued: np.ndarray  # failed tries before a try that got through
    first_sent: np.ndarray  # its first try reached a balancer (not a failed lookup)
    done: np.ndarray  # when it ended: its issue, plus the timeouts of blackholed tries
    new_at: np.ndarray  # when its first try to the new target went (inf: none)
    old_at: np.ndarray  # when its last try to the old target went (-inf: none)
    refused: np.ndarray  # its last try was refused (a refusing fault, or a reset connection)
    # Its last try failed to resolve (our servers down): a dns_error, counted to no target.
    unresolved: np.ndarray | None = None


def per_second(times: np.ndarray, seconds: int) -> np.ndarray:
    """How many of `times` fall in each second (the last second takes any later)."""
    if len(times) == 0:
        return np.zeros(seconds, dtype=np.int64)
    return np.bincount(np.minimum(times, seconds - 1).astype(np.int64), minlength=seconds)[:seconds]


def recovered(req: Requests, out: Outcome, first_fail: np.ndarray) -> np.ndarray:
    """Per population client, when its first request that got past the balancer ended after
    its first failure (inf: none, or no failure): as the model, by when requests end (a
    retry after a blackholed try ends a timeout or more after its issue)."""
    owner = req.owner
    after = ~out.failed & (out.done > first_fail[owner])
    best = np.full(len(first_fail), np.inf)
    np.minimum.at(best, owner[after], out.done[after])
    return best


def switches(req: Requests, out: Outcome, changed_at: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per population client, from `changed_at` on: its first try to the new target, and its
    last try to the old one (-inf: none), each at the time it went (a retry after a
    blackholed try goes a timeout or more after its request)."""
    owner = req.owner
    first_new = np.full(n, np.inf)
    new = out.new_at >= changed_at
    np.minimum.at(first_new, owner[new], out.new_at[new])
    last_old = np.full(n, -np.inf)
    old = out.old_at >= changed_at
    np.maximum.at(last_old, owner[old], out.old_at[old])
    return first_new, last_old


def targets_counts(req: Requests, out: Outcome, pop: Population, changed_at: float,
                   seconds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cohort and second, the session clients' first tries to the previous target (the old
    balancer from `changed_at` on), to the current one, and the failed tries a later one rescued."""
    k = len(pop.cohorts)
    previous, current, saved = (np.zeros((k, seconds), dtype=np.int64) for _ in range(3))
    cohort = pop.cohort[req.owner]
    to_previous = out.first_old & (req.times >= changed_at)
    to_current = out.first_sent & ~to_previous  # a first try that failed to resolve went nowhere
    for c in range(k):
        mine = cohort == c
        if not mine.any():
            continue
        previous[c] = per_second(req.times[mine & to_previous], seconds)
        current[c] = per_second(req.times[mine & to_current], seconds)
        at = np.minimum(req.times[mine], seconds - 1).astype(np.int64)
        saved[c] = np.bincount(at, weights=out.rescued[mine], minlength=seconds)[:seconds].astype(np.int64)
    return previous, current, saved


def homes(pop: Population) -> np.ndarray:
    """Per client, its turn among its resolver's clients (in client order): the model's
    Resolver.attach gives the k-th client cache k mod caches."""
    order = np.argsort(pop.resolver, kind="stable")
    rank = np.empty(pop.size, dtype=np.int64)
    counts_ = np.bincount(pop.resolver, minlength=len(pop.resolver_group))
    first = np.concatenate([[0], np.cumsum(counts_)[:-1]])
    rank[order] = np.arange(pop.size) - np.repeat(first, counts_)
    return rank
