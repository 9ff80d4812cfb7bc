"""Capacity and queueing by formula, per second: what the fast engine does not simulate request by request.

- A balancer endpoint admits `capacity` requests per whole second (as the
  model's token bucket with a one-second window); the rest are shed. The
  requests of a second are split over the endpoint's nodes at random.
- A backend instance is an M/M/c queue at each second's arrival rate (Erlang
  C): a request waits with probability C(c, a), then an exponential time of
  rate c mu - lambda. Exact for random balancing and exponential service;
  round robin smooths arrivals (E_n/M/c), which waits less, so at high load the
  fast engine's latency tail is an upper bound there (docs/model.md).
"""

from __future__ import annotations

import math

import numpy as np


def shed(counts: np.ndarray, nodes: int, capacity: float, rng: np.random.Generator) -> np.ndarray:
    """Requests shed per second when `counts` arrive at `nodes` nodes of `capacity` each."""
    out = np.zeros_like(counts)
    busy = np.flatnonzero(counts + 8.0 * np.sqrt(counts) + 8.0 >= capacity)
    if len(busy) == 0:
        return out
    left = counts[busy].copy()
    for k in range(nodes, 0, -1):
        here = rng.binomial(left, 1.0 / k) if k > 1 else left
        out[busy] += np.maximum(here - int(capacity), 0)
        left = left - here
    return out


def erlang_c(servers: int, offered: np.ndarray) -> np.ndarray:
    """Probability of waiting in M/M/c with `offered` = lambda / mu erlangs (1 where it is overloaded)."""
    a = np.asarray(offered, dtype=float)
    out = np.ones_like(a)
    ok = a < servers
    # Erlang B by its recurrence (stable for large c), then C from B.
    b = np.ones(int(ok.sum()))
    aa = a[ok]
    for k in range(1, servers + 1):
        b = aa * b / (k + aa * b)
    rho = aa / servers
    out[ok] = b / (1.0 - rho + rho * b)
    return out


def latencies(
    ok: np.ndarray, instances: int, workers: int, service, rtt: float, rng: np.random.Generator, n: int = 200_000  # type: ignore[no-untyped-def]
) -> np.ndarray:
    """A sample of successful requests' latencies (seconds): rtt + wait + service."""
    total = int(ok.sum())
    if total == 0:
        return np.empty(0)
    n = min(n, total)
    seconds = rng.choice(len(ok), size=n, p=ok / total)
    mean = float(service.mean)
    lam = ok[seconds] / max(instances, 1)
    mu = 1.0 / mean if mean > 0 else math.inf
    wait = np.zeros(n)
    if math.isfinite(mu):
        p_wait = erlang_c(workers, lam / mu)
        drain = np.maximum(workers * mu - lam, mu * 1e-3)  # an overloaded second waits long, not forever
        waiting = rng.random(n) < p_wait
        wait[waiting] = rng.exponential(1.0 / drain[waiting])
    return rtt + wait + np.asarray(service.sample(rng, n), dtype=float)
