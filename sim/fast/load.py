"""Capacity and queueing by formula, per second: what the fast engine does not simulate request by request.

- A balancer endpoint admits `capacity` requests per whole second (as the
  model's token bucket with a one-second window); the rest are shed. The
  requests of a second are split over the endpoint's nodes at random.
- Backend waiting comes from the fleet's queue in each second (sim.fast.fleet,
  sim.fast.queueing): M/M/C/N, exact for random balancing and exponential
  service; under round robin each instance sees Erlang arrivals, E_n/M/C.
"""

from __future__ import annotations

import numpy as np

from sim.fast.queueing import Queue
from sim.scenario.units import Distribution


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


def latencies(
    ok: np.ndarray, queue: Queue, offset: int, service: Distribution, rtt: float, rng: np.random.Generator, n: int = 200_000
) -> np.ndarray:
    """A sample of successful requests' latencies (seconds): wait + service + rtt, the wait
    from the fleet's queue in the request's second (`ok` starts at second `offset`)."""
    total = int(ok.sum())
    if total == 0:
        return np.empty(0)
    n = min(n, total)
    seconds = rng.choice(len(ok), size=n, p=ok / total) + offset
    wait = queue.waits(seconds, rng)
    return rtt + wait + np.asarray(service.sample(rng, n), dtype=float)
