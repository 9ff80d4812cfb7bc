"""The discrete-event model (SimPy): the reference engine.

One replication of one strategy. Requests are not SimPy processes: each is a
chain of callbacks on timeout events (an arrival, then a service completion),
about two events per request, because a generator per request would make the
model several times slower than the bare SimPy loop it is measured against.
Every decision (caches, balancing, health checks, reuse, failover plans) comes
from sim.policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy
from simpy.events import Timeout

from sim.model.dns import Alias, Authoritative, Resolver
from sim.model.world import BLACKHOLE, REFUSE, UP, Address, Balancer, Endpoint, Instance
from sim.policy.attempts import CONNECT_TIMEOUT, choose_address
from sim.policy.balancing import eligible, make_balancing_policy
from sim.policy.cache import CachePolicy, equilibrium_residual
from sim.policy.failover import ProviderChecks, VrrpSpec, make_plan
from sim.policy.health import (
    HealthCheckSpec,
    HealthState,
    first_probe_at,
    probe_duration,
    probe_ok,
    probe_step,
)
from sim.policy.sampling import arrival_blocks
from sim.scenario import build
from sim.scenario import models as m

OUTCOMES = ("ok", "refused", "timeout", "error_5xx", "dns_error", "shed")
OK, REFUSED, TIMEOUT, ERROR_5XX, DNS_ERROR, SHED = range(6)
# Which draws a seed's streams feed. Runs with the same seed and scenario pair
# replication by replication (sim.compare) only when they draw alike: bump this
# when a stream's use changes. 2: per-resolver lifetimes, "failover" (2026-11-29).
DRAWS = 2
# "failover" last: its own stream, so the lab can replay the detection phase and
# the plan's delays (sim.lab.trace) without replaying every other control draw.
STREAMS = ("arrivals", "clients", "priming", "dns", "service", "control", "balancing", "faults", "traffic", "failover")


@dataclass
class ReplicationOutput:
    """The tables of one (strategy, replication), in sim.results' columns."""

    metrics: dict[str, float]
    clients: pd.DataFrame
    timeline: pd.DataFrame


class Cohort:
    __slots__ = ("attempts", "fallback", "keepalive", "name", "next_address", "rate", "reuse", "stub", "timeout")

    def __init__(self, spec: m.Cohort) -> None:
        self.name = spec.name
        self.rate = spec.rate
        self.stub: CachePolicy = build.cache_policy(spec.stub_cache)
        self.reuse = build.reuse(spec)
        self.keepalive = spec.keepalive
        rule = build.retry(spec)
        self.attempts = rule.attempts
        self.timeout = rule.timeout
        # address_mode next: a failed connect moves on to the answer's next
        # address within the attempt, after fallback_delay for a blackhole
        # (default: the attempt timeout, as python-requests does).
        self.next_address = spec.address_mode == "next"
        delay = spec.fallback_delay if spec.fallback_delay is not None else rule.timeout
        self.fallback = min(delay, rule.timeout)


class Client:
    __slots__ = (
        "addr",
        "cohort",
        "conn",
        "conn_endpoint",
        "conn_last",
        "conn_opened",
        "failed",
        "fault_at",
        "first_fail",
        "id",
        "recovered",
        "resolver",
        "rotation",
        "stub_expires",
        "stub_value",
    )

    def __init__(self, id: int, cohort: Cohort, resolver: Resolver) -> None:
        self.id = id
        self.cohort = cohort
        self.resolver = resolver
        self.stub_value: tuple | None = None
        self.stub_expires = -math.inf
        self.rotation = 0
        self.conn: Address | None = None  # the address of the open connection, if any
        self.conn_endpoint: Endpoint | None = None  # where it led when it was opened
        self.conn_opened = 0.0
        self.conn_last = 0.0
        self.addr: Address | None = None  # the address this client last sent to
        self.first_fail: float | None = None
        self.fault_at = math.nan
        self.recovered: float | None = None
        self.failed = 0


class Request:
    __slots__ = ("attempt", "client", "issued", "started", "tries")

    def __init__(self, client: Client, now: float) -> None:
        self.client = client
        self.issued = now
        self.started = now
        self.attempt = 0
        self.tries = 0  # addresses tried before the current one in this attempt


class _Draws:
    """Numbers drawn in blocks: one numpy call per thousand uses, not per use."""

    __slots__ = ("_it", "_make")

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self._make = make
        self._it: Iterator[float] = iter(())

    def next(self) -> float:
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self._make().tolist())
            return next(self._it)


class Replication:
    """One strategy on one seed. `run()` returns its tables."""

    def __init__(self, scenario: m.Scenario, strategy: str, seed: np.random.SeedSequence, replication: int = 0):
        self.scenario = scenario
        self.strategy = strategy
        self.replication = replication
        self.env = simpy.Environment()
        # One stream per purpose, spawned in a fixed order: both strategies see
        # the same arrivals and the same client layout (common random numbers).
        # Spawned from a copy: spawning counts children on the SeedSequence itself, and a
        # replication of a seed must draw the same whoever used that object before.
        fresh = np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key)
        self.rng = dict(zip(STREAMS, (np.random.default_rng(s) for s in fresh.spawn(len(STREAMS))), strict=True))
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
        self.fault_times = sorted(f.at for f in scenario.faults)
        self.thinning: dict[int, float] = {}  # cohort index -> share of arrivals kept
        self.detected_at: float | None = None
        self._build()

    # -- construction ---------------------------------------------------------------

    def _build(self) -> None:
        sc = self.scenario
        self.balancers = {b.name: Balancer(b.name, b.role, b.capacity) for b in sc.balancers}
        self.addresses: list[Address] = []
        self.node_address: dict[Endpoint, Address] = {}
        for spec in sc.balancers:
            balancer = self.balancers[spec.name]
            balancer.front.capacity = spec.nodes * spec.capacity
            for _ in range(spec.nodes):
                self._add_node(balancer)
        self.active = self.balancers[sc.active.name]
        self.standby = self.balancers[sc.standby.name]
        published = {name: self._published(b) for name, b in self.balancers.items()}
        self.spec = build.scenario_failover(sc)
        # Answers rotate from one resolution to the next (each client starts one
        # address further on), except multi_a with order fixed.
        self.rotate = int(not (self.strategy == "multi_a" and sc.failover.multi_a.order == "fixed"))
        service, self.after_change, self.moving, ttl = self._service_records()
        self.auth = Authoritative(service, ttl, sc.dns.balancer_ttl, published, self._count_dns)
        self._build_resolvers_and_clients()
        self._build_backends()

    def _service_records(self) -> tuple[object, object, list[Address], float]:
        """What the zone publishes at the service name: the value before the
        failover, the value once the change has propagated (None: no DNS change),
        the addresses the failover moves to the standby, and the record's TTL."""
        dns, active, standby = self.scenario.dns, self.active, self.standby
        name = self.strategy
        if name == "cname_repoint":
            return active.name, standby.name, [], dns.service_ttl
        if name in ("alias_apex", "dns_failover"):
            # An alias answers with the balancer's A records and TTL (REFERENCES.md,
            # Route 53 alias); dns_failover's records carry their own TTL.
            ttl = dns.balancer_ttl if name == "alias_apex" else dns.service_ttl
            return Alias(active.name), Alias(standby.name), [], ttl
        if name == "multi_a":
            # One static address per balancer, both published.
            first, second = (self._static(f"{b.name}-static", b) for b in (active, standby))
            return (first, second), (second,), [], dns.service_ttl
        # eip_remap and vrrp move one address; anycast announces two (Global Accelerator).
        moving = [self._static(f"static-{i}", active) for i in range(2 if name == "anycast" else 1)]
        return tuple(moving), None, moving, dns.service_ttl

    def _static(self, name: str, balancer: Balancer) -> Address:
        address = Address(name, balancer.front)
        self.addresses.append(address)
        return address

    def _add_node(self, balancer: Balancer) -> Endpoint:
        node = Endpoint(f"{balancer.name}-{len(self.node_address)}", balancer, self._capacity(balancer))
        address = Address(f"{node.name}-ip", node)
        self.node_address[node] = address
        self.addresses.append(address)
        balancer.nodes.append(node)
        return node

    def _capacity(self, balancer: Balancer) -> float:
        return balancer.capacity

    def _published(self, balancer: Balancer) -> tuple:
        return tuple(self.node_address[n] for n in balancer.nodes)

    def _build_resolvers_and_clients(self) -> None:
        sc = self.scenario
        rng = self.rng["clients"]
        groups: dict[str, list[Resolver]] = {}
        # Each resolver draws its cache lifetimes from a stream of its own, so a
        # resolver's i-th answer gets the same draw whatever the others do (the lab's
        # forwarders replay these seeds, sim.lab.trace).
        self.resolver_seeds = [int(x) for x in self.rng["dns"].integers(2**63, size=sum(g.count for g in sc.dns.resolvers))]
        seeds = iter(self.resolver_seeds)
        for g in sc.dns.resolvers:
            policy = build.cache_policy(g.policy)
            groups[g.name] = [Resolver(g.name, policy, self.auth, np.random.default_rng(next(seeds))) for _ in range(g.count)]
        names = [g.name for g in sc.dns.resolvers]
        shares = np.array([g.share for g in sc.dns.resolvers])
        self.cohorts: list[tuple[Cohort, list[Client]]] = []
        self.clients: list[Client] = []
        query_rate: dict[Resolver, float] = {}
        spread = dict.fromkeys(groups, 0)
        sizes = sc.cohort_sizes()
        for spec in sc.clients:
            cohort = Cohort(spec)
            n = sizes[spec.name]
            if spec.resolver_group is not None:
                picks = [spec.resolver_group] * n
            else:
                picks = [names[i] for i in rng.choice(len(names), size=n, p=shares / shares.sum())]
            members = []
            for name in picks:
                # scenario-v1: clients are spread over a group's resolvers evenly.
                pool = groups[name]
                resolver = pool[spread[name] % len(pool)]
                spread[name] += 1
                client = Client(len(self.clients), cohort, resolver)
                members.append(client)
                self.clients.append(client)
                query_rate[resolver] = query_rate.get(resolver, 0.0) + self._resolver_load(cohort)
            self.cohorts.append((cohort, members))
        self.resolvers = [r for pool in groups.values() for r in pool]
        self.arrival_seeds = [int(self.rng["arrivals"].integers(2**63)) for _ in self.cohorts]
        prng = self.rng["priming"]
        for resolver in self.resolvers:
            resolver.prime(0.0, query_rate.get(resolver, 0.0), prng)
        for client in self.clients:
            self._prime_client(client, prng)

    def _resolver_load(self, cohort: Cohort) -> float:
        # Queries a client sends its resolver: one per stub-cache cycle, a cycle
        # being the stub lifetime plus the wait for the next request.
        life = cohort.stub.lifetime(self.auth.service_ttl / 2, self.rng["priming"])
        return 1.0 / (life + 1.0 / cohort.rate) if not math.isinf(life) else 0.0

    def _prime_client(self, client: Client, rng: np.random.Generator) -> None:
        """Stub cache and connection as a random moment of steady state finds them."""
        cohort = client.cohort
        addresses, ttl = self._initial_answer()
        life = cohort.stub.lifetime(ttl, rng)
        if math.isinf(life) or rng.random() < life / (life + 1.0 / cohort.rate):
            client.stub_value = addresses
            client.stub_expires = equilibrium_residual(cohort.stub, ttl, rng)
        client.rotation = int(rng.integers(len(addresses)))
        address = choose_address(addresses, client.rotation * self.rotate, "next")
        client.addr = address
        address.users += 1
        if cohort.keepalive > 0:
            idle = rng.exponential(1.0 / cohort.rate)  # time since its last request
            if idle < cohort.keepalive:
                age = cohort.reuse.max_age
                opened = -idle - (rng.random() * (age - idle) if math.isfinite(age) and age > idle else 0.0)
                if math.isinf(age):
                    opened = -math.inf
                client.conn, client.conn_endpoint = address, address.endpoint
                client.conn_opened, client.conn_last = opened, -idle

    def _initial_answer(self) -> tuple[tuple, float]:
        value = self.auth.current()
        if isinstance(value, tuple):
            return value, self.auth.service_ttl
        return self.auth.balancers[value], min(self.auth.service_ttl, self.scenario.dns.balancer_ttl)

    def _build_backends(self) -> None:
        spec = self.scenario.backends
        self.health_spec = build.health_check(spec.health_check)
        self.instances: list[Instance] = []
        self._eligible: list[Instance] | None = None
        self.policy = make_balancing_policy(spec.policy)
        draws = spec.service_time
        srng = self.rng["service"]
        self.service = _Draws(lambda: draws.sample(srng, 4096))
        for _ in range(spec.instances):
            self._launch_instance(healthy=True)

    def _launch_instance(self, healthy: bool) -> Instance:
        spec = self.scenario.backends
        inst = Instance(len(self.instances), spec.workers, spec.queue_limit, HealthState(healthy, 0, 0))
        inst.healthy = healthy
        self.instances.append(inst)
        self._eligible = None
        self.env.process(self._check_instance(inst))
        return inst

    # -- running ----------------------------------------------------------------------

    def run(self) -> ReplicationOutput:
        env = self.env
        for i, (cohort, members) in enumerate(self.cohorts):
            arrivals = np.random.default_rng(np.random.SeedSequence(self.arrival_seeds[i]))
            env.process(self._arrivals(cohort, members, arrivals, i))
        for fault in self.scenario.faults:
            env.process(self._fault(fault))
        env.process(self._detector())
        env.process(self._sampler())
        self._background()
        env.run(until=self.end)
        return self._output()

    def _arrivals(self, cohort: Cohort, members: list[Client], rng: np.random.Generator, index: int):  # type: ignore[no-untyped-def]
        rate = cohort.rate * len(members)
        if rate <= 0:
            return
        env, n, issue = self.env, len(members), self._issue
        for gaps, picks, coins in arrival_blocks(rng, rate, n):
            for gap, pick, coin in zip(gaps, picks, coins, strict=True):
                yield env.timeout(gap)
                factor = self.thinning.get(index, 1.0)
                if factor >= 1.0 or coin < factor:
                    issue(members[pick])

    # -- the request path ---------------------------------------------------------

    def _issue(self, client: Client) -> None:
        self.issued += 1
        self._attempt(Request(client, self.env.now))

    def _attempt(self, req: Request, addresses: tuple | None = None) -> None:
        """One attempt of a request; with `addresses`, the next address of the
        answer this attempt already holds (address_mode next)."""
        now = self.env.now
        req.started = now
        client = req.client
        cohort = client.cohort
        endpoint = None
        if addresses is None:
            req.tries = 0
            address = client.conn
            if address is not None:
                if cohort.reuse.can_reuse(client.conn_opened, client.conn_last, now):
                    if address.endpoint is not client.conn_endpoint:
                        # The address moved: its open connection is reset, once.
                        client.conn = None
                        return self._failed(req, REFUSED, 0.0)
                    endpoint = client.conn_endpoint
                else:
                    client.conn = None
        if endpoint is None:
            if addresses is None:
                addresses = client.stub_value if now < client.stub_expires else None
            if addresses is None:
                answer = client.resolver.resolve(now)
                if answer is None:
                    return self._failed(req, DNS_ERROR, 0.0)
                addresses, ttl = answer
                client.stub_value = addresses
                client.stub_expires = now + cohort.stub.lifetime(ttl, self.rng["dns"])
                client.rotation += 1
            # Retry k and fallback j go k + j addresses past where this client's
            # answer starts: sim.policy.attempts.choose_address "next" on the
            # rotated answer, inlined because this line runs for every request.
            address = addresses[(client.rotation * self.rotate + req.attempt + req.tries) % len(addresses)]
            endpoint = address.endpoint
            if cohort.keepalive > 0:
                client.conn, client.conn_endpoint, client.conn_opened = address, endpoint, now
        if client.addr is not address:
            if client.addr is not None:
                client.addr.users -= 1
            address.users += 1  # type: ignore[union-attr]
            client.addr = address
        client.conn_last = now
        mode = endpoint.mode
        if mode is not UP:
            client.conn = None
            if cohort.next_address and addresses is not None and req.tries + 1 < len(addresses):
                # address_mode next: the answer's next address, at once after a
                # refusal, after the fallback delay for a blackhole.
                req.tries += 1
                if mode is REFUSE:
                    return self._attempt(req, addresses)
                return self._later(cohort.fallback, self._fall_back, (req, addresses))
            if mode is REFUSE:
                return self._failed(req, REFUSED, 0.0)
            return self._failed(req, TIMEOUT, cohort.timeout)
        if not endpoint.admit(now):
            return self._failed(req, SHED, 0.0)
        self._forward(req, self.scenario.backends.retries, ())

    def _fall_back(self, event: Timeout) -> None:
        req, addresses = event.value
        self._attempt(req, addresses)

    def _forward(self, req: Request, retries: int, tried: tuple) -> None:
        """The balancer picks an eligible instance; a refused connect is retried elsewhere."""
        candidates = self._eligible
        if candidates is None:
            candidates = self._eligible = eligible(self.instances)
        if tried:
            candidates = [i for i in candidates if i not in tried]
        if not candidates:
            return self._failed(req, ERROR_5XX, 0.0)  # 503: no healthy upstream
        inst = self.policy.pick(candidates, self.rng["balancing"])
        if inst.mode is not UP:
            if inst.mode is REFUSE:
                if retries > 0:
                    return self._forward(req, retries - 1, (*tried, inst))
                return self._failed(req, ERROR_5XX, 0.0)  # 502
            timeout = req.client.cohort.timeout
            if timeout <= CONNECT_TIMEOUT:
                return self._failed(req, TIMEOUT, timeout)
            self._later(CONNECT_TIMEOUT, self._connect_timed_out, (req, retries, (*tried, inst)))
            return
        if inst.busy < inst.workers:
            inst.busy += 1
            inst.outstanding += 1
            self._later(self.service.next() + self.scenario.rtt, self._served, (req, inst, inst.generation))
        elif len(inst.queue) >= inst.queue_limit:
            self._failed(req, SHED, 0.0)
        else:
            inst.outstanding += 1
            inst.queue.append(req)

    def _connect_timed_out(self, event: Timeout) -> None:
        req, retries, tried = event.value
        if retries > 0:
            self._forward(req, retries - 1, tried)
        else:
            self._failed(req, ERROR_5XX, 0.0)  # 504

    def _served(self, event: Timeout) -> None:
        req, inst, generation = event.value
        if generation != inst.generation:
            # The instance died with this request in service: the balancer sees
            # the connection reset (502), or the client waits out its timeout.
            return self._lost(req, inst)
        inst.outstanding -= 1
        if inst.queue:
            self._later(self.service.next() + self.scenario.rtt, self._served, (inst.queue.popleft(), inst, generation))
        else:
            inst.busy -= 1
        now = self.env.now
        cohort = req.client.cohort
        if now - req.started > cohort.timeout:
            # The client gave up before the answer came: a timeout, retried from
            # now rather than from the moment it gave up (an approximation that
            # only matters when queues grow past the client's timeout).
            return self._failed(req, TIMEOUT, 0.0)
        self._finish(req, OK, now)

    def _later(self, delay: float, callback: Callable[[Timeout], None], value: object) -> None:
        event = Timeout(self.env, delay, value)
        event.callbacks.append(callback)  # type: ignore[union-attr]

    def _failed(self, req: Request, outcome: int, cost: float) -> None:
        if cost > 0:
            self._later(cost, self._after_cost, (req, outcome))
            return
        if req.attempt + 1 < req.client.cohort.attempts:
            req.attempt += 1
            self._attempt(req)
        else:
            self._finish(req, outcome, self.env.now)

    def _after_cost(self, event: Timeout) -> None:
        req, outcome = event.value
        self._failed(req, outcome, 0.0)

    def _finish(self, req: Request, outcome: int, now: float) -> None:
        if req.attempt < 0:
            raise AssertionError("a request ended twice")  # conservation of requests
        req.attempt = -1
        self.finished += 1
        self.counts[outcome][int(req.issued)] += 1
        if req.issued < self.warmup:
            return
        client = req.client
        if outcome == OK:
            self.latencies.append(now - req.issued)
            if client.first_fail is not None and client.recovered is None and now > client.first_fail:
                client.recovered = now
            return
        faults = self.fault_times
        if faults and now >= faults[0]:
            client.failed += 1
            if client.first_fail is None:
                client.first_fail = now
                client.fault_at = max(t for t in faults if t <= now)

    def _count_dns(self, now: float) -> None:
        self.dns_counts[int(now)] += 1

    # -- control plane ------------------------------------------------------------

    def _fault(self, fault: m.BalancerDown | m.InstanceDown | m.Traffic | m.DnsDown):  # type: ignore[no-untyped-def]
        env = self.env
        yield env.timeout(fault.at)
        if isinstance(fault, m.BalancerDown):
            balancer = self.balancers[fault.target]
            balancer.mode = REFUSE if fault.mode == "refuse" else BLACKHOLE
            if fault.for_ is not None:
                yield env.timeout(fault.for_)
                balancer.mode = UP
        elif isinstance(fault, m.InstanceDown):
            up = [i for i in self.instances if i.mode is UP and not i.removed]
            picks = self.rng["faults"].choice(len(up), size=min(fault.count, len(up)), replace=False)
            victims = [up[int(k)] for k in picks]
            for inst in victims:
                self._kill(inst, REFUSE if fault.mode == "refuse" else BLACKHOLE)
            yield env.timeout(fault.for_)
            for inst in victims:
                inst.mode = UP
        elif isinstance(fault, m.DnsDown):
            self.auth.down = True
            yield env.timeout(fault.for_)
            self.auth.down = False
        else:
            yield from self._traffic(fault)

    def _traffic(self, fault: m.Traffic):  # type: ignore[no-untyped-def]
        if fault.factor == 1:
            yield self.env.timeout(fault.for_)
            return
        if fault.factor < 1:
            self.thinning = {i: fault.factor for i in range(len(self.cohorts))}
            yield self.env.timeout(fault.for_)
            self.thinning = {}
            return
        until = self.env.now + fault.for_
        rng = self.rng["traffic"]
        for cohort, members in self.cohorts:
            self.env.process(self._extra_arrivals(cohort, members, (fault.factor - 1) * cohort.rate * len(members), until, rng))
        yield self.env.timeout(fault.for_)

    def _extra_arrivals(self, cohort: Cohort, members: list[Client], rate: float, until: float, rng: np.random.Generator):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(rng.exponential(1.0 / rate))
            if self.env.now >= until:
                return
            self._issue(members[int(rng.integers(len(members)))])

    def _kill(self, inst: Instance, mode: str) -> None:
        inst.mode = mode
        inst.generation += 1
        lost = list(inst.queue)
        inst.queue.clear()
        inst.busy = 0
        inst.outstanding = 0
        for req in lost:
            self._lost(req, inst)
        # Requests in service are failed when their completion fires (generation).

    def _lost(self, req: Request, inst: Instance) -> None:
        if inst.mode is BLACKHOLE:
            wait = req.started + req.client.cohort.timeout - self.env.now
            self._failed(req, TIMEOUT, max(0.0, wait))
        else:
            self._failed(req, ERROR_5XX, 0.0)

    def _detector(self):  # type: ignore[no-untyped-def]
        """Whoever notices the fault (the plan says who), then the plan's actions."""
        spec = self.spec
        plan = make_plan(self.strategy, spec)
        rng = self.rng["failover"]
        env = self.env
        if plan.detection == "scenario" and spec.detection == "operator":
            faults = [f for f in self.scenario.faults if isinstance(f, m.BalancerDown) and f.target == self.active.name]
            if not faults:
                return
            yield env.timeout(faults[0].at + (spec.delay or 0.0))
        elif plan.detection == "provider":
            yield from self._provider_verdict(spec.provider)
        elif plan.detection == "vrrp":
            yield from self._master_down(spec.vrrp)
        else:
            hc = spec.anycast.health_check() if plan.detection == "anycast" else spec.health_check()
            yield from self._checker(hc, float(rng.random()), lambda up: not up)
        self.detected_at = env.now
        for action in plan.actions_after_detection(env.now, rng):
            yield env.timeout(max(0.0, action.at - env.now))
            self._apply(action.kind)

    def _checker(self, hc: HealthCheckSpec, phase: float, stop: Callable[[bool], bool]):  # type: ignore[no-untyped-def]
        """One health checker probing the active balancer; after each verdict
        change (True: up), `stop` says whether to end."""
        env = self.env
        state = HealthState()
        yield env.timeout(first_probe_at(phase, hc))
        while True:
            outcome = "ok" if self.active.mode is UP else self.active.mode
            took = probe_duration(outcome, hc)
            if took:
                yield env.timeout(took)
            state, transition = probe_step(state, probe_ok(outcome), hc)
            if transition is not None and stop(transition == "up"):
                return
            yield env.timeout(hc.interval)

    def _provider_verdict(self, checks: ProviderChecks):  # type: ignore[no-untyped-def]
        """dns_failover: the provider's checkers, each on its own phase; the
        endpoint is down once too few of them still see it healthy."""
        hc = checks.health_check()
        rng = self.rng["control"]
        verdict = self.env.event()
        healthy = [checks.checkers]

        def stop(up: bool) -> bool:
            healthy[0] += 1 if up else -1
            if not verdict.triggered and not checks.healthy(healthy[0]):
                verdict.succeed()
            return verdict.triggered

        for _ in range(checks.checkers):
            self.env.process(self._checker(hc, float(rng.random()), stop))
        yield verdict

    def _master_down(self, vrrp: VrrpSpec):  # type: ignore[no-untyped-def]
        """vrrp: the backup's Master_Down timer, restarted by every advertisement
        the master sends while its balancer is up (RFC 5798 6.4.2); the master
        sends one every advert_int from a random phase. Detection comes when the
        timer runs out: Master_Down_Interval after the last advertisement heard."""
        env, adv, mdi = self.env, vrrp.advert_int, vrrp.master_down_interval
        last = (float(self.rng["control"].random()) - 1.0) * adv  # the last advertisement before time 0
        deadline, following = last + mdi, last + adv
        while following < deadline:
            yield env.timeout(following - env.now)
            if self.active.mode is UP:
                deadline = env.now + mdi
            following += adv
        yield env.timeout(deadline - env.now)

    def _apply(self, kind: str) -> None:
        if kind == "propagated":
            self.auth.value = self.after_change
        elif kind in ("address_moved", "traffic_shifted"):
            for address in self.moving:
                address.endpoint = self.standby.front

    def _check_instance(self, inst: Instance):  # type: ignore[no-untyped-def]
        hc = self.health_spec
        env = self.env
        yield env.timeout(first_probe_at(float(self.rng["control"].random()), hc))
        while not inst.removed:
            outcome = "ok" if inst.mode is UP else inst.mode
            took = probe_duration(outcome, hc)
            if took:
                yield env.timeout(took)
            inst.health, transition = probe_step(inst.health, probe_ok(outcome), hc)
            if transition is not None:
                inst.healthy = transition == "up"
                self._eligible = None
            yield env.timeout(hc.interval)

    def _sampler(self):  # type: ignore[no-untyped-def]
        """Once a second: how many clients send to an address that leads nowhere."""
        env = self.env
        while True:
            second = int(env.now)
            self.old_target[second] = sum(a.users for a in self.addresses if a.endpoint.mode is not UP)
            self.in_system.append(sum(i.outstanding for i in self.instances))
            yield env.timeout(1.0)

    def _background(self) -> None:
        from sim.model.background import start

        start(self)

    # -- output -------------------------------------------------------------------

    def _output(self) -> ReplicationOutput:
        start = int(math.floor(self.warmup))
        seconds = len(self.dns_counts) - 1
        counts = np.array(self.counts, dtype=np.int64)[:, :seconds]
        timeline = pd.DataFrame({"t": np.arange(seconds, dtype=np.int64)})
        timeline["requests"] = counts.sum(axis=0)
        for i, name in enumerate(OUTCOMES):
            timeline[name] = counts[i]
        timeline["on_old_target"] = np.array(self.old_target[:seconds], dtype=np.int64)
        timeline["dns_queries"] = np.array(self.dns_counts[:seconds], dtype=np.int64)
        measured = counts[:, start:]
        requests = int(measured.sum())
        failed = int(measured[1:].sum())
        affected = [c for c in self.clients if c.first_fail is not None]
        recovery = np.array(
            [(c.recovered - c.fault_at) if c.recovered is not None else np.nan for c in affected], dtype=float
        )
        clients = pd.DataFrame(
            {
                "client": np.array([c.id for c in affected], dtype=np.int64),
                "cohort": [c.cohort.name for c in affected],
                "resolver_group": [c.resolver.group for c in affected],
                "recovery_s": recovery,
                "failed": np.array([c.failed for c in affected], dtype=np.int64),
                "fault_at": np.array([c.fault_at for c in affected], dtype=float),
            }
        )
        lat = np.array(self.latencies) * 1000.0
        stragglers = float(np.mean(~(recovery <= 300.0))) if len(affected) else 0.0
        metrics = {
            "requests": requests,
            "failed": failed,
            "clients_affected": len(affected),
            "stragglers_5m": stragglers,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
            "dns_queries": int(sum(self.dns_counts[start:])),
            "dropped": int(measured[SHED].sum()),
        }
        return ReplicationOutput(metrics, clients, timeline)


def simulate(scenario: m.Scenario, strategy: str, seed: np.random.SeedSequence, replication: int = 0) -> ReplicationOutput:
    """Run one replication of one strategy."""
    return Replication(scenario, strategy, seed, replication).run()
