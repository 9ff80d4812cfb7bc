"""A `dns_down` (our authoritative servers unreachable) together with what the fast engine's
one span of failed resolutions per client cannot hold: a balancer fault of the active (before,
during or after the outage: the DNS provider down while the balancer dies), a second outage,
resolvers that answer from what they keep (serve_stale, serve-expired) or refresh ahead
(prefetch), pooled connections. With any of these every client is followed request by request
(sim.fast.population.outage_followed, sim.fast.lookups), against the model; and, for
serve_stale, against its closed form.

The closed form (one client a resolver at rate q, no stub cache, TTL L honoured, a stale
window W, an outage [a, a + D) long after time 0): a resolver's entry, seen at a from steady
state, is fresh with probability p = q L / (q L + 1), its time left U L with U uniform; or it
expired Y ~ Exp(q) before a (no query since, or it would have been refetched). Nothing is
fetched in the outage and an answer served stale leaves the entry as it was, so a request at
t fails iff t is past the entry's expiry plus W. Failed requests per client:

    q [p E(D - W - U L)+ + (1 - p) E min(D, (D - W + Y)+)]

where E(c - U L)+ = c^2 / (2 L) for 0 <= c <= L (c - L / 2 above L, 0 below 0), and the
second term is D - W + (1 - e^(-q W)) / q for D >= W, e^(-q (W - D)) (1 - e^(-q D)) / q
for D < W. With the default window (a day) an outage of minutes fails nobody.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from sim.fast import simulate as fast
from sim.fast import unsupported
from sim.fast.population import followed_groups, outage_followed
from sim.model import simulate as des
from tests.fast.test_agreement import assert_agree
from tests.model.scenarios import scenario

# 300 clients at 0.2/s, 3 a resolver: a 60 s outage under the 60 s TTL fails about half the
# requests in it, and the balancer's fault the rest until the failover.
BASE = {"clients.0.count": 300, "duration": "3m", "dns.resolvers.0.count": 100, "clients.0.rate": "0.2/s"}
OUTAGE = {"at": "30s", "kind": "dns_down", "for": "60s"}
TTL_300 = {"dns.service_ttl": "300s", "dns.balancer_ttl": "300s"}


def _down(at: str, for_: str | None = None, **more: str) -> dict[str, str]:
    return {"at": at, "kind": "balancer_down", "target": "blue", **({} if for_ is None else {"for": for_}), **more}


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # The failover's change is made during the outage (detection 20 s, 2 s, propagation 8 s):
    # resolvers that lost their answer fetch the new record at their first query after it.
    "the active down during the outage": ("cname_repoint", {**BASE, "faults": [OUTAGE, _down("50s")]}),
    "the active down during the outage, eip_remap": ("eip_remap", {**BASE, "faults": [OUTAGE, _down("50s")]}),
    # Clients on the dead balancer whose answer expires in the outage cannot reach the new one.
    "the active down before the outage": ("cname_repoint", {**BASE, "faults": [_down("10s"), OUTAGE]}),
    "the active down after the outage": ("cname_repoint", {**BASE, "faults": [OUTAGE, _down("100s")]}),
    "the active down 30 s in the outage, TTL 300 s, JVM stub, a retry": ("cname_repoint", {
        **BASE, **TTL_300, "clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"},
        "clients.0.retry": {"attempts": 2, "timeout": "5s"}, "faults": [OUTAGE, _down("40s", "30s")]}),
    "the active blackholed during the outage, a retry": ("cname_repoint", {
        **BASE, "clients.0.retry": {"attempts": 2, "timeout": "3s"}, "faults": [OUTAGE, _down("50s", mode="blackhole")]}),
    # The second outage starts where the first's refetches (at about 90 s) have not expired.
    "two outages": ("cname_repoint", {**BASE, "faults": [OUTAGE, {"at": "125s", "kind": "dns_down", "for": "40s"}]}),
    # Overlapping: one outage from 30 s to 120 s in both engines (sim.model.control counts them).
    "two outages that overlap": ("cname_repoint", {**BASE, "faults": [OUTAGE, {"at": "60s", "kind": "dns_down",
                                                                                "for": "60s"}]}),
    "two outages, TTL 300 s": ("eip_remap", {
        **BASE, **TTL_300, "faults": [OUTAGE, {"at": "125s", "kind": "dns_down", "for": "40s"}]}),
    # RFC 8767: an answer expired less than 40 s ago is served (30 s TTL) while nothing answers.
    "serve_stale resolvers, max_stale 40 s": ("cname_repoint", {
        **BASE, "dns.resolvers.0.policy": {"kind": "serve_stale", "max_stale": "40s"}, "faults": [OUTAGE]}),
    "serve_stale resolvers, the active down during the outage": ("cname_repoint", {
        **BASE, "dns.resolvers.0.policy": {"kind": "serve_stale"}, "faults": [OUTAGE, _down("50s")]}),
    # unbound: a prefetch due in the outage fetches nothing (the next hit tries again);
    # serve-expired answers an expired entry within its limit with its reply TTL.
    "prefetch": ("cname_repoint", {**BASE, "dns.resolvers.0.prefetch": True, "faults": [OUTAGE]}),
    "serve-expired by unbound's defaults, the active down during the outage": ("cname_repoint", {
        **BASE, "dns.resolvers.0.serve_expired": {}, "faults": [OUTAGE, _down("50s")]}),
    "prefetch and serve-expired at once, max 20 s, TTL 300 s": ("cname_repoint", {
        **BASE, **TTL_300, "dns.resolvers.0.prefetch": True,
        "dns.resolvers.0.serve_expired": {"client_timeout": "0s", "ttl": "20s"}, "faults": [OUTAGE]}),
    # A pooled connection carries requests through the outage without a lookup.
    "idle sockets 10 s": ("cname_repoint", {**BASE, "clients.0.keepalive": "10s", "faults": [OUTAGE]}),
    "idle sockets 10 s, the active down during the outage": ("eip_remap", {
        **BASE, "clients.0.keepalive": "10s", "faults": [OUTAGE, _down("50s")]}),
}
WEB = {"name": "web", "count": 150, "sessions": {"requests": {"exp": 10}, "think": {"exp": "5s"}, "gap": {"exp": "60s"}},
       "stub_cache": {"kind": "floor", "min_ttl": "60s"}, "retry": {"attempts": 1, "timeout": "10s"}}
API = {"name": "api", "count": 150, "rate": "0.2/s", "stub_cache": {"kind": "none"}, "retry": {"attempts": 1, "timeout": "10s"}}
DURING = [OUTAGE, _down("50s")]
CASES.update({
    # each strategy's own detection and switch, through the outage
    **{f"the active down during the outage, {s}": (s, {**BASE, "faults": DURING})
       for s in ("alias_apex", "dns_failover", "vrrp", "anycast", "multi_a")},
    # what a dns_down alone refuses for clients not followed: here every client is followed
    "browsing sessions and Poisson clients on shared resolvers, the active down during the outage": (
        "cname_repoint", {**BASE, "dns.resolvers.0.count": 20, "clients": [WEB, API], "faults": DURING}),
    "fixed 20 s stubs with 60 s of grace, the active down during the outage": ("cname_repoint", {
        **BASE, "clients.0.stub_cache": {"kind": "fixed", "ttl": "20s"}, "clients.0.stub_grace": "60s",
        "faults": DURING}),
    "a farm and TTL-stretching resolvers, the active down during the outage": ("cname_repoint", {
        **BASE, "faults": DURING, "dns.resolvers": [
            {"name": "farm", "count": 20, "share": 0.5, "caches": 4, "sticky": 0.5},
            {"name": "isp", "count": 50, "share": 0.5, "policy": {"kind": "extend", "extra": {"exp": "60s"}}}]}),
    "stubs kept forever, restarts Exp(2 min), the active down during the outage": ("cname_repoint", {
        **BASE, "clients.0.stub_cache": {"kind": "forever"}, "clients.0.restart": {"every": {"exp": "2m"}},
        "faults": DURING}),
})
# About a second each (both engines, 6 replications): one per lifted combination in CI.
QUICK = ("the active down during the outage", "two outages", "two outages that overlap", "serve_stale resolvers, max_stale 40 s",
         "serve-expired by unbound's defaults, the active down during the outage")


@pytest.mark.parametrize("case", [c if c in QUICK else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_a_dns_outage_with_a_balancer_fault_or_more_agrees_with_the_model(case: str) -> None:
    strategy, changes = CASES[case]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    assert not unsupported(sc, [strategy])
    assert outage_followed(sc)
    assert_agree(sc, strategy, reps=6, also=("refused", "dns_error"))


def _stale_failures(q: float, ttl: float, window: float, outage: float) -> float:
    """Failed requests per client: the module's closed form."""
    p = q * ttl / (q * ttl + 1.0)
    c = outage - window
    fresh = 0.0 if c <= 0 else (c * c / (2.0 * ttl) if c <= ttl else c - ttl / 2.0)
    if outage >= window:
        stale = outage - window + (1.0 - math.exp(-q * window)) / q
    else:
        stale = math.exp(-q * (window - outage)) * (1.0 - math.exp(-q * outage)) / q
    return q * (p * fresh + (1.0 - p) * stale)


def _stale_scenario(rate: float, window: float, outage: float, at: float, **more: Any):  # type: ignore[no-untyped-def]
    # The outage at 12 / q: a resolver primed empty at time 0 has had its first query by then
    # with probability 1 - e^-12 (the model primes no expired entry for serve_stale alone).
    return scenario(**{"clients.0.count": 300, "clients.0.rate": f"{rate}/s", "duration": f"{at + outage + 10}s",
                       "dns.resolvers.0.count": 300,
                       "dns.resolvers.0.policy": {"kind": "serve_stale", "max_stale": f"{window}s"},
                       "faults": [{"at": f"{at}s", "kind": "dns_down", "for": f"{outage}s"}],
                       "strategies": ["cname_repoint"], **more})


@pytest.mark.parametrize(("rate", "window", "outage"), [(0.2, 40.0, 60.0),
                                                      pytest.param(0.05, 70.0, 60.0, marks=pytest.mark.slow)])
def test_serve_stale_fails_the_requests_of_its_closed_form(rate: float, window: float, outage: float) -> None:
    """Both engines against the closed form, 12 replications each: 1.000 failed requests per
    client at 0.2/s with a 40 s window and a 60 s outage (measured, 24 replications: model
    0.986 +- 0.021, fast 0.995 +- 0.024), 0.144 at 0.05/s with a 70 s window (model 0.137 +-
    0.006, fast 0.143 +- 0.010)."""
    sc = _stale_scenario(rate, window, outage, 12.0 / rate)
    want = _stale_failures(rate, 60.0, window, outage)
    for engine in (des, fast):
        per_client = [engine(sc, "cname_repoint", np.random.SeedSequence([5, k]), k).timeline["dns_error"].sum() / 300
                      for k in range(12)]
        se = float(np.std(per_client, ddof=1)) / math.sqrt(len(per_client))
        assert abs(np.mean(per_client) - want) <= 4.0 * se, (engine.__module__, np.mean(per_client), se, want)


@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_serve_stale_rides_out_an_outage_shorter_than_its_window(strategy: str) -> None:
    """The default window (a day) and a 60 s outage while the active dies: no request fails
    for DNS in either engine, every failure is the dead balancer's."""
    sc = _stale_scenario(0.05, 86400.0, 60.0, 240.0,
                         faults=[{"at": "240s", "kind": "dns_down", "for": "60s"}, _down("250s")])
    assert not unsupported(sc, [strategy])
    for engine in (des, fast):
        for k in range(3):
            out = engine(sc, strategy, np.random.SeedSequence([5, k]), k)
            assert out.timeline["dns_error"].sum() == 0, engine.__module__
            assert out.timeline["refused"].sum() > 0, engine.__module__


def test_what_a_dns_outage_still_refuses_is_named() -> None:
    """Every client is followed with a dns_down and a balancer fault, a second outage,
    stale-serving, prefetching or serve-expired resolvers, or pooled connections; a dns_down
    alone stays on the Poisson path; two that overlap run as their union. Still refused, by
    name: what the follower refuses anyway (one address per balancer, node churn behind a name)."""
    alone = scenario(faults=[OUTAGE])
    assert not outage_followed(alone) and not unsupported(alone)
    for more in ({"faults": [OUTAGE, _down("50s")]}, {"faults": [OUTAGE, {**OUTAGE, "at": "2m"}]},
                 {"faults": [OUTAGE], "dns.resolvers.0.policy": {"kind": "serve_stale"}},
                 {"faults": [OUTAGE], "dns.resolvers.0.prefetch": True},
                 {"faults": [OUTAGE], "dns.resolvers.0.serve_expired": {}},
                 {"faults": [OUTAGE], "clients.0.keepalive": "10s"}):
        sc = scenario(**more)
        assert outage_followed(sc) and followed_groups(sc) == {"own"}, more
        assert not unsupported(sc, ["cname_repoint", "eip_remap"]), more
    assert not unsupported(scenario(faults=[OUTAGE, {**OUTAGE, "at": "60s"}]))  # overlapping: their union
    # multi_a: the follower keeps each client's rotation (sim.fast.lookups), so it runs too
    assert not unsupported(scenario(faults=[OUTAGE, _down("50s")]), ["multi_a"])
    # Node churn behind a name: the churned balancer's refusing fault beside the outage is
    # followed (tests/fast/test_churn_migration.py), its blackholing one is not.
    assert not unsupported(scenario(**{"balancers.0.churn": "1h", "faults": [OUTAGE, _down("50s")]}), ["cname_repoint"])
    churn = unsupported(scenario(**{"balancers.0.churn": "1h", "faults": [OUTAGE, _down("50s", mode="blackhole")]}),
                        ["cname_repoint"])
    assert any("balancers[0].churn" in r and "faults[1] (balancer_down)" in r for r in churn), churn


def test_a_population_too_big_to_follow_request_by_request_is_refused_with_its_count(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """day-at-scale with a dns_down beside its balancer fault: every client would be followed
    request by request (about 871 million requests, tens of GB): refused by name, exit 2 with
    the count, no traceback; without the dns_down it runs as before (not refused)."""
    import subprocess
    import sys

    import yaml

    from sim.fast.refusals import FOLLOWED_REQUESTS_LIMIT
    from sim.scenario import load_data
    from tests.conftest import ROOT

    doc = yaml.safe_load((ROOT / "scenarios" / "day-at-scale.yaml").read_text())
    assert not unsupported(load_data(doc, "day-at-scale"))
    doc["faults"].append({"at": "10h", "kind": "dns_down", "for": "10m"})
    reasons = unsupported(load_data(doc, "day-at-scale"))
    sized = [r for r in reasons if f"past the {FOLLOWED_REQUESTS_LIMIT:,}" in r]
    assert [r.split(" ", 1)[0] for r in sized] == ["clients[0]", "clients[1]", "clients[2]"]
    assert "871,200,000 in all" in sized[0]
    path = tmp_path / "day-with-outage.yaml"
    path.write_text(yaml.safe_dump(doc))
    done = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--engine", "fast", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "871,200,000 in all" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_pooled_connections_beside_node_churn_take_the_churn_followers_path_not_every_client() -> None:
    """With balancer node churn, pooled connections through a dns_down are not a reason to
    follow every client (the churn's request follower takes them, sim.fast.churn_requests);
    with restarts, which close them where no follower sees it, they are refused by name."""
    base = {"balancers.0.churn": "60s", "balancers.0.nodes": 2, "clients.0.keepalive": "60s",
            "clients.0.max_connection_age": "5m", "faults": [OUTAGE]}
    assert not outage_followed(scenario(**base))
    assert not unsupported(scenario(**base), ["cname_repoint", "eip_remap"])
    restarted = unsupported(scenario(**base, **{"clients.0.restart": {"every": {"exp": "10m"}}}), ["eip_remap"])
    assert restarted == ["clients[0].keepalive and restart, with a dns_down and balancer churn"]
    assert outage_followed(scenario(**{**base, "balancers.0.churn": None}))


# A planned change (or address move) with our DNS down: every client followed request by
# request (sim.fast.population.outage_followed), the change as the follower meets it.
PLANNED_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "change during the outage": ("cname_repoint", {**BASE, "faults": [OUTAGE, {"at": "50s", "kind": "dns_change"}]}),
    "change before the outage": ("cname_repoint", {**BASE, "faults": [{"at": "10s", "kind": "dns_change"}, OUTAGE]}),
    "change, the outage, the old balancer off": ("alias_apex", {
        **BASE, "faults": [{"at": "20s", "kind": "dns_change"}, OUTAGE, _down("100s")]}),
    "address move in the outage": ("eip_remap", {**BASE, "faults": [OUTAGE, {"at": "50s", "kind": "address_move"}]}),
}


@pytest.mark.parametrize("case", [c if c == "change during the outage" else pytest.param(c, marks=pytest.mark.slow)
                                  for c in PLANNED_CASES])
def test_a_planned_change_with_our_dns_down_drains_as_the_model(case: str) -> None:
    """Summary metrics and every drain metric within 4 SE (6 replications each), where the
    pair was refused before 2026-12-03."""
    from tests.fast.test_agreement import assert_drain_agree

    strategy, changes = PLANNED_CASES[case]
    sc = scenario(**copy.deepcopy({**changes, "strategies": [strategy]}))
    assert not unsupported(sc, [strategy]) and outage_followed(sc)
    assert_agree(sc, strategy, reps=6, also=("refused", "dns_error"))
    assert_drain_agree(sc, strategy, 6, [20.0, 60.0])
