"""sim.lab.trace: the lab draws what the model draws for the same seed (no processes here;
tests/lab/test_lab.py runs the lab itself)."""

from __future__ import annotations

import asyncio
import copy

import numpy as np

from sim.lab.clients import Arrivals, traffic_factor
from sim.lab.trace import model_trace
from sim.model.engine import Replication
from sim.scenario import load_data
from tests.model.scenarios import BASE


def _scenario():  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(BASE)
    doc.update({"name": "trace", "duration": "60s"})
    doc["clients"] = [
        {"name": "a", "count": 7, "rate": "2/s", "stub_cache": {"kind": "fixed", "ttl": "30s"}, "keepalive": "60s"},
        {"name": "b", "count": 3, "rate": "1/s", "stub_cache": {"kind": "none"}},
    ]
    doc["dns"]["resolvers"] = [
        {"name": "isp", "count": 3, "share": 0.7, "policy": {"kind": "honor"}},
        {"name": "stretch", "count": 2, "share": 0.3, "policy": {"kind": "extend", "extra": {"exp": "5m"}}},
    ]
    return load_data(doc, "trace")


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


def test_lab_arrivals_are_the_models_request_for_request() -> None:
    sc = _scenario()
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
            await stream.model(arrival_seed)
            await stream.drain()

    asyncio.run(lab())
    assert len(issued) > 500
    assert sorted(log) == sorted(issued)


def test_layout_priming_and_lifetimes_are_the_models() -> None:
    sc = _scenario()
    seed = np.random.SeedSequence(5)
    trace = model_trace(sc, "cname_repoint", seed)
    rep = Replication(sc, "cname_repoint", np.random.SeedSequence(5))
    index = {id(r): i for i, r in enumerate(rep.resolvers)}
    assert [c.resolver for c in trace.clients] == [index[id(c.resolver)] for c in rep.clients]
    assert any(c.conn is not None for c in trace.clients) and any(c.stub_expires for c in trace.clients)
    for state, client in zip(trace.clients, rep.clients, strict=True):
        assert state.rotation == client.rotation
        if state.stub_expires is not None:
            assert state.stub_expires == client.stub_expires
    # each resolver's primed records, and its stream of lifetimes: a forwarder seeded
    # with trace.resolver_seeds[j] draws what the model's resolver j draws
    for j, resolver in enumerate(rep.resolvers):
        expected = sorted(e for _, _, e in resolver.cache.items())
        assert sorted(r.expires for r in trace.caches[j]) == expected
        mine = np.random.default_rng(trace.resolver_seeds[j])
        assert resolver.cache.policy.lifetime(300.0, mine) == resolver.cache.policy.lifetime(300.0, resolver.rng)
    # the failover stream is the model's: the health checker's phase is its first draw
    assert trace.failover.random() == rep.rng["failover"].random()


def test_extra_traffic_fills_its_span_from_its_start() -> None:
    """A traffic factor of 3 from 30.5 s to 40.5 s adds 2 x the cohort's rate, in
    that span only (the model's _extra_arrivals); nothing outside it."""
    sc = _scenario()
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
