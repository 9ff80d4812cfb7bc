"""sim.model.trace: a replication's random inputs, read without running it, are the
ones the model's replication of the same seed draws (the lab replays them;
tests/lab runs the lab itself)."""

from __future__ import annotations

import numpy as np

import sim.model
import sim.scenario
from sim.model.engine import Replication
from sim.policy.failover import CnameRepoint
from sim.policy.sampling import arrival_blocks
from sim.replication import CachedRecord, Trace
from sim.scenario.build import compile as compile_strategy
from tests.model.scenarios import trace_scenario


def test_layout_priming_and_lifetimes_are_the_models() -> None:
    sc = trace_scenario()
    seed = np.random.SeedSequence(5)
    trace = sim.model.trace(sc, "cname_repoint", seed)
    assert isinstance(trace, Trace)
    assert all(isinstance(r, CachedRecord) for records in trace.caches for r in records)
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
    assert trace.faults.random() == rep.rng["faults"].random()


def test_the_arrival_seeds_give_the_models_requests() -> None:
    """Replayed with sim.policy.sampling.arrival_blocks, each cohort's seed gives the
    requests the model issues, request for request (no traffic fault here)."""
    sc = trace_scenario()
    seed = np.random.SeedSequence(11)
    rep = Replication(sc, "cname_repoint", seed)
    issued: list[tuple[float, int]] = []
    rep._issue = lambda client: issued.append((round(rep.env.now, 9), client.id))  # type: ignore[method-assign]
    rep.run()

    trace = sim.model.trace(sc, "cname_repoint", seed)
    replayed: list[tuple[float, int]] = []
    first = 0
    for cohort, arrival_seed in zip(sc.clients, trace.arrival_seeds, strict=True):
        n = sc.cohort_sizes()[cohort.name]
        rng = np.random.default_rng(np.random.SeedSequence(arrival_seed))
        t = 0.0
        for gaps, picks, _coins in arrival_blocks(rng, cohort.rate * n, n):
            for gap, pick in zip(gaps, picks, strict=True):
                t += gap
                if t >= sc.end:
                    break
                replayed.append((round(t, 9), first + pick))
            else:
                continue
            break
        first += n
    assert len(issued) > 500
    assert sorted(replayed) == sorted(issued)


def test_a_trace_is_the_same_however_the_strategy_is_given() -> None:
    sc = trace_scenario()
    for strategy in (CnameRepoint, compile_strategy(sc, "cname_repoint")):
        by_name = sim.model.trace(sc, "cname_repoint", np.random.SeedSequence(3))
        other = sim.model.trace(sc, strategy, np.random.SeedSequence(3))
        assert other.clients == by_name.clients and other.caches == by_name.caches
        assert (other.arrival_seeds, other.resolver_seeds) == (by_name.arrival_seeds, by_name.resolver_seeds)
        assert other.failover.random() == by_name.failover.random()


def test_a_trace_does_not_depend_on_what_the_seed_was_used_for_before() -> None:
    sc = trace_scenario()
    seed = np.random.SeedSequence(8)
    before = sim.model.trace(sc, "cname_repoint", seed)
    seed.spawn(3)  # spawning counts children on the SeedSequence itself
    after = sim.model.trace(sc, "cname_repoint", seed)
    assert after.clients == before.clients and after.arrival_seeds == before.arrival_seeds


def test_a_farms_trace_holds_every_cache_and_each_clients_own() -> None:
    """A farm's caches are each primed on their own (the lab primes each unbound from
    `farms`), and each client's own cache is the model's, spread evenly over the farm."""
    doc = trace_scenario().to_document()
    doc["dns"]["resolvers"][0].update(caches=3, sticky=0.5)
    sc = sim.scenario.load_data(doc, "farm-trace")
    trace = sim.model.trace(sc, "cname_repoint", np.random.SeedSequence(5))
    rep = Replication(sc, "cname_repoint", np.random.SeedSequence(5))
    assert [len(f) for f in trace.farms] == [r.setup.farm.caches for r in rep.resolvers] == [3, 3, 3, 1, 1]
    for n, resolver in enumerate(rep.resolvers):
        assert trace.caches[n] == trace.farms[n][0]
        for records, cache in zip(trace.farms[n], resolver.caches, strict=True):
            assert sorted(r.expires for r in records) == sorted(e for _, _, e in cache.items())
        homes = [c.home for c in trace.clients if c.resolver == n]
        assert homes == [resolver.homes.get(c.id, 0) for c in rep.clients if rep.resolvers.index(c.resolver) == n]
        counts = np.bincount(homes, minlength=resolver.setup.farm.caches) if homes else np.zeros(1)
        assert counts.max() - counts.min() <= 1  # round robin over the farm's caches
    # the farm's picks come from the resolver's own seed, which the trace hands the lab's front
    for seed, resolver in zip(trace.resolver_seeds, rep.resolvers, strict=True):
        assert resolver.rng.random() == np.random.default_rng(seed).random()


class _Recorded(Replication):
    """The model's replication, recording each restart as its event happens and each
    client's state once the restarts before time 0 are applied."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.restarted: dict[int, list[float]] = {}
        self.at_start: dict[int, tuple] = {}

    def _start_restarts(self, cohort, members, rng) -> None:  # type: ignore[no-untyped-def]
        super()._start_restarts(cohort, members, rng)
        for c in members:
            self.at_start[c.id] = (c.stub_value is not None, c.conn is not None, c.conn_opened)

    def _restart(self, event) -> None:  # type: ignore[no-untyped-def]
        self.restarted.setdefault(event.value[0].id, []).append(self.env.now)
        super()._restart(event)


def test_a_trace_lists_each_clients_restarts_as_the_model_makes_them() -> None:
    """Restarts are drawn while the model runs (its events, in time order, from the
    cohort's stream); the trace draws the same, and starts from the state the restart
    before time 0 left: a forever stub emptied, a connection closed or younger."""
    doc = trace_scenario().to_document()
    doc["clients"][0]["restart"] = {"every": {"exp": "15s"}}
    doc["clients"][1].update(restart={"every": {"uniform": ["5s", "40s"]}}, stub_cache={"kind": "forever"},
                             keepalive="60s")
    sc = sim.scenario.load_data(doc, "restart-trace")
    trace = sim.model.trace(sc, "cname_repoint", np.random.SeedSequence(7))
    rep = _Recorded(sc, "cname_repoint", np.random.SeedSequence(7))
    rep.run()
    assert sum(len(c.restarts) for c in trace.clients) > 20
    for i, state in enumerate(trace.clients):
        assert state.restarts == rep.restarted.get(i, [])
        stub, conn, opened = rep.at_start[i]
        assert (state.stub_expires is not None, state.conn is not None) == (stub, conn)
        if conn:
            assert state.conn[0] == opened  # type: ignore[index]
    assert any(s.stub_expires is None for s in trace.clients[7:])  # a forever stub a restart emptied
