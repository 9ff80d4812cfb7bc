"""The lab end to end: real unbound, real sim.core balancers, our DNS server, a real failover.

Small and time-scaled (K = 4) so each run takes about 25 s. The lab's
recovery is held against the model run on the same effective scenario, and
against the model's replication of the same seed, whose draws the lab replays
(the trace: the run layer builds it with sim.model.trace; the tests that call
the lab directly build it the same way).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import sim.lab
from sim.analysis.drain import replication_drain
from sim.lab import netns
from sim.lab.world import LabOptions, effective, time_scale_problems
from sim.model import simulate
from sim.model.trace import trace as model_trace
from sim.policy.failover import plan_class
from sim.results.schema import affected_clients
from sim.runner import run
from sim.scenario import load_data
from tests.conftest import require_tool
from tests.lab.marks import MARK, described, marked
from tests.lab.scenarios import DNS_OUTAGE, OPTIONS, PLANNED, PLANNED_MOVE, SMALL, paired

# Every process this test session starts carries the marker, its children too: lab runs
# of another stream (the README's) or session on the machine are not this one's orphans.
SESSION = uuid.uuid4().hex
os.environ[MARK] = SESSION


def _orphans() -> list[str]:
    """This session's processes still running besides itself (a lab run's leftovers)."""
    mine = described([pid for pid in marked(SESSION) if pid != os.getpid()])
    return [line for line in mine if "failover-lab-" in line or "sim.lab." in line or "unbound" in line]


def _children() -> list[str]:
    """The lab processes this test process started and left running (other lab runs on the
    machine, of other test sessions, are not this test's)."""
    out = subprocess.run(["ps", "-eo", "ppid,pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:] if line.split()[0] == str(os.getpid())
            and ("unbound" in line or "sim" in line)]


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_lab_failover_matches_the_model() -> None:
    require_tool("unbound")
    scenario = load_data(SMALL, "lab-small")
    results = run(scenario, engine="lab", lab=OPTIONS)
    eff = effective(scenario, OPTIONS)
    assert results.manifest["scenario"]["warmup"] == eff.to_document()["warmup"]
    # eip_remap's address moved by ARP between network namespaces as root (CI), else on loopback
    assert results.manifest["lab"]["takeover"] == ("namespace" if netns.unavailable() is None else "loopback")
    for strategy in ("eip_remap", "cname_repoint"):
        lab = results.clients[results.clients["strategy"] == strategy]["recovery_s"].to_numpy()
        assert len(lab) == 18 and np.isfinite(lab).all(), strategy  # every client failed, then came back
        model = [np.nanmean(affected_clients(simulate(eff, strategy, np.random.SeedSequence([5, k])).clients)["recovery_s"])
                 for k in range(12)]
        mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
        # Within the model's replication spread (3 SD) plus 10% for what time scaling adds
        # (whole-second TTLs in unbound, process start-up); docs/lab.md.
        assert abs(np.mean(lab) - mean) <= 3 * sd + 0.10 * mean, (strategy, np.mean(lab), mean, sd)
    # Paired: the lab replayed the model's draws for its seed (the trace), so the
    # model's replication of that seed sent the same requests, and with the static
    # address (no DNS in the way) each client is back when the model's same client is.
    seed = np.random.SeedSequence(SMALL["seed"]).spawn(1)[0]
    for strategy in ("eip_remap", "cname_repoint"):
        model = simulate(eff, strategy, seed)
        lab = results.replications.set_index("strategy").loc[strategy]
        assert abs(lab["requests"] - model.metrics["requests"]) <= 3, (strategy, lab["requests"], model.metrics)
    mine = results.clients[results.clients["strategy"] == "eip_remap"].set_index("client")["recovery_s"]
    theirs = affected_clients(simulate(eff, "eip_remap", seed).clients).set_index("client")["recovery_s"]
    gap = (mine - theirs).abs()
    # unpaired, two clients' next requests after the move differ by |Exp - Exp|: 0.7 s median
    assert gap.notna().sum() == 18 and gap.median() <= 0.4, gap.describe()
    assert not _orphans()


@pytest.mark.real
@pytest.mark.timeout(120)
def test_interrupted_lab_run_leaves_no_process_and_no_results(tmp_path: Path) -> None:
    require_tool("unbound")
    path = tmp_path / "small.json"
    doc = dict(SMALL, duration="200s")
    path.write_text(json.dumps(doc))
    yaml_path = tmp_path / "small.yaml"
    import yaml

    yaml_path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(yaml_path), "--engine", "lab", "--time-scale", "4",
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("unbound" in line for line in _orphans()):
        time.sleep(0.5)
    assert any("unbound" in line for line in _orphans()), "the lab never started its resolvers"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    time.sleep(0.5)
    assert not _orphans()
    assert not out.exists() or not any(out.iterdir())


def test_time_scale_that_rounds_a_ttl_below_a_second_is_refused() -> None:
    scenario = load_data(dict(SMALL, dns=dict(SMALL["dns"], balancer_ttl="5s")), "lab-small")
    problems = time_scale_problems(scenario, 10.0)
    assert problems and "dns.balancer_ttl" in problems[0] and "--time-scale" in problems[0]
    assert not time_scale_problems(scenario, 4.0)


def test_time_scale_that_puts_a_ttl_under_unbounds_prefetch_floor_is_refused() -> None:
    # unbound never prefetches a TTL under 10 real seconds (ttl - ttl/10 is the TTL itself)
    dns = dict(SMALL["dns"], service_ttl="40s", balancer_ttl="40s",
               resolvers=[dict(SMALL["dns"]["resolvers"][0], prefetch=True)])
    scenario = load_data(dict(SMALL, dns=dns), "lab-small")
    problems = time_scale_problems(scenario, 5.0)
    assert len(problems) == 2 and all(p.startswith("dns.resolvers[0].prefetch: dns.") for p in problems), problems
    assert "--time-scale 4 or less" in problems[0]
    assert not time_scale_problems(scenario, 4.0)


def test_effective_scenario_scales_clients_and_resolvers_and_moves_faults() -> None:
    scenario = load_data(SMALL, "lab-small")
    eff = effective(scenario, LabOptions(clients_scale=0.5, max_resolvers=3))
    assert eff.cohort_sizes() == {"c": 9}
    assert sum(g.count for g in eff.dns.resolvers) == 3
    assert eff.warmup == 20.0 and eff.faults[0].at == 35.0 and math.isclose(eff.end, 80.0)
    # A fault after the warm-up stays where it is, and the run is no longer.
    later = load_data(dict(SMALL, faults=[dict(SMALL["faults"][0], at="30s")]), "lab-small")
    eff = effective(later, LabOptions())
    assert eff.warmup == 20.0 and eff.faults[0].at == 30.0 and math.isclose(eff.end, later.end)
    assert os.environ.get("PYTEST_CURRENT_TEST")


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("strategy", ["alias_apex", "vrrp", "multi_a"])
def test_lab_runs_the_other_strategies_and_matches_the_model(strategy: str) -> None:
    """The lab called as the run layer calls it: a plan class (never registered by name
    in the lab) and the model's trace of the seed."""
    require_tool("unbound")
    doc = dict(SMALL, strategies=[strategy])
    if strategy == "multi_a":
        # Half the clients try the next address at once: they never see the dead balancer.
        doc["clients"] = [dict(SMALL["clients"][0], count=9, name="first"),
                          dict(SMALL["clients"][0], count=9, name="next", address_mode="next")]
    eff = effective(load_data(doc, "lab-small"), OPTIONS)
    seed = np.random.SeedSequence(SMALL["seed"]).spawn(1)[0]
    trace = model_trace(eff, strategy, np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    out = sim.lab.replicate(eff, plan_class(strategy), seed, 0, OPTIONS, trace=trace)
    lab = affected_clients(out.clients)["recovery_s"].to_numpy()
    assert len(out.clients) == 18  # every client listed, as the model lists them
    model_runs = [simulate(eff, strategy, np.random.SeedSequence([5, k])) for k in range(12)]
    affected = [len(affected_clients(r.clients)) for r in model_runs]
    assert abs(len(lab) - np.mean(affected)) <= 3 * np.std(affected, ddof=1) + 2, (strategy, len(lab), affected)
    if len(lab):
        assert np.isfinite(lab).all(), strategy
        model = [np.nanmean(affected_clients(r.clients)["recovery_s"]) for r in model_runs if len(affected_clients(r.clients))]
        mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
        assert abs(np.mean(lab) - mean) <= 3 * sd + 0.10 * mean + 1.0, (strategy, np.mean(lab), mean, sd)
    assert not _orphans()


# What each strategy's paired lab replication must match of the model's (stale shares
# in percentage points). The static address (eip_remap) moves when the model moves it
# and DNS plays no part: the model's own bound. Behind unbound (cname_repoint) each
# resolver's expiry is a whole real second: off by up to half a second a refresh, 2
# scenario seconds at K = 4 (docs/lab.md); with 6 resolvers of 3 clients at 1/s, one
# resolver 2 s off moves about 6 of the ~180 first attempts in a 10 s window, 3 points.
# The stale times are where few resolvers refresh inside the window (the 10 s window around
# change + 25 s holds none of the model's refreshes); change + 30 s, whose window held four,
# read 4 to 9 points low over six runs. Measured (docs/lab.md): up to 2.5 points at 10 and
# 20 s; drain within 2.5 %.
PAIRED_BOUNDS = {"eip_remap": {"stale_requests@5s": 1.0, "stale_requests@10s": 1.0, "stale_requests@20s": 1.0},
                 "cname_repoint": {"stale_requests@10s": 10.0, "stale_requests@20s": 10.0,
                                   "stale_requests@25s": 10.0}}


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("strategy", ["eip_remap", "cname_repoint"])
def test_lab_planned_change_drains_as_the_model(strategy: str) -> None:
    """A planned change on the lab against the model's replication of the same seed (the
    lab replays its draws): the change at the same time, the drain and the stale shares
    counted from what the real balancers logged, and the old balancer's later fault
    changes nothing (nobody fails)."""
    require_tool("unbound")
    doc, change = {"cname_repoint": (PLANNED, 57.0), "eip_remap": (PLANNED_MOVE, 25.0)}[strategy]
    eff = effective(load_data(doc, doc["name"]), OPTIONS)
    lab, model = paired(eff, strategy, doc["seed"], OPTIONS)
    stale_at = eff.report.stale_at
    mine = replication_drain(lab.clients, lab.targets, lab.metrics["changed_at"], stale_at)
    theirs = replication_drain(model.clients, model.targets, model.metrics["changed_at"], stale_at)
    print(strategy, "lab", mine, "model", theirs)  # the measured figures (pytest -s)
    assert lab.metrics["changed_at"] == model.metrics["changed_at"] == change
    assert len(lab.clients) == 18 and lab.metrics["failed"] == model.metrics["failed"] == 0
    assert abs(lab.metrics["requests"] - model.metrics["requests"]) <= 3
    firsts = [int(out.targets[["to_previous", "to_current"]].to_numpy().sum()) for out in (lab, model)]
    assert abs(firsts[0] - firsts[1]) <= 3, firsts  # every request's first try counted, once
    assert abs(mine["drain_s.mean"] - theirs["drain_s.mean"]) <= 0.10 * theirs["drain_s.mean"], (mine, theirs)
    for name, points in PAIRED_BOUNDS[strategy].items():
        assert abs(mine[name] - theirs[name]) <= points / 100, (name, mine[name], theirs[name])
    assert not _orphans()


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.long  # deselected in CI for its 15 minutes (docs/ci.md)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("option", [{"prefetch": True},
                                    {"serve_expired": {"client_timeout": "0s", "reply_ttl": "20s", "ttl": "1d"}}])
def test_lab_unbound_options_match_the_model(option: dict) -> None:
    """unbound's own prefetch or serve-expired in the lab against the model with the same
    fields: TTLs of 40 s (10 real seconds at K = 4, where unbound's prefetch point,
    ttl - ttl/10 in whole seconds, is the model's 36 s exactly)."""
    require_tool("unbound")
    dns = {**SMALL["dns"], "service_ttl": "40s", "balancer_ttl": "40s",
           "resolvers": [{**SMALL["dns"]["resolvers"][0], **option}]}
    # long enough for every client to be back: the change at about 30 s plus a 40 s TTL
    scenario = load_data(dict(SMALL, name="lab-unbound-options", duration="110s", dns=dns,
                              strategies=["cname_repoint"]), "lab")
    assert time_scale_problems(scenario, OPTIONS.time_scale) == []
    eff = effective(scenario, OPTIONS)
    seed = np.random.SeedSequence(SMALL["seed"]).spawn(1)[0]
    trace = model_trace(eff, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    lab = sim.lab.replicate(eff, plan_class("cname_repoint"), seed, 0, OPTIONS, trace=trace)
    recovery = affected_clients(lab.clients)["recovery_s"].to_numpy()
    assert len(recovery) == 18 and np.isfinite(recovery).all()
    model = [np.nanmean(affected_clients(simulate(eff, "cname_repoint", np.random.SeedSequence([5, k])).clients)["recovery_s"])
             for k in range(12)]
    mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
    print(option, "lab", float(np.mean(recovery)), "model", mean, sd)  # the measured figures (pytest -s)
    # as test_lab_failover_matches_the_model: the model's spread (3 SD) plus 10% for time scaling
    assert abs(np.mean(recovery) - mean) <= 3 * sd + 0.10 * mean, (np.mean(recovery), mean, sd)
    paired = simulate(eff, "cname_repoint", seed)
    assert abs(lab.metrics["requests"] - paired.metrics["requests"]) <= 3
    assert not _orphans()


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_lab_dns_outage_fails_the_lookups_the_model_fails() -> None:
    """Our authoritative server silent for 20 s in front of six real unbound, paired with the
    model's replication of the seed: the lookups that fail are those of the resolvers whose
    answer expired in the outage. A lookup the resolver cannot answer within the client's
    timeout counts as a DNS error, as the model counts it (the model fails it at once, the lab
    at the timeout). Measured over four runs: 213, 254, 253 and 197 failed against the paired
    model's 217 (the model's unpaired SD is 52): each of the six unbound expires its record
    on a whole real second, 4 scenario seconds at K = 4, and its three clients send 3 requests
    a second, so a resolver's failures move by up to 12 either way. Within 25%, paired; before
    2026-12-03 the lab read 47 and 71 (a client's requests waited behind one that waited out
    the outage, then passed)."""
    require_tool("unbound")
    eff = effective(load_data(DNS_OUTAGE, "lab-dns-outage"), OPTIONS)
    lab, model = paired(eff, "cname_repoint", DNS_OUTAGE["seed"], OPTIONS)
    print("dns outage lab", lab.metrics["failed"], lab.timeline["dns_error"].sum(), "paired model",
          model.metrics["failed"], model.timeline["dns_error"].sum())
    assert abs(lab.metrics["requests"] - model.metrics["requests"]) <= 3
    assert model.metrics["failed"] == model.timeline["dns_error"].sum() > 100
    assert abs(lab.metrics["failed"] - model.metrics["failed"]) <= 0.25 * model.metrics["failed"]
    assert lab.timeline["dns_error"].sum() >= 0.9 * lab.metrics["failed"]  # failed lookups, not the balancer
    # nothing fails outside the outage but in the real second after it, while unbound's
    # retry, backed off, has not yet found the server back
    start, end = eff.faults[0].at, eff.faults[0].at + eff.faults[0].for_
    outside = lab.timeline[(lab.timeline.t < start) | (lab.timeline.t >= end + OPTIONS.time_scale)]
    assert outside[["refused", "timeout", "dns_error"]].to_numpy().sum() == 0
    assert not _children()


# Two resolvers of three caches each, half the queries to the client's own cache: six
# unbound behind two fronts (sim.lab.dnsserver.Front).
FARM = dict(SMALL, name="lab-farm", strategies=["cname_repoint"],
            dns={**SMALL["dns"], "resolvers": [{**SMALL["dns"]["resolvers"][0], "count": 2, "caches": 3,
                                                 "sticky": 0.5}]})


# The same farm of stretching resolvers (`extend`, which unbound cannot keep): six of our
# forwarders behind the fronts, each drawing its extras from the model's stream for its
# cache (sim.policy.resolver.Farm.cache_seed).
STRETCHING_FARM = dict(FARM, name="lab-farm-stretching", dns={**FARM["dns"], "resolvers": [
    {**FARM["dns"]["resolvers"][0], "policy": {"kind": "extend", "extra": {"exp": "5s"}}}]})


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("farm", [FARM, STRETCHING_FARM], ids=["unbound", "forwarders"])
def test_lab_resolver_farm_matches_the_model(farm: dict) -> None:
    """Six real caches behind two fronts against the model: every cache primed with the
    model's state for the seed (the trace), the fronts drawing the model's picks from its
    resolver seeds, so the lab's replication is paired with the model's of the same seed."""
    require_tool("unbound")
    eff = effective(load_data(farm, farm["name"]), OPTIONS)
    seed = np.random.SeedSequence(farm["seed"]).spawn(1)[0]
    trace = model_trace(eff, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    assert [len(f) for f in trace.farms] == [3, 3]
    lab = sim.lab.replicate(eff, plan_class("cname_repoint"), seed, 0, OPTIONS, trace=trace)
    paired = simulate(eff, "cname_repoint", seed)
    recovery = affected_clients(lab.clients)["recovery_s"].to_numpy()
    model_runs = [simulate(eff, "cname_repoint", np.random.SeedSequence([5, k])) for k in range(12)]
    model = [np.nanmean(affected_clients(r.clients)["recovery_s"]) for r in model_runs]
    failed = [r.metrics["failed"] for r in model_runs]
    print("farm lab", float(np.mean(recovery)), lab.metrics["failed"], "paired model",
          float(np.nanmean(affected_clients(paired.clients)["recovery_s"])), paired.metrics["failed"],
          "model", np.mean(model), np.std(model, ddof=1), np.mean(failed), np.std(failed, ddof=1))
    mine = lab.clients.set_index("client")["recovery_s"]
    theirs = paired.clients.set_index("client")["recovery_s"]
    gap = (mine - theirs).abs()
    print("farm paired per-client gap, median", gap.median(), "max", gap.max())
    assert len(recovery) == 18 and np.isfinite(recovery).all()
    assert abs(lab.metrics["requests"] - paired.metrics["requests"]) <= 3
    # as test_lab_failover_matches_the_model: the model's spread (3 SD) plus 10% for time scaling
    mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
    assert abs(np.mean(recovery) - mean) <= 3 * sd + 0.10 * mean, (np.mean(recovery), mean, sd)
    mean, sd = float(np.mean(failed)), float(np.std(failed, ddof=1))
    assert abs(lab.metrics["failed"] - mean) <= 3 * sd + 0.10 * mean, (lab.metrics["failed"], mean, sd)
    # Paired with the model's replication of the seed: each unbound's expiry is a whole real
    # second, off by up to half a second, 2 scenario seconds at K = 4 (docs/lab.md), so the
    # mean recovery within 2 s and failures within 10% (measured over three runs: 0.6 s and
    # 4.3%; the model's unpaired spread is 3.1 s and 44 failures), and half the clients back
    # within 0.5 s of the model's same client (measured: medians 0.07 to 0.10 s).
    model_recovery = float(np.nanmean(affected_clients(paired.clients)["recovery_s"]))
    assert abs(np.mean(recovery) - model_recovery) <= 2.0, (np.mean(recovery), model_recovery)
    assert abs(lab.metrics["failed"] - paired.metrics["failed"]) <= 0.10 * paired.metrics["failed"]
    assert gap.notna().sum() == 18 and gap.median() <= 0.5, gap.describe()
    assert not _children()


# Proxies that resolve once and are restarted every 10 s on average, and browser-like
# stubs that keep an answer 10 s and serve it 20 s more in grace.
LIFECYCLE = dict(SMALL, name="lab-lifecycle", strategies=["cname_repoint"], clients=[
    {**SMALL["clients"][0], "name": "proxy", "count": 9, "stub_cache": {"kind": "forever"},
     "restart": {"every": {"exp": "10s"}}},
    {**SMALL["clients"][0], "name": "browser", "count": 9, "stub_cache": {"kind": "fixed", "ttl": "10s"},
     "stub_grace": "20s"}])


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.long  # deselected in CI for its 15 minutes (docs/ci.md)
@pytest.mark.timeout(120)
def test_lab_restarts_and_stub_grace_match_the_model() -> None:
    """Restarts at the model's times (the trace) and a stub grace period, on real unbound,
    against the model: the paired replication's requests, the model's spread of recovery
    and failures, and every restarted client back only after one of its restarts."""
    require_tool("unbound")
    eff = effective(load_data(LIFECYCLE, "lab-lifecycle"), OPTIONS)
    seed = np.random.SeedSequence(LIFECYCLE["seed"]).spawn(1)[0]
    trace = model_trace(eff, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    assert sum(len(c.restarts) for c in trace.clients[:9]) > 20
    lab = sim.lab.replicate(eff, plan_class("cname_repoint"), seed, 0, OPTIONS, trace=trace)
    paired = simulate(eff, "cname_repoint", seed)
    assert abs(lab.metrics["requests"] - paired.metrics["requests"]) <= 3
    model_runs = [simulate(eff, "cname_repoint", np.random.SeedSequence([5, k])) for k in range(12)]
    for cohort in ("proxy", "browser"):
        mine = lab.clients[lab.clients["cohort"] == cohort]
        theirs = paired.clients[paired.clients["cohort"] == cohort]
        model = [np.nanmean(r.clients[r.clients["cohort"] == cohort]["recovery_s"]) for r in model_runs]
        mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
        print(cohort, "lab", mine["recovery_s"].round(2).tolist(), "model", theirs["recovery_s"].round(2).tolist(),
              "failed", int(mine["failed"].sum()), int(theirs["failed"].sum()), "model", mean, sd)
        # as test_lab_failover_matches_the_model: the model's spread (3 SD) plus 10% for time scaling
        assert abs(np.nanmean(mine["recovery_s"]) - mean) <= 3 * sd + 0.10 * mean, (cohort, mean, sd)
        # Failures within the model's spread too. Not held closer to the paired replication: a
        # client's stub cycle (10 s) or restart gap turns unbound's up to 2 s of whole-second
        # expiry (K = 4) into a whole cycle where a lookup falls that near the resolver's refresh,
        # and this seed has such clients (measured over four runs: up to 22% fewer failures than
        # the paired model; its SD over seeds is 12-13%; docs/lab.md, "Client restarts and grace").
        failed = [int(r.clients[r.clients["cohort"] == cohort]["failed"].sum()) for r in model_runs]
        mean, sd = float(np.mean(failed)), float(np.std(failed, ddof=1))
        assert abs(int(mine["failed"].sum()) - mean) <= 3 * sd + 0.10 * mean, (cohort, mean, sd)
    # A forever stub comes back only through a restart: each proxy that recovered did so at
    # its first request after one of its restarts, which at 1 request/s comes within 8 s
    # with probability 1 - e^-8 (a restart whose lookup still got the old answer waits for the next).
    proxies = lab.clients[(lab.clients["cohort"] == "proxy") & lab.clients["recovery_s"].notna()]
    assert len(proxies) >= 5
    for row in proxies.itertuples():
        back = row.fault_at + row.recovery_s
        restarts = [t for t in trace.clients[row.client].restarts if row.fault_at < t <= back]
        assert restarts and back - restarts[-1] <= 8.0, (row.client, back, trace.clients[row.client].restarts)
    assert not _children()


# Users who browse in sessions of about 10 requests a second apart, 20 s between sessions.
SESSIONS = dict(SMALL, name="lab-sessions", strategies=["cname_repoint"], clients=[
    {**{k: v for k, v in SMALL["clients"][0].items() if k != "rate"},
     "sessions": {"requests": {"exp": 10}, "think": {"exp": "1s"}, "gap": {"exp": "20s"}}}])


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.long  # deselected in CI for its 15 minutes (docs/ci.md)
@pytest.mark.timeout(120)
def test_lab_sessions_match_the_model() -> None:
    """Sessions replayed from the model's arrival stream for the seed, on real unbound: the
    same requests as the model's replication of the seed, and recovery within its spread."""
    require_tool("unbound")
    eff = effective(load_data(SESSIONS, "lab-sessions"), OPTIONS)
    seed = np.random.SeedSequence(SESSIONS["seed"]).spawn(1)[0]
    trace = model_trace(eff, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    lab = sim.lab.replicate(eff, plan_class("cname_repoint"), seed, 0, OPTIONS, trace=trace)
    paired = simulate(eff, "cname_repoint", seed)
    model_runs = [simulate(eff, "cname_repoint", np.random.SeedSequence([5, k])) for k in range(12)]
    model = [np.nanmean(affected_clients(r.clients)["recovery_s"]) for r in model_runs]
    mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
    recovery = affected_clients(lab.clients)["recovery_s"].to_numpy()
    print("sessions lab", lab.metrics["requests"], lab.metrics["failed"], float(np.nanmean(recovery)),
          "paired model", paired.metrics["requests"], paired.metrics["failed"],
          float(np.nanmean(affected_clients(paired.clients)["recovery_s"])), "model", mean, sd)
    # the model's requests, request for request: only the drain at the end may cut one or two
    assert abs(lab.metrics["requests"] - paired.metrics["requests"]) <= 3
    assert abs(np.nanmean(recovery) - mean) <= 3 * sd + 0.10 * mean, (np.nanmean(recovery), mean, sd)
    # Paired failures within the model's own spread over seeds (as for restarts and grace):
    # unbound's whole-second expiry (up to 2 s at K = 4) decides a few requests either way,
    # measured 108 to 111 against 108 on a quiet machine, 91 in a CI run with every other
    # test beside it. The paired mean recovery is not held closer than the spread above: a
    # request that fails in one engine and not the other can move a client's recovery by a
    # whole gap between sessions (20 s), 1.3 s on the mean of 15 (docs/lab.md, "Sessions").
    failed_sd = float(np.std([r.metrics["failed"] for r in model_runs], ddof=1))
    assert abs(lab.metrics["failed"] - paired.metrics["failed"]) <= 3 * failed_sd, (
        lab.metrics["failed"], paired.metrics["failed"], failed_sd)
    assert not _children()
