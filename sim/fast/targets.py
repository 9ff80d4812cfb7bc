"""Where requests go after a change: the previous target or the current one (the model's targets).

From the moment the service first points elsewhere (`changed_at`: a planned
`dns_change` or `address_move`, or a failover's first action), a client's first
attempts go to the previous target until its own switch, and to the current one
after. The engine knows per client until when its requests go to the previous
target (`until`: its old answer's last expiry after a DNS change, the address's
move otherwise), which request first reaches the current one (`switched`), and
the requests counted one by one (a pooled connection reset at its first use
after an address move). Requests are Poisson, so the number a client sends to
the previous target in [changed_at, until) is Poisson: per second, a Poisson
count of the intensity inside the clients' windows; and the client's
`last_previous_at` is its last request before `until` if that falls after the
change (exact where the stub never outlives the resolver's answer; for stubs
that hold answers, the refreshes that got the old answer are taken as any
other request, docs/fast.md).

Per second and cohort: first attempts to the previous target, to the current
one (a Poisson count of the rest of the cohort's intensity), and tries that
failed and were rescued by a later one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.fast.intensity import Intensity, window_mass
from sim.fast.population import Population


@dataclass(frozen=True)
class OneByOne:
    """Events counted one by one: whose (client index), when, and how many each stands for."""

    owner: np.ndarray
    at: np.ndarray
    count: np.ndarray

    @classmethod
    def none(cls) -> OneByOne:
        return cls(np.empty(0, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64))


@dataclass(frozen=True)
class Pooled:
    """Pooled clients' windows after a planned change (sim.fast.pooled.Drain): per client its
    last request to the previous target where known (NaN: drawn), the share of its window's
    intensity outside its idle gaps between connections, and per cohort index the requests
    per unit of intensity on an open connection, per second (sim.fast.pooled.density)."""

    last: np.ndarray
    busy: np.ndarray
    density: dict[int, np.ndarray]


@dataclass(frozen=True)
class Moves:
    """Per client when it moved (NaN: never), and the targets table (sim.results TARGETS)."""

    switched_at: np.ndarray
    last_previous_at: np.ndarray
    table: pd.DataFrame


def moves(pop: Population, shape: Intensity, seconds: int, changed_at: float, until: np.ndarray,
          switched: np.ndarray, previous: OneByOne, rescued: OneByOne, rng: np.random.Generator,
          pooled: Pooled | None = None) -> Moves:
    """Per client, `until`: until when its first attempts go to the previous target (from
    `changed_at` on); `switched`: its first request that reaches the current target (inf:
    none in the run); `previous`: first attempts to the previous target counted one by one
    (their own times, on top of the window); `rescued`: failed tries a later one rescued."""
    n, end = pop.size, shape.end
    last = np.full(n, -np.inf)
    lo = hi = np.full(n, end)
    if math.isfinite(changed_at) and changed_at < end:
        lo = np.full(n, changed_at)
        hi = np.maximum(np.minimum(until, end), lo)
        # The last request before the window's end, if it falls in the window: one draw per
        # client, where drawing every request would cost a day's worth for a cache kept forever.
        before = shape.last_before(hi, pop.rate, rng)
        last = np.where(before >= lo, before, -np.inf)
        if pooled is not None:
            last = np.where(np.isnan(pooled.last), last, np.where(pooled.last >= lo, pooled.last, -np.inf))
        np.maximum.at(last, previous.owner, previous.at)
        switched_at = np.where(np.isfinite(switched) & (switched < end), switched, np.nan)
    else:
        switched_at = np.full(n, np.nan)
    last_previous_at = np.where(np.isfinite(last), last, np.nan)
    return Moves(switched_at, last_previous_at, _table(pop, shape, seconds, (lo, hi), previous, rescued, rng, pooled))


def _table(pop: Population, shape: Intensity, seconds: int, window: tuple[np.ndarray, np.ndarray],
           previous: OneByOne, rescued: OneByOne, rng: np.random.Generator, pooled: Pooled | None) -> pd.DataFrame:
    """Per second and cohort, first attempts to the previous target are a Poisson count of the
    cohort's intensity inside its members' windows, plus those counted one by one; to the
    current one, a Poisson count of the rest (drawing all and subtracting the previous ones
    would leave noise where everyone goes to the previous)."""
    g = shape.g[:seconds]
    lo, hi = window
    k = len(pop.cohorts)
    to_previous = np.zeros((k, seconds), dtype=np.int64)
    to_current = np.zeros((k, seconds), dtype=np.int64)
    saved = np.zeros((k, seconds), dtype=np.int64)
    for c, cohort in enumerate(pop.cohorts):
        idx = cohort.members
        # Clipped: the mass is a difference of prefix sums, a rounding below zero where it is none.
        rate = pop.rate[idx] if pooled is None else pop.rate[idx] * pooled.busy[idx]
        stale = np.maximum(window_mass(rate, lo[idx], hi[idx], seconds) * g, 0.0) if len(idx) else np.zeros(seconds)
        if pooled is not None and c in pooled.density:
            stale = stale * pooled.density[c]
        reset = _per_second(previous.at[pop.cohort[previous.owner] == c], seconds)
        to_previous[c] = rng.poisson(stale) + reset
        to_current[c] = rng.poisson(np.maximum(cohort.rate * len(idx) * g - stale - reset, 0.0))
        here = pop.cohort[rescued.owner] == c
        saved[c] = _per_second(rescued.at[here], seconds, rescued.count[here])
    return pd.DataFrame(
        {
            "t": np.tile(np.arange(seconds, dtype=np.int64), k),
            "cohort": np.repeat(np.array([c.name for c in pop.cohorts], dtype=object), seconds),
            "to_previous": to_previous.reshape(-1),
            "to_current": to_current.reshape(-1),
            "rescued": saved.reshape(-1),
        }
    )


def _per_second(times: np.ndarray, seconds: int, weights: np.ndarray | None = None) -> np.ndarray:
    """How many of `times` fall in each second (weighted), the last second taking any later."""
    if len(times) == 0:
        return np.zeros(seconds, dtype=np.int64)
    at = np.minimum(times, seconds - 1).astype(np.int64)
    return np.bincount(at, weights=weights, minlength=seconds)[:seconds].astype(np.int64)
