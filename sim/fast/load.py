"""Capacity and queueing by formula, per second: what the fast engine does not simulate request by request.

- A balancer endpoint admits `capacity` requests per whole second (as the
  model's token bucket with a one-second window: it admits while fewer than
  `capacity` are in, so ceil(capacity) of them); the rest are shed. The
  requests of a second are split over the endpoint's nodes at random.
- Node scaling (`scale_delay`) behind a static address: the front's capacity
  grows by a node's when the balancer adds one (`nodes_over_time`); behind a name
  that resolves to the nodes, each node takes its share of the requests by the
  answers clients hold (`shed_by_share`).
- Backend waiting comes from the fleet's queue in each second (sim.fast.fleet,
  sim.fast.queueing): M/M/C/N, exact for random balancing and exponential
  service; under round robin each instance sees Erlang arrivals, E_n/M/C.
"""

from __future__ import annotations

import math

import numpy as np

from sim.fast.queueing import Queue
from sim.policy.scaling import SCALING_CHECK, wants_node
from sim.scenario.units import Distribution


def shed(counts: np.ndarray, nodes: int, capacity: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Requests shed per second when `counts` arrive at `nodes` nodes of `capacity` each
    (one capacity, or one per second)."""
    out = np.zeros_like(counts)
    cap = np.broadcast_to(np.asarray(capacity, dtype=float), counts.shape)
    busy = np.flatnonzero(counts + 8.0 * np.sqrt(counts) + 8.0 >= cap)
    if len(busy) == 0:
        return out
    left = counts[busy].copy()
    # The model admits while fewer than capacity are in: ceil(capacity) (1.5/s admits 2; the
    # floor shed 161 requests against the model's 65, two nodes of 1.5/s, cname_repoint).
    whole = np.ceil(cap[busy]).astype(np.int64)
    for k in range(nodes, 0, -1):
        here = rng.binomial(left, 1.0 / k) if k > 1 else left
        out[busy] += np.maximum(here - whole, 0)
        left = left - here
    return out


def nodes_over_time(offered: np.ndarray, nodes: int, capacity: float, delay: Distribution,
                    rng: np.random.Generator) -> np.ndarray:
    """A balancer's nodes per second under node scaling, as the model's process decides
    (sim.model.background._node_scaling): every SCALING_CHECK seconds from time 0 it looks
    at the requests offered in the last ones (`offered`, per second); above a node's
    capacity per node, and with no node on its way, a node joins after a `delay` draw.
    A node that joins within a second counts for all of it (its capacity is the token
    bucket's for the rest of that second)."""
    seconds = len(offered)
    out = np.full(seconds, nodes, dtype=np.int64)
    for k, at in enumerate(node_joins(offered, nodes, capacity, delay, rng)):
        out[min(int(at), seconds - 1):] = nodes + k + 1
    return out


def node_joins(offered: np.ndarray, nodes: int, capacity: float, delay: Distribution,
               rng: np.random.Generator) -> list[float]:
    """When each node joins under node scaling (`nodes_over_time`), within the run: the
    moments the model publishes the balancer's new node set."""
    seconds = len(offered)
    out: list[float] = []
    joins_at = math.inf
    t = SCALING_CHECK
    while t <= seconds:
        if joins_at <= t:
            nodes += 1
            out.append(joins_at)
            joins_at = math.inf
        lo = int(t - SCALING_CHECK)
        if math.isinf(joins_at) and wants_node(float(offered[lo:int(t)].sum()), nodes, capacity):
            joins_at = t + float(delay.sample(rng, 1)[0])
        t += SCALING_CHECK
    if joins_at < seconds:
        out.append(joins_at)
    return out


def shed_by_share(counts: np.ndarray, shares: np.ndarray, capacity: float, rng: np.random.Generator) -> np.ndarray:
    """Requests shed per second when `counts` arrive at nodes of `capacity` each, node i
    taking the share `shares[:, i]` of its second's requests (rows sum to 1)."""
    out = np.zeros_like(counts)
    whole = int(math.ceil(capacity))  # the model's admissions a second (`shed`)
    left = counts.copy()
    rest = np.ones(len(counts))
    for i in range(shares.shape[1]):
        p = np.divide(shares[:, i], rest, out=np.ones(len(counts)), where=rest > 1e-12)
        here = rng.binomial(left, np.clip(p, 0.0, 1.0)) if i + 1 < shares.shape[1] else left
        out += np.maximum(here - whole, 0)
        left = left - here
        rest = rest - shares[:, i]
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
