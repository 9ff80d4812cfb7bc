"""Building a replication's world, and priming it as steady state finds it at time 0.

`Building` is one part of sim.model.engine.Replication (a mixin: the request
path reads the attributes it sets on the replication itself, with no
indirection). What the zone publishes comes from the Deployment's `published`
(sim.policy.failover.Published), never from a strategy's name.

The order of every draw here is part of the seed's meaning (sim.replication.DRAWS):
the client layout ("clients"), the per-resolver seeds ("dns"), the arrival
seeds ("arrivals"), then priming ("priming"), then service times ("service").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy

from sim.model.clients import Client, Cohort, Draws
from sim.model.dns import Alias, Authoritative, Resolver
from sim.model.world import Address, Balancer, Endpoint, Instance
from sim.policy.attempts import choose_address
from sim.policy.balancing import make_balancing_policy
from sim.policy.cache import CachePolicy, equilibrium_residual, lets_go
from sim.policy.failover import Published
from sim.policy.health import HealthCheckSpec
from sim.policy.resolver import ResolverSetup
from sim.scenario import models as m
from sim.scenario.build import Deployment


class Building:
    """Balancers and their addresses, the zone, resolvers, clients and instances."""

    scenario: m.Scenario
    deployment: Deployment
    published: Published
    env: simpy.Environment
    rng: dict[str, np.random.Generator]
    # Defined by the other parts of the replication (sim.model.requests, sim.model.control).
    _count_dns: Callable[[float], None]
    launch_instance: Callable[[bool], Instance]

    def _build(self) -> None:
        sc = self.scenario
        self.balancers = {b.name: Balancer(b.name, b.role, b.capacity) for b in sc.balancers}
        self.balancer_faults: dict[str, list[tuple[m.BalancerDown, str]]] = {}  # each balancer's faults on now
        self.addresses: list[Address] = []
        self.node_address: dict[Endpoint, Address] = {}
        for spec in sc.balancers:
            balancer = self.balancers[spec.name]
            balancer.front.capacity = spec.nodes * spec.capacity
            for _ in range(spec.nodes):
                self.add_node(balancer)
        self.active = self.balancers[sc.active.name]
        self.standby = self.balancers[sc.standby.name]
        nodes = {name: self.node_addresses(b) for name, b in self.balancers.items()}
        # Answers rotate from one resolution to the next (each client starts one
        # address further on), unless the plan publishes them in a fixed order.
        self.rotate = int(self.published.rotate)
        service, self.after_change, self.moving, ttl = self._service_records()
        self.auth = Authoritative(service, ttl, sc.dns.balancer_ttl, nodes, self._count_dns)
        self._build_resolvers_and_clients()
        self._build_backends()

    def _service_records(self) -> tuple[object, object, list[Address], float]:
        """What the zone publishes at the service name: the value before the
        failover, the value once the change has propagated (None: no DNS change),
        the addresses the failover moves to the standby, and the record's TTL."""
        published, active, standby = self.published, self.active, self.standby
        ttl = published.record_ttl
        if published.record == "cname":
            return active.name, standby.name, [], ttl
        if published.record == "alias":
            # An alias answers with the balancer's A records (docs/references.md, Route 53
            # alias), with the TTL the plan gives its record.
            return Alias(active.name), Alias(standby.name), [], ttl
        if published.per_balancer:
            # One static address per balancer, both published; the change deletes the failed one.
            first, second = (self._static(f"{b.name}-static", b) for b in (active, standby))
            return (first, second), (second,), [], ttl
        # Static addresses at the active balancer, which the failover moves.
        moving = [self._static(f"static-{i}", active) for i in range(published.addresses)]
        return tuple(moving), None, moving, ttl

    def _static(self, name: str, balancer: Balancer) -> Address:
        address = Address(name, balancer.front)
        self.addresses.append(address)
        return address

    def add_node(self, balancer: Balancer) -> Endpoint:
        """A new node of `balancer`, on an address of its own (not yet published:
        see `publish_nodes`)."""
        node = Endpoint(f"{balancer.name}-{len(self.node_address)}", balancer, balancer.capacity)
        address = Address(f"{node.name}-ip", node)
        self.node_address[node] = address
        self.addresses.append(address)
        balancer.nodes.append(node)
        return node

    def node_addresses(self, balancer: Balancer) -> tuple[Address, ...]:
        """The addresses of `balancer`'s nodes, as its own A records list them."""
        return tuple(self.node_address[n] for n in balancer.nodes)

    def publish_nodes(self, balancer: Balancer) -> None:
        """Answer `balancer`'s name with its nodes as they are now (after churn or scaling)."""
        self.auth.balancers[balancer.name] = self.node_addresses(balancer)

    def _build_resolvers_and_clients(self) -> None:
        sc = self.scenario
        # Each resolver draws its cache lifetimes from a stream of its own, so a
        # resolver's i-th answer gets the same draw whatever the others do (the lab's
        # forwarders replay these seeds, sim.model.trace).
        self.resolver_seeds = [int(x) for x in self.rng["dns"].integers(2**63, size=sum(g.count for g in sc.dns.resolvers))]
        seeds = iter(self.resolver_seeds)
        policies, setups = self.deployment.resolver_policies, self.deployment.resolver_setups
        groups: dict[str, list[Resolver]] = {
            g.name: [self._resolver(g.name, policies[g.name], setups[g.name], next(seeds)) for _ in range(g.count)]
            for g in sc.dns.resolvers
        }
        query_rate = self._place_clients(groups)
        self.resolvers = [r for pool in groups.values() for r in pool]
        self.arrival_seeds = [int(self.rng["arrivals"].integers(2**63)) for _ in self.cohorts]
        prng = self.rng["priming"]
        for resolver in self.resolvers:
            resolver.prime(0.0, query_rate.get(resolver, 0.0), prng)
        for client in self.clients:
            self._prime_client(client, prng)

    def _resolver(self, group: str, policy: CachePolicy, setup: ResolverSetup, seed: int) -> Resolver:
        farm = setup.farm
        caches = None if farm.caches == 1 else [np.random.default_rng(farm.cache_seed(seed, i)) for i in range(farm.caches)]
        return Resolver(group, policy, self.auth, np.random.default_rng(seed), setup, caches)

    def _place_clients(self, groups: dict[str, list[Resolver]]) -> dict[Resolver, float]:
        """Cohorts and their clients, each on a resolver; returns each resolver's query rate."""
        sc, dep = self.scenario, self.deployment
        rng = self.rng["clients"]
        names = [g.name for g in sc.dns.resolvers]
        shares = np.array([g.share for g in sc.dns.resolvers])
        self.cohorts: list[tuple[Cohort, list[Client]]] = []
        self.clients: list[Client] = []
        query_rate: dict[Resolver, float] = {}
        spread = dict.fromkeys(groups, 0)
        sizes = sc.cohort_sizes()
        for spec in sc.clients:
            cohort = Cohort(spec, dep.stubs[spec.name], dep.reuse[spec.name], dep.retries[spec.name], len(self.cohorts),
                            dep.restarts.get(spec.name), dep.sessions.get(spec.name))
            n = sizes[spec.name]
            if spec.resolver_group is not None:
                picks = [spec.resolver_group] * n
            else:
                picks = [names[i] for i in rng.choice(len(names), size=n, p=shares / shares.sum())]
            members = []
            for name in picks:
                # docs/scenario.md: clients are spread over a group's resolvers evenly.
                pool = groups[name]
                resolver = pool[spread[name] % len(pool)]
                spread[name] += 1
                client = Client(len(self.clients), cohort, resolver)
                resolver.attach(client.id)
                members.append(client)
                self.clients.append(client)
                query_rate[resolver] = query_rate.get(resolver, 0.0) + self._resolver_load(cohort)
            self.cohorts.append((cohort, members))
        return query_rate

    def _resolver_load(self, cohort: Cohort) -> float:
        # The rate of a client's queries once its resolver's answer has expired, which sets how
        # long the resolver holds none (its priming): a stub that never outlives the resolver's
        # answer (WITHIN_TTL, no grace) has let go by then, so every request asks, as in the
        # run (with one client a resolver, absent 1/(1 + rT) of the time, not 1/(1 + r(T/2 + 1/r))).
        # Otherwise (a stub that holds past it, pooled connections) one query per stub-cache
        # cycle: the stub lifetime plus the wait for the next request.
        life = cohort.stub.lifetime(self.auth.service_ttl / 2, self.rng["priming"])
        if _lets_go(cohort):
            return cohort.rate
        if math.isinf(life) and cohort.restarts is not None:
            life = float(cohort.restarts.every.mean)  # an answer kept until the next restart
        return 1.0 / (life + 1.0 / cohort.rate) if not math.isinf(life) else 0.0

    def _prime_client(self, client: Client, rng: np.random.Generator) -> None:
        """Stub cache and connection as a random moment of steady state finds them."""
        cohort = client.cohort
        addresses, ttl = self._initial_answer()
        life = cohort.stub.lifetime(ttl, rng)
        if math.isinf(life) or rng.random() < life / (life + 1.0 / cohort.rate):
            client.stub_value = addresses
            client.stub_expires = equilibrium_residual(cohort.stub, ttl, rng)
        elif cohort.grace > 0:
            # Expired, and waiting for the next request: the time since the expiry is the
            # age within an exponential wait, itself exponential; a grace period may cover it.
            client.stub_value = addresses
            client.stub_expires = -rng.exponential(1.0 / cohort.rate)
        if _lets_go(cohort) and client.stub_value is not None and len(client.resolver.caches) == 1:
            # Such a stub got its answer from the resolver's current one, and lets go with it: it
            # holds nothing where the resolver holds nothing, and expires by the resolver's expiry
            # (drawn apart, a stub outlived its resolver, which then refetched only at the stub's
            # expiry: the resolvers' phases at max of two uniforms, not uniform, for many TTLs).
            held = client.resolver.held_until()
            if held <= 0.0:
                client.stub_value, client.stub_expires = None, -math.inf
            else:
                client.stub_expires = min(client.stub_expires, held)
        client.rotation = int(rng.integers(len(addresses)))
        address = choose_address(addresses, client.rotation * self.rotate, "next")
        client.addr = address
        address.users += 1
        if cohort.keepalive > 0:
            idle = rng.exponential(1.0 / cohort.rate)  # time since its last request
            if idle < cohort.keepalive:
                age = cohort.reuse.max_age
                # With no age limit when it was opened does not matter, only that it was at or
                # before its last use: -inf there made `now - opened < max_age` read inf < inf,
                # so a primed connection was never reused.
                opened = -idle - (rng.random() * (age - idle) if math.isfinite(age) and age > idle else 0.0)
                client.conn, client.conn_endpoint = address, address.endpoint
                client.conn_opened, client.conn_last = opened, -idle

    def _initial_answer(self) -> tuple[tuple, float]:
        value = self.auth.current()
        if isinstance(value, tuple):
            return value, self.auth.service_ttl
        return self.auth.balancers[value], min(self.auth.service_ttl, self.scenario.dns.balancer_ttl)

    def _build_backends(self) -> None:
        spec = self.scenario.backends
        self.health_spec: HealthCheckSpec = self.deployment.backend_check
        self.instances: list[Instance] = []
        self._eligible: list[Instance] | None = None
        self.policy = make_balancing_policy(spec.policy)
        draws = spec.service_time
        srng = self.rng["service"]
        self.service = Draws(lambda: draws.sample(srng, 4096))
        for _ in range(spec.instances):
            self.launch_instance(healthy=True)


def _lets_go(cohort: Cohort) -> bool:
    return lets_go(cohort.stub.kind, cohort.grace, cohort.keepalive)
