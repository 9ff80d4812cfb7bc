"""Drain after a planned DNS change, against closed forms (docs/scenario.md, "Drain").

One client per honouring resolver (each resolver's cache is that client's
alone, so clients are independent), Poisson requests at rate r, the record's
TTL T, propagation 0, a `dns_change` at c. At c the resolver holds the old
answer with probability p = T / (T + 1/r) (present for T after each fetch, then
absent until the next request, 1/r on average), and when it does its time left
is uniform on (0, T). A client switches at its first request after that
expiry, so:

- the mean drain is p T / 2 + 1/r (memoryless arrivals after the expiry);
- a request t < T after c goes to the previous target iff the cache still
  holds the old answer: probability p (T - t) / T.

Tolerances are the standard error measured in the same run (clients for the
mean, replications for the shares), times a normal quantile for 1e-4 two-sided.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.analysis.drain import drain_times, replication_drain, stale_names
from sim.model import simulate
from tests.model.scenarios import CHANGE_AT, drain_scenario, scenario

Z = 3.9  # two-sided 1e-4


def _runs(sc, strategy: str, reps: int, stale_at: list[float]):  # type: ignore[no-untyped-def]
    drains, shares = [], []
    for k in range(reps):
        out = simulate(sc, strategy, np.random.SeedSequence([11, k]))
        assert out.metrics["changed_at"] == CHANGE_AT
        drains.append(drain_times(out.clients, CHANGE_AT))
        metrics = replication_drain(out.clients, out.targets, CHANGE_AT, stale_at)
        shares.append([metrics[stale_names(t)[0]] for t in stale_at])
    return np.concatenate(drains), np.array(shares)


@pytest.mark.parametrize(
    ("stub", "hold", "derivation"),
    [
        # No stub cache: the resolver's TTL T is what the client waits out.
        ({"kind": "none"}, 120.0, "resolver"),
        # A stub that floors every answer at 60 s, over a 30 s record: the stub
        # fetches from the resolver only after holding an answer 60 s, by which
        # time the resolver's copy (fetched by this same client, alone on it) has
        # expired; so the stub is the only cache that matters, with L = 60 s in
        # place of T: p = L / (L + 1/r), mean drain p L / 2 + 1/r.
        ({"kind": "floor", "min_ttl": "60s"}, 60.0, "stub floor"),
    ],
)
def test_drain_matches_the_closed_form(stub: dict, hold: float, derivation: str) -> None:
    rate = 0.1
    ttl = 120.0 if derivation == "resolver" else 30.0
    sc = drain_scenario(ttl, rate, 400, stub)
    after = hold / 2
    drains, shares = _runs(sc, "cname_repoint", 6, [after])
    p = hold / (hold + 1 / rate)
    assert np.isfinite(drains).all(), "every client switches well within the run"
    expected_mean = p * hold / 2 + 1 / rate
    se = drains.std(ddof=1) / math.sqrt(drains.size)
    assert abs(drains.mean() - expected_mean) <= Z * se, (derivation, drains.mean(), expected_mean, se)
    expected_share = p * (hold - after) / hold
    share_se = shares[:, 0].std(ddof=1) / math.sqrt(len(shares))
    assert abs(shares[:, 0].mean() - expected_share) <= Z * share_se + 1e-9, (derivation, shares[:, 0], expected_share)


def test_an_honouring_stub_lets_go_with_its_resolver_from_the_start() -> None:
    """An honouring stub behind an honouring resolver, one client each, requests every second
    over a 60 s TTL, the change at 60 s (within the first TTL): in steady state the stub's
    answer is the resolver's and lets go with it, so the closed form above holds with
    T = 60 s, r = 1/s (mean drain p T / 2 + 1/r = 30.5 s; the share of clients whose last
    request to the previous target comes after c + t, p (u - (1 - e^{-r (T - t)}) / (r T))
    with u = (T - t) / T: 0.475 at t = 30 s). The model once primed the stub apart from its
    resolver, and the resolver with the averaged query rate of a stub cycle (absent a third
    of the time, not 1/61): each resolver then fetched at the later of the two draws, a
    phase a client that asks every second keeps for many TTLs (here a drain of 36.6 s and
    0.625 of the clients late, 10 and 8 standard errors off; now 31.2 s and 0.501;
    sim.model.building `_resolver_load`, `_prime_client`)."""
    rate, ttl, after, change = 1.0, 60.0, 30.0, 60.0
    sc = drain_scenario(ttl, rate, 200, {"kind": "honor"},
                        **{"duration": "3m", "faults": [{"kind": "dns_change", "at": f"{change}s"}]})
    drains, late = [], []
    for k in range(4):
        out = simulate(sc, "cname_repoint", np.random.SeedSequence([11, k]))
        assert out.metrics["changed_at"] == change
        drains.append(drain_times(out.clients, change))
        late.append(out.clients["last_previous_at"].to_numpy(dtype=float) > change + after)
    drain, stale = np.concatenate(drains), np.concatenate(late)
    assert np.isfinite(drain).all(), "every client switches within the run"
    p = ttl / (ttl + 1 / rate)
    expected_mean = p * ttl / 2 + 1 / rate
    se = drain.std(ddof=1) / math.sqrt(drain.size)
    assert abs(drain.mean() - expected_mean) <= Z * se, (drain.mean(), expected_mean, se)
    # Clients are independent (one resolver each): a binomial share over all of them.
    u = (ttl - after) / ttl
    expected_late = p * (u - (1 - math.exp(-rate * (ttl - after))) / (rate * ttl))
    late_se = math.sqrt(expected_late * (1 - expected_late) / stale.size)
    assert abs(stale.mean() - expected_late) <= Z * late_se, (stale.mean(), expected_late, late_se)


def test_an_address_move_resets_pooled_connections_and_retries_rescue_them() -> None:
    """eip_remap with the move taking no time: after it, the only way to the previous
    target is a connection opened before it, which is reset once; with a second
    attempt every such request is rescued, so rescued attempts equal first attempts
    to the previous target, nothing fails, and no client is reset twice."""
    sc = drain_scenario(
        60.0, 0.2, 200, {"kind": "none"}, "eip_remap",
        **{"clients.0.keepalive": "60s", "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "failover.remap_delay": "0s"},
    )
    out = simulate(sc, "eip_remap", np.random.SeedSequence(3))
    targets = out.targets
    assert out.metrics["failed"] == 0
    assert targets["rescued"].sum() == targets["to_previous"].sum() > 0
    assert (out.clients["last_previous_at"].notna()).sum() == targets["to_previous"].sum() <= len(out.clients)
    # every request counted once, as a first attempt to one target or the other
    assert targets["to_previous"].sum() + targets["to_current"].sum() == out.timeline["requests"].sum()


def test_every_client_is_listed_with_when_it_moved() -> None:
    sc = drain_scenario(60.0, 0.5, 50, {"kind": "none"})
    out = simulate(sc, "cname_repoint", np.random.SeedSequence(5))
    clients = out.clients
    assert len(clients) == 50 and clients["failed"].eq(0).all()  # a planned change fails nobody
    switched = clients["switched_at"].dropna()
    assert (switched >= CHANGE_AT).all()
    last = clients["last_previous_at"].dropna()
    assert (last >= CHANGE_AT).all() and (last <= CHANGE_AT + 60.0).all()  # gone once the TTL has passed


def test_a_change_that_does_not_fit_the_strategy_is_refused() -> None:
    from sim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"faults\[0\].kind: dns_change does not fit strategy eip_remap"):
        scenario(**{"strategies": ["cname_repoint", "eip_remap"], "faults": [{"kind": "dns_change", "at": "1m"}]})
    both = scenario(**{"strategies": ["cname_repoint", "eip_remap"],
                       "faults": [{"kind": "dns_change", "at": "1m"}, {"kind": "address_move", "at": "1m"}]})
    assert both.planned_change(True).kind == "dns_change" and both.planned_change(False).kind == "address_move"
