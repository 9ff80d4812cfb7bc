"""Lab clients: one asyncio process running many clients, each as its cohort behaves.

Every cohort sends the model's Poisson arrivals for the same seed (scenario
rate, times K; the model's trace, sim.replication.Trace), each request from the member the model picks,
or with `sessions` the model's sessions for that seed, request by request.
Every client starts in the state the model's time 0 finds it (stub cache,
address rotation, open connection), looks the service name up through its
own resolver (a real unbound, or our forwarder)
with its cohort's stub cache (sim.policy, in scenario seconds), keeps its
connection alive as its cohort does, serves an expired answer within its
cohort's `stub_grace` (refreshing it behind the request), restarts when the
model's client restarts (the trace: stub cache and connections gone), retries
as its cohort does, and records
every request: when it was issued and finished (scenario seconds), how it
ended and how many attempts it took; and every try (an attempt, or with
address_mode next each address an attempt tries): the address it was sent
to and when. Each request's path names it (sim.lab.targets.request_path), so
the balancers' access logs say which of them saw it. The records are written
once, atomically, when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rdatatype
import numpy as np

from sim.lab.targets import TRY_COLUMNS, request_path
from sim.policy.cache import Cache, in_grace
from sim.policy.sampling import arrival_blocks
from sim.policy.sessions import Sessions, session_requests
from sim.replication import DNS_ERROR, ERROR_5XX, OK, REFUSED, TIMEOUT
from sim.scenario import build, load_file
from sim.scenario import models as m

SERVICE = "service"

# The User-Agent a lab client sends: the software whose stub cache its cohort has
# (docs/references.md, "Caches above and below the resolver": Chrome floors at
# 60 s, the JVM keeps 30 s, glibc-based runtimes keep nothing, a proxy that
# resolves once keeps the answer), so the balancers' logs show client families
# as production logs do, for `failover-sim fit`. Other stub caches: a runtime.
AGENTS = {
    "floor": b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "fixed": b"Java/17.0.15",
    "none": b"Go-http-client/1.1",
    "forever": b"nginx/1.22.1",
}
RUNTIME_AGENT = b"python-requests/2.31.0"


def user_agent(spec: m.Cohort) -> bytes:
    return AGENTS.get(spec.stub_cache.kind, RUNTIME_AGENT)


class Clock:
    def __init__(self, t0: float, scale: float) -> None:
        self.t0, self.scale = t0, scale

    def now(self) -> float:
        """Scenario seconds."""
        return (time.time() - self.t0) * self.scale

    async def sleep_until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, (t - self.now()) / self.scale))


class Client:
    def __init__(self, cid: int, spec: m.Cohort, resolver: tuple[str, int], plan: dict, clock: Clock,
                 rng: np.random.Generator, log: list, state: dict | None = None, tries: list | None = None) -> None:
        self.id = cid
        # Every try, (client, seq, attempt, try, address index, scenario time): a tuple
        # append per try, the lab's only per-request cost of counting targets.
        self.tries: list = [] if tries is None else tries
        self.address_index = {a: i for i, a in enumerate(plan.get("addresses", ()))}
        self.sent = 0  # this client's requests so far: the next one's seq
        self.spec = spec
        self.resolver = resolver
        # its own loopback address (any port), or the system's choice
        self.source = (state["source"], 0) if state and state.get("source") else None
        self.fqdn = plan["service"]
        self.port = int(plan["port"])
        self.clock = clock
        self.rng = rng
        self.log = log
        # A grace period keeps an expired answer that long to serve it (and refresh it behind).
        self.grace = spec.stub_grace
        self.stub_policy = build.cache_policy(spec.stub_cache)
        self.stub = Cache(self.stub_policy, keep_expired=self.grace)
        self.refreshing: asyncio.Task | None = None
        # bumped by a restart: a request in flight across it does not keep its connection
        self.generation = 0
        self.restarts = [float(t) for t in (state or {}).get("restarts", ())]
        self.agent_header = b"User-Agent: " + user_agent(spec) + b"\r\n"
        self.reuse = build.reuse(spec)
        rule = build.retry(spec)
        self.attempts, self.timeout = rule.attempts, rule.timeout
        # address_mode next: a failed connect moves on to the answer's next address within
        # the attempt, at once when refused, after fallback_delay when it hangs (as the model).
        self.next_address = getattr(spec, "address_mode", "first") == "next"
        delay = getattr(spec, "fallback_delay", None)
        self.fallback = min(delay if delay is not None else rule.timeout, rule.timeout)
        self.rotate = bool(plan.get("rotate", True))
        self.initial = tuple(plan.get("initial", ()))
        self.rotation = 0
        self.conn: tuple | None = None  # (reader, writer, address, opened, last)
        self.primed: tuple[float, float] | None = None  # a connection open at time 0: (opened, last)
        self.lock = asyncio.Lock()
        if state:
            self.rotation = int(state.get("rotation", 0))
            if state.get("stub_primed"):
                expires = state.get("stub")
                self.stub.put_until(SERVICE, self.initial, math.inf if expires is None else float(expires))
            if state.get("conn"):
                opened, last = state["conn"]
                self.primed = (-math.inf if opened is None else float(opened), float(last))

    async def request(self, issued: float) -> None:
        seq, self.sent = self.sent, self.sent + 1
        if self.reuse.keepalive > 0:
            # one pooled connection, one request on it at a time
            async with self.lock:
                outcome, used = await self._attempts(seq)
        else:
            # Each request on its own, as the model sends them: serialised, a request that
            # waited out a timeout held the next ones back, which then ran late (a dns_down:
            # requests the model failed at once waited for the servers' return and passed).
            outcome, used = await self._attempts(seq)
        self.log.append((self.id, issued, self.clock.now(), outcome, seq, used))

    async def _attempts(self, seq: int) -> tuple[int, int]:
        outcome, used = OK, 0
        for attempt in range(self.attempts):
            used += 1
            outcome = await self.attempt(attempt, seq)
            if outcome == OK:
                break
        return outcome, used

    def _tried(self, seq: int, attempt: int, j: int, address: str, t: float, opened: float | None = None) -> None:
        self.tries.append((self.id, seq, attempt, j, self.address_index.get(address, -1), t,
                           t if opened is None else opened))

    def restart(self) -> None:
        """The process restarted (sim.model.lifecycle.restart): its stub cache and its
        connections are gone; a request in flight keeps its socket to the end, as in the
        model, where the restart only forgets the connection."""
        self.stub = Cache(self.stub_policy, keep_expired=self.grace)
        self.primed = None
        self.generation += 1
        old, self.conn = self.conn, None
        if not self.lock.locked():
            self._drop(old)
        elif old is not None:
            # closed once the request in flight (which may be using it) has ended
            asyncio.get_running_loop().create_task(self._close_after(old))

    async def _close_after(self, conn: tuple) -> None:
        async with self.lock:
            with contextlib.suppress(Exception):
                conn[1].close()

    async def run_restarts(self) -> None:
        """This client's restarts, at the model's times (the trace)."""
        for t in self.restarts:
            await self.clock.sleep_until(t)
            self.restart()

    async def resolve(self) -> tuple | None:
        now = self.clock.now()
        value = self.stub.lookup(SERVICE, now)
        if value is not None:
            return value  # type: ignore[return-value]
        if self.grace > 0:
            expires = self.stub.expires_at(SERVICE)
            stale = self.stub.lookup_stale(SERVICE, now)
            if stale is not None and expires is not None and in_grace(now, expires, self.grace):
                # Served expired, and refreshed behind the request (Firefox; as the model).
                if self.refreshing is None or self.refreshing.done():
                    self.refreshing = asyncio.get_running_loop().create_task(self.lookup())
                return stale  # type: ignore[return-value]
        return await self.lookup()

    async def lookup(self) -> tuple | None:
        """Ask the resolver; keep its answer in the stub cache."""
        query = dns.message.make_query(self.fqdn, dns.rdatatype.A)
        try:
            # from the client's own address: a farm's front knows its clients by it
            response = await dns.asyncquery.udp(query, self.resolver[0], port=self.resolver[1], timeout=2.0,
                                                source=self.source[0] if self.source else None)
        except Exception:
            return None
        addresses = tuple(r.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)
        if not addresses:
            return None
        ttl = min(rrset.ttl for rrset in response.answer) * self.clock.scale
        # (a restart while the query was out: the answer goes to the new, empty stub)
        self.stub.store(SERVICE, addresses, ttl, self.clock.now(), self.rng)
        self.rotation += 1
        return addresses

    async def attempt(self, attempt: int, seq: int) -> int:
        now = self.clock.now()
        generation = self.generation
        conn = self.conn
        if conn is not None and not self.reuse.can_reuse(conn[3], conn[4], now):
            self.close()
            conn = None
        primed, self.primed = self.primed, None
        resolving = False
        if conn is not None or (primed is not None and not self.reuse.can_reuse(primed[0], primed[1], now)):
            primed = None
        try:
            async with asyncio.timeout(self.timeout / self.clock.scale):
                if primed is not None:
                    # The connection the model finds open at time 0 (opened before the run,
                    # so no lookup): connected now, with its age and idle time.
                    address = self.initial[(self.rotation if self.rotate else 0) % len(self.initial)]
                    self._tried(seq, attempt, 0, address, now, primed[0])
                    reader, writer = await asyncio.open_connection(address, self.port, local_addr=self.source)
                    conn = (reader, writer, address, primed[0], primed[1])
                elif conn is None:
                    resolving = True
                    addresses = await self.resolve()
                    resolving = False
                    if addresses is None:
                        return DNS_ERROR
                    conn = await self.connect(addresses, attempt, now, seq)
                else:
                    self._tried(seq, attempt, 0, conn[2], now, conn[3])
                reader, writer = conn[0], conn[1]
                keep = self.reuse.keepalive > 0
                writer.write(b"GET " + request_path(self.id, seq, attempt) + b" HTTP/1.1\r\nHost: www\r\n" + self.agent_header
                             + (b"" if keep else b"Connection: close\r\n") + b"\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
        except TimeoutError:
            self._drop(conn)
            # no answer from the resolver within the attempt (its servers are down and it
            # keeps trying): a failed lookup, as the model counts it, not the balancer's timeout
            return DNS_ERROR if resolving else TIMEOUT
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self._drop(conn)
            return REFUSED
        if status >= 500:
            self._drop(conn)
            return ERROR_5XX
        if keep and generation == self.generation:
            self.conn = (conn[0], conn[1], conn[2], conn[3], self.clock.now())
        else:
            self._drop(conn)
        return OK

    async def connect(self, addresses: tuple, attempt: int, now: float, seq: int) -> tuple:
        start = (self.rotation if self.rotate else 0) + attempt
        tries = len(addresses) if self.next_address else 1
        for j in range(tries):
            address = addresses[(start + j) % len(addresses)]
            self._tried(seq, attempt, j, address, now if j == 0 else self.clock.now())
            try:
                if j + 1 < tries:
                    async with asyncio.timeout(self.fallback / self.clock.scale):
                        reader, writer = await asyncio.open_connection(address, self.port, local_addr=self.source)
                else:
                    reader, writer = await asyncio.open_connection(address, self.port, local_addr=self.source)
                return (reader, writer, address, now, now)
            except (OSError, TimeoutError):
                if j + 1 == tries:
                    raise
        raise OSError("no address")

    def _drop(self, conn: tuple | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn[1].close()
        self.conn = None

    def close(self) -> None:
        self._drop(self.conn)


def traffic_factor(scenario: m.Scenario):  # type: ignore[no-untyped-def]
    spans = [(f.at, f.at + f.for_, f.factor) for f in scenario.faults if isinstance(f, m.Traffic)]

    def factor(t: float) -> float:
        return 1.0 + sum(f - 1.0 for a, b, f in spans if a <= t < b)

    return factor


class Arrivals:
    """A cohort's requests: the model's arrival stream (its seed), thinned by a
    traffic factor below 1 as the model thins it; a traffic fault with a factor
    above 1 adds, as in the model, a Poisson stream of the extra rate for its
    span (drawn here, not the model's)."""

    def __init__(self, cohort: m.Cohort, members: list[Client], clock: Clock, end: float, factor) -> None:  # type: ignore[no-untyped-def]
        self.cohort, self.members, self.clock, self.end, self.factor = cohort, members, clock, end, factor
        self.pending: set[asyncio.Task] = set()

    def _issue(self, client: Client, t: float) -> None:
        task = asyncio.get_running_loop().create_task(client.request(t))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def model(self, seed: int) -> None:
        rate = self.cohort.rate * len(self.members)
        if rate <= 0:
            return
        t = 0.0
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        for gaps, picks, coins in arrival_blocks(rng, rate, len(self.members)):
            for gap, pick, coin in zip(gaps, picks, coins, strict=True):
                t += gap
                if t >= self.end:
                    return
                f = self.factor(t)
                if f >= 1.0 or coin < f:
                    await self.clock.sleep_until(t)
                    self._issue(self.members[pick], t)

    async def sessions(self, seed: int, sessions: Sessions) -> None:
        """The cohort's sessions, request by request, from the model's arrival stream (its
        seed) as the model draws them (sim.policy.sessions.session_requests)."""
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        for t, pick in session_requests(sessions, len(self.members), rng, self.end, self.factor):
            await self.clock.sleep_until(t)
            self._issue(self.members[pick], t)

    async def extra(self, rng: np.random.Generator, spans: list[tuple[float, float, float]]) -> None:
        rate = self.cohort.rate * len(self.members)
        for start, stop, factor in spans:
            if factor <= 1.0 or rate <= 0:
                continue
            t = start
            while True:
                t += rng.exponential(1.0 / ((factor - 1.0) * rate))
                if t >= min(stop, self.end):
                    break
                await self.clock.sleep_until(t)
                self._issue(self.members[int(rng.integers(len(self.members)))], t)

    async def drain(self) -> None:
        if self.pending:
            longest = max(c.attempts * c.timeout for c in self.members)
            await asyncio.wait(self.pending, timeout=longest / self.clock.scale + 2)
        for c in self.members:
            c.close()


async def _run(plan: dict) -> None:
    scenario = load_file(plan["scenario"])
    clock = Clock(plan["t0"], plan["scale"])
    cohorts = {c.name: c for c in scenario.clients}
    log: list = []
    tries: list = []
    seeds = np.random.SeedSequence(plan["seed"]).spawn(len(plan["clients"]) + 1)
    clients = [
        Client(c["id"], cohorts[c["cohort"]], (c["resolver"][0], int(c["resolver"][1])), plan, clock,
               np.random.default_rng(s), log, c, tries)
        for c, s in zip(plan["clients"], seeds, strict=False)
    ]
    factor = traffic_factor(scenario)
    spans = [(f.at, f.at + f.for_, f.factor) for f in scenario.faults if isinstance(f, m.Traffic)]
    extra = np.random.default_rng(seeds[-1])
    streams = [Arrivals(c, [x for x in clients if x.spec.name == c.name], clock, plan["end"], factor)
               for c in scenario.clients]
    print(json.dumps({"event": "ready", "clients": len(clients)}), flush=True)
    restarts = [asyncio.get_running_loop().create_task(c.run_restarts()) for c in clients if c.restarts]
    sessions = {c.name: c.sessions.policy() for c in scenario.clients if c.sessions is not None}
    await asyncio.gather(*(a.model(seed) if sessions.get(a.cohort.name) is None else a.sessions(seed, sessions[a.cohort.name])
                           for a, seed in zip(streams, plan["arrival_seeds"], strict=True)),
                         *(a.extra(extra, spans) for a in streams))
    for task in restarts:
        task.cancel()
    await asyncio.gather(*(a.drain() for a in streams))
    records = np.array(log, dtype=float).reshape(-1, 6)
    for path, table in ((plan["tries"], np.array(tries, dtype=float).reshape(-1, len(TRY_COLUMNS))), (plan["out"], records)):
        tmp = path + ".partial.npy"
        np.save(tmp, table)
        os.replace(tmp, path)  # the requests last: their file says both are complete


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.lab.clients")
    p.add_argument("plan", help="JSON plan written by sim.lab.world")
    args = p.parse_args(argv)
    plan = json.loads(Path(args.plan).read_text())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
