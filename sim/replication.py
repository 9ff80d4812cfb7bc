"""The engine contract: what one replication of one strategy returns and draws.

Every engine (sim.model, sim.fast, sim.lab) returns a `ReplicationOutput` with
the outcome columns `OUTCOMES`, and draws its random numbers from the streams
`STREAMS`, spawned in that order from the replication's seed, so that two
strategies, or two engines, see the same arrivals and the same client layout
(common random numbers). A `Trace` is the part of a replication's random
inputs that the lab replays: the model builds it (sim.model.trace), the run
layer hands it to the lab, and neither engine imports the other.

Defined here, below the engines, so there is one definition of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "DNS_ERROR",
    "DRAWS",
    "ERROR_5XX",
    "OK",
    "REFUSED",
    "SHED",
    "TIMEOUT",
    "OUTCOMES",
    "STREAMS",
    "CachedRecord",
    "ClientState",
    "ReplicationOutput",
    "Trace",
    "finite",
    "streams",
]

# Outcomes of a request, in the order of the results contract (docs/scenario.md);
# the timeline counts requests by their final outcome under these names.
OUTCOMES: tuple[str, ...] = ("ok", "refused", "timeout", "error_5xx", "dns_error", "shed")
# Their indices, for engines that count outcomes in rows.
OK, REFUSED, TIMEOUT, ERROR_5XX, DNS_ERROR, SHED = range(len(OUTCOMES))

# One stream per purpose, spawned in this order. "failover" last: its own stream, so
# the lab can replay the detection phase and the plan's delays without replaying
# every other control draw. An engine that does not use a stream still spawns it,
# so the ones it uses are the model's.
STREAMS: tuple[str, ...] = (
    "arrivals", "clients", "priming", "dns", "service", "control", "balancing", "faults", "traffic", "failover",
)

# Which draws a seed's streams feed. Runs with the same seed and scenario pair
# replication by replication (failover-sim compare) only when they draw alike:
# bump this when a stream's use changes. 2: per-resolver lifetimes, "failover".
DRAWS = 2


def streams(seed: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """A generator per purpose, from a copy of `seed`: spawning counts children on the
    SeedSequence itself, and a replication of a seed must draw the same whoever used
    that object before."""
    fresh = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key)
    return dict(zip(STREAMS, (np.random.default_rng(s) for s in fresh.spawn(len(STREAMS))), strict=True))


@dataclass
class ReplicationOutput:
    """The tables of one (strategy, replication), in sim.results' columns."""

    metrics: dict[str, float]
    clients: pd.DataFrame
    timeline: pd.DataFrame
    # Per second and cohort: first attempts to the previous and the current
    # target, and failed tries rescued by a later one (sim.results TARGETS);
    # None from an engine that does not track targets yet.
    targets: pd.DataFrame | None = None


@dataclass
class CachedRecord:
    """A resolver's cached record at time 0: the service name's answer (``balancer`` False)
    or a balancer's name."""

    name: str
    balancer: bool
    expires: float  # scenario seconds from time 0; inf for a cache that never expires


@dataclass
class ClientState:
    """A client as a random moment of steady state finds it at time 0."""

    resolver: int  # index into the scenario's resolvers, group by group
    stub_expires: float | None  # None: the stub cache is empty at time 0 (negative: expired, in grace)
    rotation: int
    conn: tuple[float, float] | None  # (opened, last used), scenario seconds, when a connection is open
    home: int = 0  # its own cache in its resolver's farm (sim.policy.resolver.Farm); 0 for one cache
    restarts: list[float] = field(default_factory=list)  # scenario seconds of its process restarts, in order


@dataclass
class Trace:
    """A replication's random inputs, as the lab replays them (trace-driven validation:
    Law, *Simulation Modeling and Analysis*, 5th ed., section 5.6.1)."""

    clients: list[ClientState]
    caches: list[list[CachedRecord]]  # per resolver (a farm's first cache)
    arrival_seeds: list[int]  # per cohort, in scenario order
    resolver_seeds: list[int]
    failover: np.random.Generator
    faults: np.random.Generator
    # per resolver, every cache of its farm (the first is `caches`' entry); empty: one cache each
    farms: list[list[list[CachedRecord]]] = field(default_factory=list)


def finite(x: float) -> float | None:
    """JSON for a time that may be infinite (a forever cache, a connection with no age limit)."""
    return None if math.isinf(x) else x
