"""Pooled connections (keep-alive with an age limit) through a planned DNS change, against the model.

Requests every 20 s, a 30 s keepalive and a 3 min age limit: idle closes renew the
connections often, so the connection open at the change is young, and its requests
come closer together than Poisson ones (every gap on it is under 30 s). The old
balancer is switched off at 4 min. Before the fix (sim.fast.pooled.first_open_after,
Drain, last_short; the load each balancer sheds), 4 replications: with no surge the
fast engine's last request to the old balancer came at 126 s on average against the
model's 112 s (13 standard errors), 3,983 requests went there against 3,215, and 38
failed at the switch-off against 8; with a fourfold surge from 50 s to 200 s (10 s
TTLs) the clients that switched did at 58 s after the change on average against the
model's 142 s, 11,520 requests went to the old balancer against 23,630; with three
nodes a balancer, 100/s a node on the old and 15/s on the new, 21,459 requests were
shed against the model's 1,667 (the shedding took pooled clients onto the new
balancer at their resolver's switch); now 1,436.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.fast import unsupported
from sim.fast.intensity import Intensity
from sim.fast.pooled import _next_open_after
from tests.fast.test_agreement import assert_agree, assert_drain_agree
from tests.model.scenarios import scenario

POOLED = {"duration": "6m", "dns.service_ttl": "60s", "dns.balancer_ttl": "60s", "dns.propagation": "0s",
          "clients.0.count": 1000, "clients.0.rate": "0.05/s", "dns.resolvers.0.count": 100,
          "clients.0.keepalive": "30s", "clients.0.max_connection_age": "3m",
          "report": {"stale_at": ["30s", "60s"]}}
CHANGE = [{"kind": "dns_change", "at": "60s"}, {"kind": "balancer_down", "target": "blue", "at": "4m"}]
CASES = {
    "no surge": {"faults": CHANGE},
    "a fourfold surge from 50 s to 200 s, 10 s TTLs": {
        "dns.service_ttl": "10s", "dns.balancer_ttl": "10s",
        "faults": [*CHANGE, {"at": "50s", "kind": "traffic", "factor": 4, "for": "150s"}]},
    # The reported case's shape: three nodes a balancer, the new one too small for the surge.
    "the surge, three nodes a balancer, the new one of 15/s a node": {
        "dns.service_ttl": "10s", "dns.balancer_ttl": "10s", "balancers.0.nodes": 3, "balancers.1.nodes": 3,
        "balancers.0.capacity": "100/s", "balancers.1.capacity": "15/s",
        "faults": [*CHANGE, {"at": "50s", "kind": "traffic", "factor": 4, "for": "150s"}]},
}
# drain_s.mean is unbounded in a replication where one client of 1000 sends nothing after the
# change (about one in four runs, either engine); drain_switched_mean and never_switched hold it.
SKIP = ("drain_s.mean",)
# Under the surge pooled clients open connections, and so query their resolvers, less often
# than at base traffic, which the resolvers' query rates do not follow (docs/fast.md):
# 1,500 queries in the model, 2,620 here, as before the fix.
SKIP_SUMMARY = {"a fourfold surge from 50 s to 200 s, 10 s TTLs": ("dns_queries",),
                "the surge, three nodes a balancer, the new one of 15/s a node": ("dns_queries",)}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex"])
@pytest.mark.parametrize("case", list(CASES))
def test_fast_agrees_on_pooled_connections_through_a_planned_change(case: str, strategy: str) -> None:
    sc = scenario(**{**POOLED, **CASES[case], "strategies": [strategy]})
    assert not unsupported(sc)
    assert_drain_agree(sc, strategy, 4, sc.report.stale_at, skip=SKIP)
    assert_agree(sc, strategy, 4, skip=SKIP_SUMMARY.get(case, ()), also=("refused",))


@pytest.mark.parametrize("start", [40.0, 120.0, 190.0])
def test_the_next_connection_follows_a_surge_as_requests_drawn_one_by_one(start: float) -> None:
    """From a connection opened at `start` (before, in and at the end of a fourfold surge from 50 s
    to 200 s; requests every 20 s at base, 30 s keepalive, 3 min age limit): the request that
    opens the next one and the last one on it, as sim.fast.pooled draws them, against each
    client's requests drawn one after another until a gap of 30 s or the age limit. Before
    the fix the next opening from 120 s came at 197 s on average, here 271 s."""
    sc = scenario(**{"strategies": ["cname_repoint"], "duration": "6m", "faults": [
        {"kind": "dns_change", "at": "60s"}, {"at": "50s", "kind": "traffic", "factor": 4, "for": "150s"}]})
    shape, rng = Intensity(sc), np.random.default_rng(3)
    r, k, age, n = 0.05, 30.0, 180.0, 10_000
    last, opens, before = np.full(n, start), np.full(n, np.nan), np.full(n, np.nan)
    todo = np.arange(n)
    while len(todo):
        t = shape.next_after(last[todo], r, rng)
        close = (t - last[todo] >= k) | (t - start >= age) | ~np.isfinite(t)
        opens[todo[close]], before[todo[close]] = t[close], last[todo[close]]
        last[todo[~close]] = t[~close]
        todo = todo[~close]
    drawn = _next_open_after(np.full(n, start), np.full(n, start), k, age, r, shape, rng)
    for one_by_one, here in zip((opens, before), drawn, strict=True):
        a, b = one_by_one[np.isfinite(opens)], here[np.isfinite(drawn[0])]
        se = math.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) <= 4 * se, (start, a.mean(), b.mean(), se)
    share = np.isfinite(opens).mean()
    assert abs(share - np.isfinite(drawn[0]).mean()) <= 4 * math.sqrt(share * (1 - share) * 2 / n) + 1e-3


def test_fast_agrees_on_pooled_connections_with_no_age_limit_through_a_switch_off() -> None:
    """Requests every 2 s on connections kept for an hour with no age limit: none closes in
    the run, so the clients' resolvers (ten clients each, TTLs stretched to 6 min) see no
    query after time 0 and hold the answer the model primed them with. At the switch-off
    (4 min, the change at 1 min) every connection to the old balancer is refused and its
    client looks the name up: where that primed answer outlives the switch-off it still
    leads to the old balancer, and every request fails until it expires. Before the fix
    (sim.fast.engine `_primed_past`, `_switch_off_fetches`, `_pooled_resets`), 8 replications:
    the fast engine drew each resolver's answer at the change at its pooled clients'
    connection rate (none held one), and failed 100 requests (one a client) against the
    model's 1,359 ± 173, with 0 DNS queries against 10 (each resolver's fetch at the
    switch-off); now 1,059 ± 161 and 11."""
    sc = scenario(**{"duration": "10m", "dns.service_ttl": "60s", "dns.balancer_ttl": "60s", "dns.propagation": "0s",
                     "clients.0.count": 100, "clients.0.rate": "0.5/s", "clients.0.keepalive": "1h",
                     "dns.resolvers.0.count": 10, "dns.resolvers.0.policy": {"kind": "extend", "extra": "5m"},
                     "strategies": ["cname_repoint"],
                     "faults": [{"kind": "dns_change", "at": "60s"},
                                {"kind": "balancer_down", "target": "blue", "mode": "refuse", "at": "4m"}]})
    assert not unsupported(sc)
    assert_agree(sc, "cname_repoint", 8, also=("refused",))
