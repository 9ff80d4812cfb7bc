"""The request path: arrival, attempt, forward, serve, finish.

`Requests` is one part of sim.model.engine.Replication. Requests are not SimPy
processes: each is a chain of callbacks on timeout events (an arrival, then a
service completion), about two events per request, because a generator per
request would make the model several times slower than the bare SimPy loop it
is measured against (sim.bench.model). So the methods here read the
replication's attributes directly and call each other with no layer between.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import Timeout

from sim.model.clients import Client, Cohort, Draws, Request
from sim.model.world import BLACKHOLE, REFUSE, UP, Balancer, Instance
from sim.policy.attempts import CONNECT_TIMEOUT
from sim.policy.balancing import BalancingPolicy, eligible
from sim.policy.cache import in_grace
from sim.policy.sampling import arrival_blocks
from sim.replication import DNS_ERROR, ERROR_5XX, OK, REFUSED, SHED, TIMEOUT
from sim.scenario import models as m


class Requests:
    """From a client's request to its outcome, counted per second of issue."""

    scenario: m.Scenario
    env: simpy.Environment
    rng: dict[str, np.random.Generator]
    rotate: int
    instances: list[Instance]
    _eligible: list[Instance] | None
    policy: BalancingPolicy
    service: Draws
    thinning: dict[int, float]
    counts: list[list[int]]
    dns_counts: list[int]
    latencies: list[float]
    fault_times: list[float]
    warmup: float
    issued: int
    finished: int
    current_targets: frozenset[Balancer]
    previous_targets: frozenset[Balancer]
    changed_at: float | None
    to_previous: list[list[int]]
    to_current: list[list[int]]
    rescued: list[list[int]]

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
                        self._sent_elsewhere(req, client.conn_endpoint.balancer, now)
                        client.conn = None
                        return self._failed(req, REFUSED, 0.0)
                    endpoint = client.conn_endpoint
                else:
                    client.conn = None
        if endpoint is None:
            stale = False
            if addresses is None:
                addresses = client.stub_value if now < client.stub_expires else None
                if addresses is None and cohort.grace and client.stub_value is not None:
                    # An expired answer within the stub's grace period: served, and refreshed below.
                    stale = in_grace(now, client.stub_expires, cohort.grace)
                    addresses = client.stub_value if stale else None
            if addresses is None:
                answer = client.resolver.resolve(now, client.id)
                if answer is None:
                    return self._failed(req, DNS_ERROR, 0.0)
                addresses = self._keep_answer(client, answer, now)
            # Retry k and fallback j go k + j addresses past where this client's
            # answer starts: sim.policy.attempts.choose_address "next" on the
            # rotated answer, inlined because this line runs for every request.
            address = addresses[(client.rotation * self.rotate + req.attempt + req.tries) % len(addresses)]
            if stale:
                # The refresh behind the request: the next request uses its answer (a
                # failed lookup leaves the old one, still in grace, as Firefox does).
                answer = client.resolver.resolve(now, client.id)
                if answer is not None:
                    self._keep_answer(client, answer, now)
            endpoint = address.endpoint
            if cohort.keepalive > 0:
                client.conn, client.conn_endpoint, client.conn_opened = address, endpoint, now
        if client.addr is not address:
            if client.addr is not None:
                client.addr.users -= 1
            address.users += 1  # type: ignore[union-attr]
            client.addr = address
        client.conn_last = now
        if endpoint.balancer.current:
            if not (req.attempt or req.tries):
                self.to_current[cohort.index][int(now)] += 1
            if client.switched_at is None and self.changed_at is not None:
                client.switched_at = now
        else:
            self._sent_elsewhere(req, endpoint.balancer, now)
        mode = endpoint.mode
        if mode is not UP:
            client.conn = None
            if cohort.next_address and addresses is not None and req.tries + 1 < len(addresses):
                # address_mode next: the answer's next address, at once after a
                # refusal, after the fallback delay for a blackhole.
                req.tries += 1
                req.failures += 1
                if mode is REFUSE:
                    return self._attempt(req, addresses)
                return self.later(cohort.fallback, self._fall_back, (req, addresses))
            if mode is REFUSE:
                return self._failed(req, REFUSED, 0.0)
            return self._failed(req, TIMEOUT, cohort.timeout)
        if not endpoint.admit(now):
            return self._failed(req, SHED, 0.0)
        self._forward(req, self.scenario.backends.retries, ())

    def _keep_answer(self, client: Client, answer: tuple[tuple, float], now: float) -> tuple:
        """Put a resolver's answer in `client`'s stub cache; returns its addresses."""
        addresses, ttl = answer
        client.stub_value = addresses
        client.stub_expires = now + client.cohort.stub.lifetime(ttl, self.rng["dns"])
        client.rotation += 1
        return addresses

    def _sent_elsewhere(self, req: Request, balancer: Balancer, now: float) -> None:
        """A try sent to a balancer other than the current targets: a previous one
        (before any change there is none, and every try goes to a current one)."""
        client = req.client
        if balancer not in self.previous_targets:
            raise AssertionError(f"a request reached {balancer.name}, neither the previous nor the current target")
        if not (req.attempt or req.tries):
            self.to_previous[client.cohort.index][int(now)] += 1
        client.last_previous_at = now

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
            self.later(CONNECT_TIMEOUT, self._connect_timed_out, (req, retries, (*tried, inst)))
            return
        if inst.busy < inst.workers:
            inst.busy += 1
            inst.outstanding += 1
            self.later(self.service.next() + self.scenario.rtt, self._served, (req, inst, inst.generation))
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
            return self.lost(req, inst)
        inst.outstanding -= 1
        if inst.queue:
            self.later(self.service.next() + self.scenario.rtt, self._served, (inst.queue.popleft(), inst, generation))
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

    def later(self, delay: float, callback: Callable[[Timeout], None], value: object) -> None:
        """Call `callback` with a Timeout event `delay` seconds from now; the event's
        `value` is `value`. No process: one event, as the request path needs."""
        event = Timeout(self.env, delay, value)
        event.callbacks.append(callback)  # type: ignore[union-attr]

    def _failed(self, req: Request, outcome: int, cost: float) -> None:
        if cost > 0:
            self.later(cost, self._after_cost, (req, outcome))
            return
        req.failures += 1
        if req.attempt + 1 < req.client.cohort.attempts:
            req.attempt += 1
            self._attempt(req)
        else:
            self._finish(req, outcome, self.env.now)

    def _after_cost(self, event: Timeout) -> None:
        req, outcome = event.value
        self._failed(req, outcome, 0.0)

    def lost(self, req: Request, inst: Instance) -> None:
        """`req` was held by `inst` when it died: a timeout for a blackhole, else a 5xx."""
        if inst.mode is BLACKHOLE:
            wait = req.started + req.client.cohort.timeout - self.env.now
            self._failed(req, TIMEOUT, max(0.0, wait))
        else:
            self._failed(req, ERROR_5XX, 0.0)

    def _finish(self, req: Request, outcome: int, now: float) -> None:
        if req.attempt < 0:
            raise AssertionError("a request ended twice")  # conservation of requests
        req.attempt = -1
        self.finished += 1
        self.counts[outcome][int(req.issued)] += 1
        if outcome == OK and req.failures:
            self.rescued[req.client.cohort.index][int(req.issued)] += req.failures
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
