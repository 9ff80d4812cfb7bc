"""The model's random inputs for one replication, replayed by the lab.

The sharpest test of a model is to drive it and the real system with the same
inputs (trace-driven validation: Law, *Simulation Modeling and Analysis*, 5th
ed., section 5.6.1). Here the inputs are random draws, and the lab takes them
from the model's own streams for the same seed:

- which resolver each client uses (the "clients" stream);
- the state a random moment of steady state finds: each resolver's cached
  records and when they expire, each client's stub cache, address rotation
  and open connection (the "priming" stream);
- every cohort's arrivals, request by request (the "arrivals" seeds, drawn
  with sim.policy.sampling.arrival_blocks on both sides);
- each resolver's cache lifetimes, answer by answer (its own seed: the
  stretching forwarders draw the same extras as the model's resolvers);
- the health checker's phase and the plan's delays (the "failover" stream),
  and which instances an instance fault takes (the "faults" stream).

So a lab replication and the model's replication of the same seed differ only
by what the real processes do differently (timing, whole-second TTLs,
sockets), and `failover-sim compare` can pair them (sim.compare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.model.dns import SERVICE
from sim.model.engine import Replication
from sim.scenario import models as m


@dataclass
class Record:
    """A cached record at time 0: ``service`` (the service name's answer) or a balancer's name."""

    name: str
    balancer: bool
    expires: float  # scenario seconds from time 0; inf for a cache that never expires


@dataclass
class ClientState:
    resolver: int  # index into the scenario's resolvers, group by group
    stub_expires: float | None  # None: the stub cache is empty at time 0
    rotation: int
    conn: tuple[float, float] | None  # (opened, last used), scenario seconds, when a connection is open


@dataclass
class Trace:
    clients: list[ClientState]
    caches: list[list[Record]]  # per resolver
    arrival_seeds: list[int]  # per cohort, in scenario order
    resolver_seeds: list[int]
    failover: np.random.Generator
    faults: np.random.Generator


def model_trace(scenario: m.Scenario, strategy: str, seed: np.random.SeedSequence) -> Trace:
    """Build (not run) the model's replication of `seed` and read its draws."""
    rep = Replication(scenario, strategy, np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    index = {id(r): i for i, r in enumerate(rep.resolvers)}
    balancers = set(rep.balancers)
    caches = []
    for resolver in rep.resolvers:
        records = []
        for key, _value, expires in resolver.cache.items():
            if key == SERVICE:
                records.append(Record("service", False, expires))
            elif isinstance(key, str) and key in balancers:
                records.append(Record(key, True, expires))
        caches.append(records)
    clients = []
    for c in rep.clients:
        primed = c.stub_value is not None and c.stub_expires > 0.0
        clients.append(ClientState(
            index[id(c.resolver)], float(c.stub_expires) if primed else None, int(c.rotation),
            (float(c.conn_opened), float(c.conn_last)) if c.conn is not None else None))
    return Trace(clients, caches, list(rep.arrival_seeds), list(rep.resolver_seeds), rep.rng["failover"],
                 rep.rng["faults"])


def finite(x: float) -> float | None:
    """JSON for a time that may be infinite (a forever cache, a connection with no age limit)."""
    return None if math.isinf(x) else x
