"""`multi_a`: both balancers' addresses in the answer, followed request by request.

The answer (active, standby) is rotated by each client's resolution count, as
in the model: attempt a of a request goes to address (rotation + a) mod 2, a
stub refresh moves rotation on, a pooled connection keeps its address. A
client with `address_mode: next` moves to the other address at once when a
connect is refused, so it never fails (a blackholed balancer with it is
refused by the engine). Whether a request reaches the dead balancer thus
depends on the client's own history, which no window formula captures: the
clients that can fail are followed request by request from the fault until
their switch to the new answer (the standby alone) or the end of the fault;
there are few such requests, and every client is a numpy lane.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sim.fast.intensity import Intensity
from sim.fast.population import Population, stub_primed_expiry

MAX_REQUESTS = 200_000


def follow(pop: Population, shape: Intensity, fault: float, until: np.ndarray, ttl: float, rotate: bool,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner, issue time) of every failed request, and each client's first success after its first failure."""
    n = pop.size
    recovered = np.full(n, np.inf)
    owners, times = [], []
    # Followed clients (sessions, a farm's Poisson clients) are sim.fast.lookups'.
    stub = stub_primed_expiry(replace(pop, cohorts=[c for c in pop.cohorts if not c.followed]), ttl, fault, rng)
    for cohort in pop.cohorts:
        idx = cohort.members
        if len(idx) == 0 or cohort.followed:
            continue
        # address_mode next moves on from a refused connect at once, but not from a pooled
        # connection that breaks (as the model): such a client fails once if its pooled
        # connection was to the dead balancer.
        moves_on = bool(getattr(cohort, "next_address", False))
        if moves_on and cohort.reuse.keepalive <= 0:
            continue
        k = len(idx)
        rotation = rng.integers(0, 2, k)
        expires = stub[idx].copy()
        keep = cohort.reuse.keepalive > 0
        # A pooled connection at the fault: its address is the one the client last used.
        conn = np.where(keep, rotation % 2, -1) if keep else np.full(k, -1)
        last = shape.last_before(np.full(k, fault), cohort.rate, rng) if keep else np.full(k, -np.inf)
        opened = last - rng.random(k) * (cohort.reuse.max_age if np.isfinite(cohort.reuse.max_age) else 0.0)
        alive = keep & (fault - last < cohort.reuse.keepalive)
        conn = np.where(alive, conn, -1)
        # A pooled connection is reused without looking the name up: the stub was last
        # filled when that connection opened, and has often expired since.
        if keep:
            expires = np.where(alive, opened + cohort.stub.lifetimes_for(rng.random(k) * ttl, rng), expires)
        t = shape.next_after(np.full(k, fault), cohort.rate, rng)
        failed_once = np.zeros(k, dtype=bool)
        lane = np.arange(k)
        for _ in range(MAX_REQUESTS):
            active = lane[t[lane] < until[idx[lane]]]
            if len(active) == 0:
                break
            now = t[active]
            ok = np.zeros(len(active), dtype=bool)
            for attempt in range(cohort.attempts):
                todo = ~ok
                lanes, at = active[todo], now[todo]
                reuse = (conn[lanes] >= 0) & (at - last[lanes] < cohort.reuse.keepalive) & (at - opened[lanes] < cohort.reuse.max_age)
                conn[lanes[~reuse]] = -1
                refresh = ~reuse & (at >= expires[lanes])
                rotation[lanes[refresh]] += 1
                expires[lanes[refresh]] = at[refresh] + cohort.stub.lifetimes_for(rng.random(int(refresh.sum())) * ttl, rng)
                start = rotation[lanes] if rotate else 0
                address = np.where(reuse, conn[lanes], (start + attempt) % 2)
                up = (address == 1) | (~reuse & moves_on)  # index 0 is the dead active balancer
                opened[lanes[up & ~reuse]] = at[up & ~reuse]
                conn[lanes] = np.where(up & keep, 1, -1)
                ok[todo] = up
            last[active] = now
            bad = ~ok
            owners.append(idx[active[bad]])
            times.append(now[bad])
            first_ok_after = ok & failed_once[active] & ~np.isfinite(recovered[idx[active]])
            recovered[idx[active[first_ok_after]]] = now[first_ok_after]
            failed_once[active[bad]] = True
            t[active] = shape.next_after(now, cohort.rate, rng)
        # Still failing when the switch or the fault's end came: the next request succeeds.
        pending = failed_once & ~np.isfinite(recovered[idx])
        recovered[idx[pending]] = t[pending]
    owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)
    issued = np.concatenate(times) if times else np.empty(0)
    return owner.astype(np.int64), issued, recovered
