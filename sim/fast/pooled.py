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
Gaps are drawn in plain time: a traffic fault's factor is not applied to them.
"""

from __future__ import annotations

import math

import numpy as np

from sim.fast.dns import WITHIN_TTL
from sim.fast.intensity import Intensity
from sim.fast.population import Cohort

MAX_CONNECTIONS = 10_000
EXACT_SUM = 32  # at most this many short gaps are summed one by one


def switches(cohort: Cohort, shape: Intensity, changed_at: float, opens: np.ndarray, stub: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """Per member of `cohort` (keepalive > 0): its first request on a connection opened with
    the new answer (inf: none in the run). `opens`: when each one's resolver answers the new
    value; `stub`: when its stub's old answer expires (as steady state finds it at the change)."""
    k, age, r = cohort.reuse.keepalive, cohort.reuse.max_age, cohort.rate
    n = len(opens)
    end = shape.end
    c = np.full(n, changed_at)
    last = shape.last_before(c, r, rng)
    # No age limit: any opening time at or before its last use (-inf made first - opened < age
    # read inf < inf, so the connection open at the change was taken for closed).
    opened = last - rng.random(n) * age if math.isfinite(age) else last.copy()
    first = shape.next_after(c, r, rng)
    alive = (first - last < k) & (first - opened < age)
    # The connection open at the change carries requests until the next one opens.
    x = np.where(alive, _next_open(opened, first, k, age, r, shape, rng), first)
    holds = cohort.stub.kind not in WITHIN_TTL
    stub_new = np.zeros(n, dtype=bool)
    stub_exp = stub.copy() if holds else np.full(n, -np.inf)
    out = np.full(n, np.inf)
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
        x[keep] = _next_open(x[keep], x[keep], k, age, r, shape, rng)
        pending = keep[x[keep] < end]
    return out


def _next_open(opened: np.ndarray, used: np.ndarray, k: float, age: float, r: float, shape: Intensity,
               rng: np.random.Generator) -> np.ndarray:
    """The request that opens the next connection after one opened at `opened` and used at
    `used` (a request): its age limit, or its first idle gap of at least k, whichever first."""
    n = len(opened)
    p = math.exp(-r * k)
    if p < 1e-12:
        last_short = np.full(n, np.inf)  # never idle that long
    else:
        short = rng.geometric(p, n) - 1  # gaps shorter than k before the first that is not
        last_short = used + _sum_short_gaps(short, k, r, p, rng)
    idle = shape.next_after(last_short + k, r, rng)
    if not math.isfinite(age):
        return idle
    by_age = opened + age < last_short
    return np.where(by_age, shape.next_after(np.maximum(opened + age, used), r, rng), idle)


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
        x[keep] = _next_open(x[keep], x[keep], k, age, r, shape, rng)
        pending = keep[x[keep] < shape.end]
    return out
