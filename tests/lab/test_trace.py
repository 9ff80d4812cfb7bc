"""The lab's side of replaying the model's draws (no processes here; tests/lab/test_lab.py
runs the lab itself). The model builds the trace (sim.model.trace, tested in
tests/model/test_trace.py); these tests hold what the lab does with it: its
arrival streams send the model's requests, its forwarders draw the model's
cache lifetimes, its clients restart and serve in grace."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

import sim.scenario
from sim.lab.clients import Arrivals, traffic_factor
from sim.lab.dnsserver import Forwarder
from sim.model.engine import Replication
from sim.model.trace import trace as model_trace
from sim.scenario import build
from tests.model.scenarios import trace_scenario


class _Member:
    def __init__(self, cid: int, log: list) -> None:
        self.id, self.log, self.attempts, self.timeout = cid, log, 1, 1.0

    async def request(self, t: float) -> None:
        self.log.append((round(t, 9), self.id))

    def close(self) -> None:
        pass


class _NoWait:
    scale = 1.0

    async def sleep_until(self, t: float) -> None:
        pass


def _issued_by_model_and_lab(sc: Any) -> tuple[list[tuple[float, int]], list[tuple[float, int]], dict[str, int]]:
    """(time, client) of every request the model issues for seed 11, and of every one the
    lab's arrival streams send when replaying the trace; and the cohort sizes."""
    seed = np.random.SeedSequence(11)
    rep = Replication(sc, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    issued: list[tuple[float, int]] = []
    rep._issue = lambda client: issued.append((round(rep.env.now, 9), client.id))  # type: ignore[method-assign]
    rep.run()
    trace = model_trace(sc, "cname_repoint", seed)
    log: list[tuple[float, int]] = []
    sizes = sc.cohort_sizes()

    async def lab() -> None:
        first = 0
        for cohort, arrival_seed in zip(sc.clients, trace.arrival_seeds, strict=True):
            members = [_Member(first + i, log) for i in range(sizes[cohort.name])]
            first += len(members)
            stream = Arrivals(cohort, members, _NoWait(), sc.end, traffic_factor(sc))  # type: ignore[arg-type]
            if cohort.sessions is None:
                await stream.model(arrival_seed)
            else:
                await stream.sessions(arrival_seed, cohort.sessions.policy())
            await stream.drain()

    asyncio.run(lab())
    return issued, log, sizes


def test_lab_arrivals_are_the_models_request_for_request() -> None:
    issued, log, _ = _issued_by_model_and_lab(trace_scenario())
    assert len(issued) > 500
    assert sorted(log) == sorted(issued)


def test_forwarders_draw_the_models_cache_lifetimes() -> None:
    """A forwarder seeded with trace.resolver_seeds[j] keeps each answer as long as the
    model's resolver j keeps it, draw for draw (the stretching policy draws)."""
    sc = trace_scenario()
    trace = model_trace(sc, "cname_repoint", np.random.SeedSequence(5))
    rep = Replication(sc, "cname_repoint", np.random.SeedSequence(5))
    groups = [g for g in sc.dns.resolvers for _ in range(g.count)]
    assert len(trace.resolver_seeds) == len(groups) == len(rep.resolvers)
    for seed, group, resolver in zip(trace.resolver_seeds, groups, rep.resolvers, strict=True):
        forwarder = Forwarder(("127.0.0.1", 9), build.cache_policy(group.policy), 1.0, seed)
        mine = [forwarder.cache.policy.lifetime(300.0, forwarder.rng) for _ in range(5)]
        theirs = [resolver.cache.policy.lifetime(300.0, resolver.rng) for _ in range(5)]
        assert mine == theirs, group.name
    assert any(g.policy.kind == "extend" for g in groups)


def test_extra_traffic_fills_its_span_from_its_start() -> None:
    """A traffic factor of 3 from 30.5 s to 40.5 s adds 2 x the cohort's rate, in
    that span only (the model's _extra_arrivals); nothing outside it."""
    sc = trace_scenario()
    cohort = sc.clients[0]
    log: list[tuple[float, int]] = []
    members = [_Member(i, log) for i in range(7)]
    rng = np.random.default_rng(3)

    async def go() -> None:
        stream = Arrivals(cohort, members, _NoWait(), sc.end, lambda t: 1.0)  # type: ignore[arg-type]
        await stream.extra(rng, [(30.5, 40.5, 3.0)])
        await stream.drain()

    counts = []
    for _ in range(40):
        log.clear()
        asyncio.run(go())
        assert all(30.5 <= t < 40.5 for t, _ in log)
        counts.append(len(log))
    # Poisson with mean 2 x 14/s x 10 s = 280 per span: the mean of 40 within 4 sd of the mean
    expected = 2 * cohort.rate * 7 * 10
    assert abs(np.mean(counts) - expected) < 4 * np.sqrt(expected / 40), (np.mean(counts), expected)
    assert min(t for t, _ in log) < 31.0  # it starts at the span, not at the next whole second


def test_a_lab_client_restarts_and_serves_in_grace_as_the_model() -> None:
    """A lab client primed from the trace (no sockets): its stub answer kept past expiry
    for the grace period (sim.policy.cache.in_grace), and emptied with its connection at
    a restart, which the trace lists at the model's times."""
    from sim.lab.clients import SERVICE, Client, Clock

    doc = trace_scenario().to_document()
    doc["clients"][0].update(stub_grace="20s", restart={"every": {"exp": "15s"}})
    sc = sim.scenario.load_data(doc, "grace")
    trace = model_trace(sc, "cname_repoint", np.random.SeedSequence(3))
    states = trace.clients[:7]
    assert all(s.restarts == sorted(s.restarts) for s in states) and any(s.restarts for s in states)
    plan = {"service": "www.example.com.", "port": 80, "initial": ["192.0.2.1"]}

    async def check() -> None:
        clock = Clock(0.0, 1.0)
        client = Client(0, sc.clients[0], ("127.0.0.1", 9), plan, clock, np.random.default_rng(0), [],
                        {"stub_primed": True, "stub": -5.0, "restarts": states[0].restarts})
        # expired 5 s before time 0, in its 20 s of grace until 15 s
        assert client.stub.lookup(SERVICE, 10.0) is None
        assert client.stub.lookup_stale(SERVICE, 10.0) == ("192.0.2.1",)
        assert client.stub.lookup_stale(SERVICE, 15.0) is None
        client.stub.put_until(SERVICE, ("192.0.2.1",), 100.0)
        writer = _Writer()
        client.conn = (None, writer, "192.0.2.1", 0.0, 0.0)
        generation = client.generation
        client.restart()
        assert client.stub.lookup(SERVICE, 1.0) is None and client.conn is None and writer.closed
        assert client.generation == generation + 1 and client.restarts == states[0].restarts

    asyncio.run(check())


class _Writer:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_lab_sessions_are_the_models_request_for_request() -> None:
    """A cohort with sessions, replayed from its arrival seed (sim.policy.sessions.session_requests),
    sends the model's requests, member and time, a traffic fault's thinning included."""
    doc = trace_scenario().to_document()
    doc["clients"][0].pop("rate")
    doc["clients"][0]["sessions"] = {"requests": {"exp": 4}, "think": {"exp": "2s"}, "gap": {"exp": "20s"}}
    doc["faults"] = [*doc.get("faults", []), {"at": "20s", "kind": "traffic", "factor": 0.5, "for": "20s"}]
    sc = sim.scenario.load_data(doc, "sessions")
    issued, log, sizes = _issued_by_model_and_lab(sc)
    mine = sorted(x for x in issued if x[1] < sizes["a"])
    assert len(mine) > 50
    assert sorted(log) == sorted(issued)
