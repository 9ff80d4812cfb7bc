"""The discrete-event model (SimPy): the reference engine.

One replication of one strategy, decided once (sim.scenario.build.compile): the
model reads the Deployment, what the plan publishes and who detects, never a
strategy's name. Every decision (caches, balancing, health checks, reuse,
failover plans) comes from sim.policy.

`Replication` is made of four parts, each a module of its own, mixed into one
object so the request path reads plain attributes with no indirection:

- sim.model.building (`Building`): balancers, the zone, resolvers, clients and
  instances, primed as steady state finds them at time 0;
- sim.model.requests (`Requests`): the request path, callbacks on timeout
  events (an arrival, then a service completion), about two events per
  request, because a generator per request would make the model several
  times slower than the bare SimPy loop it is measured against;
- sim.model.control (`Control`): faults, the failover's detector and actions,
  health checks, the per-second sampler;
- sim.model.lifecycle (`Lifecycle`): browsing sessions in place of Poisson
  arrivals, and process restarts that clear a client's stub cache and connections.

The slow background processes (sim.model.background: node churn and scaling,
instance failures, autoscaling) use only this public interface of a replication:

- read: `env`, `rng`, `scenario`, `balancers`, `instances`, `fleet` (appended to);
- `add_node(balancer)` and `publish_nodes(balancer)`: a new node address, and
  the balancer's name answered with its nodes as they are now;
- `launch_instance(healthy)`, `retire_instance(inst)`, `kill(inst, mode)`:
  the fleet changes;
- `later(delay, callback, value)`: a callback on one timeout event.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import simpy

from sim.model.building import Building
from sim.model.control import Control
from sim.model.lifecycle import Lifecycle, restart_rng
from sim.model.output import tables
from sim.model.requests import Requests
from sim.model.world import Balancer
from sim.policy.failover import FailoverPlan
from sim.replication import DRAWS, OUTCOMES, STREAMS, ReplicationOutput, streams
from sim.scenario import build
from sim.scenario import models as m
from sim.scenario.build import Deployment

# Re-exported: the engine contract used to be defined here.
__all__ = ["DRAWS", "OUTCOMES", "STREAMS", "Replication", "ReplicationOutput", "Strategy", "simulate", "unsupported"]

# What names a strategy: a name (sim.policy.failover.PLANS), a plan class, a plan, or a Deployment.
Strategy = str | type | FailoverPlan | Deployment


class Replication(Building, Requests, Control, Lifecycle):
    """One strategy on one seed. `run()` returns its tables.

    `strategy` is a name, a plan class, a plan, or a Deployment already compiled
    for `scenario` (its policy objects are used as they are).
    """

    def __init__(self, scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence, replication: int = 0):
        self.deployment = build.compile(scenario, strategy)
        self.published = self.deployment.published
        self.scenario = scenario
        self.strategy = self.deployment.strategy  # a label only
        self.replication = replication
        self.env = simpy.Environment()
        # One stream per purpose, spawned in a fixed order: both strategies see
        # the same arrivals and the same client layout (common random numbers).
        self.rng = streams(seed)
        self.end = scenario.end
        self.warmup = scenario.warmup
        seconds = int(math.ceil(self.end)) + 1
        self.counts = [[0] * seconds for _ in OUTCOMES]
        self.dns_counts = [0] * seconds
        self.old_target = [0] * seconds
        self.latencies: list[float] = []
        self.issued = 0
        self.finished = 0
        self.in_system: list[int] = []  # requests held by instances, sampled each second (Little's law)
        self.fleet: list[tuple[float, int]] = []  # (time, instances live or launching) at each scaling decision
        self.thinning: dict[int, float] = {}  # cohort index -> share of arrivals kept
        self.detected_at: float | None = None
        self._build()
        self.fault_times = scenario.fault_times(self.published.changes_dns)
        # Where first attempts go (sim.model.requests): before any change, all to
        # the active balancer; a change makes it the previous target.
        # Sets: a plan that publishes one address per balancer points at both.
        first = {self.active, self.standby} if self.published.per_balancer else {self.active}
        self.current_targets: frozenset[Balancer] = frozenset(first)
        self.previous_targets: frozenset[Balancer] = frozenset()
        for balancer in first:
            balancer.current = True
        self.changed_at: float | None = None
        self.to_previous = [[0] * seconds for _ in self.cohorts]
        self.to_current = [[0] * seconds for _ in self.cohorts]
        self.rescued = [[0] * seconds for _ in self.cohorts]

    def run(self) -> ReplicationOutput:
        from sim.model.background import start

        env = self.env
        for i, (cohort, members) in enumerate(self.cohorts):
            arrivals = np.random.default_rng(np.random.SeedSequence(self.arrival_seeds[i]))
            if cohort.sessions is not None:
                self._start_sessions(cohort, members, arrivals)
            else:
                env.process(self._arrivals(cohort, members, arrivals, i))
            if cohort.restarts is not None:
                self._start_restarts(cohort, members, restart_rng(self.arrival_seeds[i]))
        for fault in self.scenario.faults:
            env.process(self._fault(fault))
        planned = self.scenario.planned_change(self.published.changes_dns)
        if planned is not None:
            env.process(self._planned_change(planned.at))
        env.process(self._detector())
        env.process(self._sampler())
        start(self)
        env.run(until=self.end)
        return tables(self)


def simulate(scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence, replication: int = 0) -> ReplicationOutput:
    """Run one replication of one strategy (a name, a plan class, a plan or a Deployment)."""
    return Replication(scenario, strategy, seed, replication).run()


def unsupported(scenario: m.Scenario, strategies: Iterable[Strategy] | None = None) -> list[str]:
    """What the model cannot run of `strategies` on `scenario`, one reason each: nothing.
    The model is the reference and runs every plan (sim.policy.failover)."""
    return []
