"""Pooled connections through a planned DNS change: followed connection by connection.

A client with keep-alive looks the name up only when it opens a connection
(sim.policy.attempts.ConnectionReuse: idle less than `keepalive` and younger
than `max_age` is reused, as in the model). While the old balancer keeps
serving, a connection opened to it keeps carrying the client's requests after
every cache has the new record: the client reaches the new target at its first
connection opened after its resolver answers the new value (`opens`), and
with a stub cache that can hold answers, after its stub let go of the old one.

Per client, from the change on, connection by connection: a connection opened
at x (its opening request) ends at whichever comes first of its age limit (the
first request after x + max_age opens the next) and its first idle gap of at
least `keepalive` (requests are Poisson at rate r: the number of short gaps
before it is geometric with success chance e^(-r k), each short gap an
exponential cut at k; summed exactly when few, by their normal law when many;
the next request after the idle close opens the next). The connection open at
the change is taken from steady state as the engine's resets take it: its last
use the last request before the change, its age uniform on the age limit.
Under a traffic fault the gaps follow the intensity (`last_short`): within each
stretch of constant intensity as above at that rate, an idle gap that reaches the
stretch's end carried into the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.fast.dns import WITHIN_TTL
from sim.fast.intensity import Intensity
from sim.fast.population import Cohort

MAX_CONNECTIONS = 10_000
EXACT_SUM = 32  # at most this many short gaps are summed one by one


@dataclass(frozen=True)
class Drain:
    """Per client of a pooled cohort after a planned change: its first request on a connection
    opened with the new answer (`switch`, inf: none in the run), its last request to the old
    target (`last`: the one before its switch), the intensity measure of its idle gaps between
    connections to the old target after the change (`idle`: no requests there), and the
    requests that opened those connections (`opened`: whose, when)."""

    switch: np.ndarray
    last: np.ndarray
    idle: np.ndarray
    opened: tuple[np.ndarray, np.ndarray]


def density(shape: Intensity, r: float, k: float, seconds: int) -> np.ndarray:
    """Per second, requests on an open connection per unit of Poisson intensity: its gaps are
    all under k, so they come every E[gap | gap < k] = 1/l - k p / (1 - p) (l = r g, p = e^(-l k))
    and not every 1/l."""
    lam = r * shape.g[:seconds]
    p = np.exp(-lam * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        short = 1.0 / lam - k * p / (1.0 - p)
        out = (1.0 / lam) / short
    return np.where((lam > 0) & (p > 0) & (p < 1), out, 1.0)


def switches(cohort: Cohort, shape: Intensity, changed_at: float, opens: np.ndarray, stub: np.ndarray,
             rng: np.random.Generator) -> Drain:
    """Per member of `cohort` (keepalive > 0): its first request on a connection opened with
    the new answer (inf: none in the run), and its request just before that one, the last on
    a connection to the old target (the one before the idle gap that closed it, or before its
    age limit). `opens`: when each one's resolver answers the new value; `stub`: when its
    stub's old answer expires (as steady state finds it at the change)."""
    k, age, r = cohort.reuse.keepalive, cohort.reuse.max_age, cohort.rate
    n = len(opens)
    end = shape.end
    x, before = first_open_after(changed_at, k, age, r, shape, n, rng)
    holds = cohort.stub.kind not in WITHIN_TTL
    stub_new = np.zeros(n, dtype=bool)
    stub_exp = stub.copy() if holds else np.full(n, -np.inf)
    out, idle = np.full(n, np.inf), np.zeros(n)
    who, when = [], []
    pending = np.flatnonzero(x < end)
    for _ in range(MAX_CONNECTIONS):
        if len(pending) == 0:
            break
        now = x[pending]
        from_stub = now < stub_exp[pending]
        new = np.where(from_stub, stub_new[pending], now >= opens[pending])
        if holds:
            fetched = ~from_stub
            idx = pending[fetched]
            left = np.where(new[fetched], np.inf, opens[idx] - now[fetched])
            stub_exp[idx] = now[fetched] + cohort.stub.lifetimes_for(left, rng)
            stub_new[idx] = new[fetched]
        out[pending[new]] = now[new]
        keep = pending[~new]
        # A connection opened to the old target after the change: the gap before it holds no request.
        idle[keep] += shape.measure(np.maximum(before[keep], changed_at), x[keep])
        who.append(keep)
        when.append(x[keep])
        x[keep], before[keep] = _next_open_after(x[keep], x[keep], k, age, r, shape, rng)
        pending = keep[x[keep] < end]
    opened = (np.concatenate(who), np.concatenate(when)) if who else (np.empty(0, dtype=np.int64), np.empty(0))
    return Drain(out, before, idle, opened)


def first_open_after(at: float, k: float, age: float, r: float, shape: Intensity, n: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per client, its first request at or after `at` that opens a connection (the connection
    open at `at` carries the requests before it), and the request before that one. The model primes each connection at time 0
    (its last use an exponential wait back, opened uniformly between the age limit and that
    use) and runs from there; so here, from max(0, at - age): a connection primed there has
    aged out by `at`, and the one open at `at` is followed from its opening. Taken from steady
    state at `at` (its age uniform on the age limit), connections were older than the model's
    where `at` comes less than an age limit into the run or idle closes renew them: with
    requests every 20 s, a 30 s keepalive, a 3 min limit and a surge from 50 s, the pooled
    clients left the old balancer at 185 s on average against the model's 218 s.
    No age limit: only the last use matters, and `at` is where it is drawn."""
    start = max(0.0, at - age) if math.isfinite(age) else at
    t0 = np.full(n, start)
    last = shape.last_before(t0, r, rng)
    idle = start - last
    # No age limit: any opening time at or before its last use (-inf made first - opened < age
    # read inf < inf, so the connection open at the change was taken for closed).
    opened = last - rng.random(n) * np.maximum(age - idle, 0.0) if math.isfinite(age) else last.copy()
    first = shape.next_after(t0, r, rng)
    alive = (first - last < k) & (first - opened < age)
    # The connection open at `start` carries requests until the next one opens.
    carried, carried_before = _next_open_after(opened, first, k, age, r, shape, rng)
    x, before = np.where(alive, carried, first), np.where(alive, carried_before, last)
    pending = np.flatnonzero(x < at)
    for _ in range(MAX_CONNECTIONS):
        if len(pending) == 0:
            break
        x[pending], before[pending] = _next_open_after(x[pending], x[pending], k, age, r, shape, rng)
        pending = pending[x[pending] < at]
    return x, before

def next_open(opened: np.ndarray, used: np.ndarray, k: float, age: float, r: float, shape: Intensity,
               rng: np.random.Generator) -> np.ndarray:
    """The request that opens the next connection after one opened at `opened` and used at
    `used` (a request): its age limit, or its first idle gap of at least k, whichever first."""
    return _next_open_after(opened, used, k, age, r, shape, rng)[0]


def _next_open_after(opened: np.ndarray, used: np.ndarray, k: float, age: float, r: float, shape: Intensity,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """next_open, and the request before it: the last on the connection (the idle gap's start,
    or the last before the age limit)."""
    limit = opened + age if math.isfinite(age) else np.full(len(opened), shape.end)
    used_last = last_short(used, k, r, shape, limit, rng)
    idle = shape.next_after(used_last + k, r, rng)
    if not math.isfinite(age):
        return idle, used_last
    by_age = opened + age < used_last
    aged, aged_before = _after_age(np.maximum(opened + age, used), used, k, r, shape, rng)
    return np.where(by_age, aged, idle), np.where(by_age, aged_before, used_last)


def _after_age(at: np.ndarray, used: np.ndarray, k: float, r: float, shape: Intensity,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The first request after the age limit `at` of a connection (last known use `used`)
    whose first long idle gap comes later, and the request before it: the gap around `at` is
    short, so its parts are drawn as a gap known to be under k (`_straddling`, at the rate
    there), not a fresh exponential (with requests every 20 s and a 30 s keepalive the wait
    is 8.7 s on average, not 20 s)."""
    lam = r * shape.g[np.clip(np.asarray(at, dtype=np.int64), 0, len(shape.g) - 1)] if len(at) else np.zeros(0)
    out = shape.next_after(at, r, rng)  # no requests there (a factor of 0): the next after it
    before = np.array(used, dtype=float)
    live = np.flatnonzero((lam > 0) & np.isfinite(at))
    for rate in np.unique(lam[live]):
        mine = live[lam[live] == rate]
        back, ahead = _straddling(float(rate), k, len(mine), rng)
        out[mine] = at[mine] + ahead
        before[mine] = np.maximum(at[mine] - back, used[mine])
    return np.where(out < shape.end, out, np.inf), before


def last_short(used: np.ndarray, k: float, r: float, shape: Intensity, limit: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """From a request at `used`: the last request before the first idle gap of at least k
    (inf: none before `limit`, the connection's age limit or the run's end). Requests are
    Poisson at r times the traffic factor: within a stretch of one factor, the short gaps
    are summed as a geometric number of cut exponentials at that rate; a sum that runs past
    the stretch's end leaves the client there with an idle time drawn as the exponential
    cut at k, and an idle gap open at the end carries into the next stretch. Before this,
    the gaps were drawn at the base rate only: a surge's pooled connections closed idle as
    often as at base traffic, and left the old balancer a minute early (docs/fast.md)."""
    n = len(used)
    if shape.flat:
        p = math.exp(-r * k)
        if p < 1e-12:
            return np.full(n, np.inf)  # never idle that long
        short = rng.geometric(p, n) - 1  # gaps shorter than k before the first that is not
        return used + _sum_short_gaps(short, k, r, p, rng)
    breaks = np.flatnonzero(np.diff(shape.g) != 0).astype(float) + 1.0
    out = np.full(n, np.inf)
    last, t = used.copy(), used.copy()  # the last request, and how far each client is followed
    pending = np.flatnonzero(np.isfinite(used) & (used < limit) & (used < shape.end))
    for _ in range(len(breaks) + 2):
        if len(pending) == 0:
            break
        at, lt = t[pending], last[pending]
        j = np.searchsorted(breaks, at, side="right")
        b = np.where(j < len(breaks), breaks[np.minimum(j, len(breaks) - 1)], np.inf)
        lam = r * shape.g[np.clip(at.astype(np.int64), 0, len(shape.g) - 1)]
        with np.errstate(divide="ignore"):
            wait = np.where(at > lt, rng.exponential(1.0, len(at)) / lam, 0.0)  # to the next request
        closed = (at + wait >= lt + k) & (lt + k <= b)
        out[pending[closed]] = lt[closed]
        request = ~closed & (at + wait < b)
        lt = np.where(request, at + wait, lt)
        ends, before = np.full(len(at), np.nan), np.full(len(at), np.nan)
        ends[request], before[request] = _short_in(lt[request], k, lam[request], b[request], rng)
        done = request & (ends + k <= b)
        out[pending[done]] = ends[done]
        # Past the stretch's end: the last short gap's end if the long gap that follows reaches
        # past it (the process after the end is drawn afresh at the next rate), else the last
        # request before the end.
        over = request & ~done
        lt = np.where(over, np.where(ends < b, ends, before), lt)
        t[pending], last[pending] = b, lt
        keep = ~(closed | done)
        pending = pending[keep & (b < limit[pending]) & (b < shape.end)]
    return out


def _short_in(used: np.ndarray, k: float, lam: np.ndarray, b: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """From requests at `used` at rates `lam`, followed up to `b`: the end of the short gaps
    (each under k) before the first long one (inf where the rate makes a long gap hopeless),
    and the last request before `b` where that end is past it: the partial sums' last when
    few are summed, else `b` less the backward time of a gap straddling `b` known to be short
    (density e^(-lam a) - e^(-lam k) on [0, k))."""
    n = len(used)
    ends, before = np.full(n, np.inf), np.full(n, np.nan)
    p = np.exp(-lam * k)
    for q in np.unique(p):
        mine = np.flatnonzero(p == q)
        rate = float(lam[mine[0]])
        if q >= 1.0:
            ends[mine] = used[mine]  # no requests: the first gap is long
            continue
        count = rng.geometric(q, len(mine)) - 1 if q >= 1e-12 else np.full(len(mine), np.iinfo(np.int64).max)
        u = rng.random((len(mine), EXACT_SUM))
        gaps = -np.log1p(-u * (1.0 - q)) / rate
        steps = used[mine, None] + np.cumsum(np.where(np.arange(EXACT_SUM) < count[:, None], gaps, 0.0), axis=1)
        within = np.where(steps < b[mine, None], steps, -np.inf).max(axis=1)
        many = count > EXACT_SUM
        if q >= 1e-12:
            ends[mine] = used[mine] + _sum_short_gaps(count, k, rate, q, rng)
        straddle = b[mine] - _straddling(rate, k, len(mine), rng)[0]
        last = np.where(many & (steps[:, -1] < b[mine]), np.maximum(straddle, steps[:, -1]), within)
        before[mine] = np.maximum(last, used[mine])
    return ends, before


def _straddling(lam: float, k: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The backward and forward parts (A, F) of the gap around a moment, known to be under k:
    independent exponentials given A + F < k. The gap S is Gamma(2, lam) cut at k and A
    uniform on it, each with density e^(-lam a) - e^(-lam k) on [0, k). Drawn by rejection:
    A from the exponential cut at k when lam k >= 1 (then F the exponential cut at k - A), S
    from the density s on [0, k) otherwise (either way at least a third kept each round)."""
    back, ahead = np.full(n, np.nan), np.full(n, np.nan)
    todo = np.arange(n)
    cut = -math.expm1(-lam * k)
    while len(todo):
        m = len(todo)
        if lam * k >= 1.0:
            a = -np.log1p(-rng.random(m) * cut) / lam
            ok = rng.random(m) < -np.expm1(-lam * (k - a))
            f = -np.log1p(rng.random(m) * np.expm1(-lam * (k - a))) / lam
        else:
            gap = k * np.sqrt(rng.random(m))
            ok = rng.random(m) < np.exp(-lam * gap)
            a = gap * rng.random(m)
            f = gap - a
        back[todo[ok]], ahead[todo[ok]] = a[ok], f[ok]
        todo = todo[~ok]
    return back, ahead

def _sum_short_gaps(count: np.ndarray, k: float, r: float, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sums of `count` exponential gaps (rate r) each cut at k."""
    few = np.minimum(count, EXACT_SUM)
    u = rng.random((len(count), EXACT_SUM))
    gaps = -np.log1p(-u * (1.0 - p)) / r
    exact = np.where(np.arange(EXACT_SUM) < few[:, None], gaps, 0.0).sum(axis=1)
    # Moments of Exp(r) cut at k: mean 1/r - k p / (1 - p); E[X^2] from the same integral.
    mean = 1.0 / r - k * p / (1.0 - p)
    second = (2.0 / r**2 - (k * k + 2.0 * k / r + 2.0 / r**2) * p) / (1.0 - p)
    sd = math.sqrt(max(second - mean * mean, 0.0))
    many = count > EXACT_SUM
    normal = count * mean + np.sqrt(count) * sd * rng.standard_normal(len(count))
    return np.where(many, np.maximum(normal, 0.0), exact)


def reopened_after(cohort: Cohort, shape: Intensity, opened: np.ndarray, new_from: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Per client: a connection opened at `opened` with the old answer (the first request
    after a balancer fault's end, before the client's answer turned); its first request on a
    connection opened at or after `new_from`, from which it looks up the new answer (inf: none
    in the run). The connection carries every request until its age limit or an idle close."""
    k, age, r = cohort.reuse.keepalive, cohort.reuse.max_age, cohort.rate
    x = opened.copy()
    out = np.full(len(x), np.inf)
    pending = np.flatnonzero(x < shape.end)
    for _ in range(MAX_CONNECTIONS):
        if len(pending) == 0:
            break
        now = x[pending]
        new = now >= new_from[pending]
        out[pending[new]] = now[new]
        keep = pending[~new]
        x[keep] = next_open(x[keep], x[keep], k, age, r, shape, rng)
        pending = keep[x[keep] < shape.end]
    return out
