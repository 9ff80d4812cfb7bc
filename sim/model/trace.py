"""The model's random inputs for one replication, as the lab replays them.

The sharpest test of a model is to drive it and the real system with the same
inputs (trace-driven validation: Law, *Simulation Modeling and Analysis*, 5th
ed., section 5.6.1). Here the inputs are random draws, and the lab takes them
from the model's own streams for the same seed:

- which resolver each client uses (the "clients" stream), and in a farm which
  of its caches is the client's own;
- the state a random moment of steady state finds: each resolver's cached
  records and when they expire, each client's stub cache, address rotation
  and open connection (the "priming" stream);
- every cohort's arrivals, request by request (the "arrivals" seeds, drawn
  with sim.policy.sampling.arrival_blocks on both sides);
- each resolver's cache lifetimes, answer by answer (its own seed: the
  stretching forwarders draw the same extras as the model's resolvers); a
  farm's picks of a cache come from the same seed (the lab's front draws them
  with sim.policy.resolver.Farm, query by query, as the model does);
- each client's restarts (its cohort's restart stream, drawn as the model's
  events draw it), and what the last restart before time 0 undid;
- the health checker's phase and the plan's delays (the "failover" stream),
  and which instances an instance fault takes (the "faults" stream).

So a lab replication and the model's replication of the same seed differ only
by what the real processes do differently (timing, whole-second TTLs,
sockets). The run layer hands the `Trace` (sim.replication) to the lab; the
lab never imports the model.
"""

from __future__ import annotations

import numpy as np

from sim.model.dns import SERVICE
from sim.model.engine import Replication, Strategy
from sim.model.lifecycle import restart_rng, restart_start, restart_times, undo_before_start
from sim.replication import CachedRecord, ClientState, Trace
from sim.scenario import models as m


def trace(scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence) -> Trace:
    """Build (not run) the model's replication of `seed` and read its draws."""
    rep = Replication(scenario, strategy, seed)
    index = {id(r): i for i, r in enumerate(rep.resolvers)}
    balancers = set(rep.balancers)
    farms = []
    for resolver in rep.resolvers:
        farm = []
        for cache in resolver.caches:
            records = []
            for key, _value, expires in cache.items():
                if key == SERVICE:
                    records.append(CachedRecord("service", False, expires))
                elif isinstance(key, str) and key in balancers:
                    records.append(CachedRecord(key, True, expires))
            farm.append(records)
        farms.append(farm)
    # Restarts: the model draws them when it runs, from each cohort's own stream; the
    # trace makes the same draws (sim.model.lifecycle), applies what the restart before
    # time 0 undid to the state read below, and lists each client's restarts.
    restarts: dict[int, list[float]] = {}
    for i, (cohort, members) in enumerate(rep.cohorts):
        if cohort.restarts is None:
            continue
        rng = restart_rng(rep.arrival_seeds[i])
        since, until, idle = restart_start(cohort, len(members), rng)
        for client, age, last in zip(members, since.tolist(), idle.tolist(), strict=True):
            undo_before_start(client, age, last)
        for client, times in zip(members, restart_times(cohort.restarts, until, rng, rep.end), strict=True):
            restarts[client.id] = times
    clients = []
    for c in rep.clients:
        # an answer the model holds expired is kept for a stub with a grace period
        primed = c.stub_value is not None and (c.stub_expires > 0.0 or c.cohort.grace > 0 and c.stub_expires > -np.inf)
        clients.append(ClientState(
            index[id(c.resolver)], float(c.stub_expires) if primed else None, int(c.rotation),
            (float(c.conn_opened), float(c.conn_last)) if c.conn is not None else None,
            c.resolver.homes.get(c.id, 0), restarts.get(c.id, [])))
    return Trace(clients, [farm[0] for farm in farms], list(rep.arrival_seeds), list(rep.resolver_seeds),
                 rep.rng["failover"], rep.rng["faults"], farms)
