"""Drain after a planned change on the fast engine (sim.fast.targets), against closed forms.

The cases of tests/model/test_drain.py, derived there: one client per honouring
resolver, Poisson requests at rate r, TTL T, propagation 0, a `dns_change` at
c. The resolver holds the old answer at c with probability p = T / (T + 1/r),
its time left uniform on (0, T), so the mean drain is p T / 2 + 1/r and a
request t < T after c goes to the previous target with probability
p (T - t) / T. A stub that floors answers at 60 s over a 30 s record is the only
cache that matters (the resolver's copy, fetched by the same client, has
expired when the stub asks again): the same with L = 60 s in place of T. An
honouring stub never outlives the resolver's answer: the same as no stub cache.

Tolerances: the standard error measured in the same run (clients for the
mean, replications for the shares) times a normal quantile for 1e-4
two-sided.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis.drain import drain_times, replication_drain, stale_names
from sim.fast import simulate
from tests.model.scenarios import CHANGE_AT, drain_scenario, scenario

Z = 3.9  # two-sided 1e-4


def _runs(sc, strategy: str, reps: int, stale_at: list[float]):  # type: ignore[no-untyped-def]
    drains, shares, clients = [], [], []
    for k in range(reps):
        out = simulate(sc, strategy, np.random.SeedSequence([11, k]))
        assert out.metrics["changed_at"] == CHANGE_AT
        drains.append(drain_times(out.clients, CHANGE_AT))
        metrics = replication_drain(out.clients, out.targets, CHANGE_AT, stale_at)
        shares.append([metrics[stale_names(t)[0]] for t in stale_at])
        clients.append([metrics[stale_names(t)[1]] for t in stale_at])
    return np.concatenate(drains), np.array(shares), np.array(clients)


@pytest.mark.parametrize(
    ("stub", "hold", "derivation"),
    [
        ({"kind": "none"}, 120.0, "resolver"),
        # An honouring stub lets go with the resolver's answer, so the resolver refetches at its
        # client's next request, as with no stub cache (the fast engine once drew that wait
        # from the averaged stub cycle, 1 / (T/2 + 1/r): p 0.63 where the form says 0.92).
        ({"kind": "honor"}, 120.0, "resolver"),
        ({"kind": "floor", "min_ttl": "60s"}, 60.0, "stub floor"),
    ],
)
def test_drain_matches_the_closed_form(stub: dict, hold: float, derivation: str) -> None:
    rate = 0.1
    ttl = 120.0 if derivation == "resolver" else 30.0
    sc = drain_scenario(ttl, rate, 2000, stub)
    after = hold / 2
    drains, shares, stale_clients = _runs(sc, "cname_repoint", 8, [after])
    p = hold / (hold + 1 / rate)
    assert np.isfinite(drains).all(), "every client switches well within the run"
    expected_mean = p * hold / 2 + 1 / rate
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected_mean) <= Z * se, (derivation, drains.mean(), expected_mean, se)
    expected_share = p * (hold - after) / hold
    share_se = shares[:, 0].std(ddof=1) / math.sqrt(len(shares))
    assert abs(shares[:, 0].mean() - expected_share) <= Z * share_se + 1e-9, (derivation, shares[:, 0], expected_share)
    # A client still sends to the old target after c + t iff its old answer outlives
    # c + t and a request falls between: p x E[(1 - e^{-r (R - t)}) ; R > t], R uniform on (0, L).
    u = (hold - after) / hold
    expected_clients = p * (u - (1 - math.exp(-rate * (hold - after))) / (rate * hold))
    clients_se = stale_clients[:, 0].std(ddof=1) / math.sqrt(len(stale_clients))
    assert abs(stale_clients[:, 0].mean() - expected_clients) <= Z * clients_se + 1e-9, (
        derivation, stale_clients[:, 0], expected_clients)


def test_an_address_move_resets_pooled_connections_and_retries_rescue_them() -> None:
    """eip_remap with the move taking no time (as tests/model/test_drain.py): after it the
    only way to the previous target is a connection opened before it, reset once; with a
    second attempt every such request is rescued, so nothing fails, rescued attempts equal
    first attempts to the previous target, and each reset client's last one is its reset."""
    sc = drain_scenario(
        60.0, 0.2, 200, {"kind": "none"}, "eip_remap",
        **{"clients.0.keepalive": "60s", "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "failover.remap_delay": "0s"},
    )
    out = simulate(sc, "eip_remap", np.random.SeedSequence(3))
    targets = out.targets
    assert out.metrics["failed"] == 0
    assert targets["rescued"].sum() == targets["to_previous"].sum() > 0
    assert out.clients["last_previous_at"].notna().sum() == targets["to_previous"].sum() <= len(out.clients)
    # A pooled connection idle less than keepalive at the move is reset: with requests
    # every 5 s and 60 s of keepalive, nearly every client (1 - e^{-12}).
    assert targets["to_previous"].sum() >= 0.95 * len(out.clients)
    switched = out.clients["switched_at"]
    assert switched.notna().all() and (switched >= CHANGE_AT).all()


def test_without_pooled_connections_an_address_move_drains_at_once() -> None:
    """eip_remap, remap 5 s: every request in [c, c + 5 s) goes to the previous target and
    each client switches at its first request after the move: mean drain 5 s + 1/r."""
    rate = 0.5
    sc = drain_scenario(60.0, rate, 2000, {"kind": "none"}, "eip_remap", **{"failover.remap_delay": "5s"})
    out = simulate(sc, "eip_remap", np.random.SeedSequence(4))
    drains = drain_times(out.clients, CHANGE_AT)
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - (5.0 + 1 / rate)) <= Z * se
    t = out.targets
    before, during = t[t["t"] < CHANGE_AT], t[(t["t"] >= CHANGE_AT) & (t["t"] < CHANGE_AT + 5)]
    assert before["to_previous"].sum() == 0 and during["to_current"].sum() == 0 < during["to_previous"].sum()
    assert (out.clients["last_previous_at"].dropna() < CHANGE_AT + 5).all()


def test_every_client_is_listed_with_when_it_moved() -> None:
    sc = drain_scenario(60.0, 0.5, 50, {"kind": "none"})
    out = simulate(sc, "cname_repoint", np.random.SeedSequence(5))
    clients = out.clients
    assert len(clients) == 50 and clients["failed"].eq(0).all()  # a planned change fails nobody
    switched = clients["switched_at"].dropna()
    assert (switched >= CHANGE_AT).all()
    last = clients["last_previous_at"].dropna()
    assert (last >= CHANGE_AT).all() and (last <= CHANGE_AT + 60.0).all()  # gone once the TTL has passed
    assert out.metrics["failed"] == 0


def test_no_change_no_targets_moved() -> None:
    """Without a planned change or a failover nothing goes to a previous target."""
    sc = scenario(**{"faults": [{"kind": "traffic", "at": "10s", "factor": 2, "for": "10s"}]})
    out = simulate(sc, "cname_repoint", np.random.SeedSequence(6))
    assert math.isnan(out.metrics["changed_at"])
    assert out.targets["to_previous"].sum() == 0 and out.clients["switched_at"].isna().all()


def test_a_pooled_connection_with_no_age_limit_carries_every_request_past_a_dns_change() -> None:
    """Keep-alive 1 h, requests every 10 s, no max_connection_age: the connection each client
    holds (primed as steady state finds it) is never closed, so no client looks up the name
    again and none switches after the change, in both engines. Both had read `now - opened <
    max_age` as inf < inf with the opening time at -inf: the model then opened a connection
    (and made a lookup) at each client's first request, and the fast engine took every
    connection for closed at the change and switched all 200 clients."""
    from sim.model import simulate as model_simulate

    sc = drain_scenario(60.0, 0.1, 200, {"kind": "none"}, **{"clients.0.keepalive": "1h"})
    for engine in (model_simulate, simulate):
        out = engine(sc, "cname_repoint", np.random.SeedSequence(5))
        assert out.metrics["requests"] > 10_000
        assert out.metrics["dns_queries"] == 0, engine
        assert out.clients["switched_at"].isna().all(), engine
