"""One lab replication: build the world on loopback (a moving address, as root: the
balancers in network namespaces, sim.lab.netns), run the scenario, read back the tables.

Scenario times are divided by K (`time_scale`): a 60 s TTL is served as
60/K s, a 20 ms service time sleeps 20/K ms; results are multiplied back.
unbound counts TTLs in whole seconds, so a K that would round a TTL below
1 s is refused, naming the field. The effective scenario (clients and
resolvers scaled down, the warm-up that fills real caches) is what runs and
what the model must be compared on (`effective`).

The strategy comes decided (sim.scenario.build.compile): the world reads what
its plan publishes (`Published`: a CNAME, an alias or static addresses, their
TTLs, whether the failover changes DNS or moves an address, one address per
balancer, rotating answers) and who detects the fault (`plan.detection`), and
never a strategy's name. The model's random draws come in a `Trace` the run
layer builds (sim.model.trace); the lab does not import the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sim.lab import netns
from sim.lab.procs import LabError, Processes, address_block, free_port, python
from sim.lab.targets import Holders, Targets, attribute, count, read_access_log, sort_tries
from sim.policy.failover import RECORDS, FailoverPlan, Published
from sim.policy.health import HealthState, first_probe_at, probe_duration, probe_ok, probe_step
from sim.progress import PhaseClock
from sim.replication import OUTCOMES, ReplicationOutput, Trace, finite
from sim.scenario import build, load_data
from sim.scenario import models as m
from sim.scenario.build import Deployment
from sim.scenario.units import format_duration

UNBOUND_POLICIES = ("honor", "floor", "cap")  # the rest are served by our forwarder (unbound cannot)
# A moving address moved by an API call (eip_remap): sim.core's heartbeat interval
# (real seconds); the reassociate call takes the address at once, then asks the old
# holder to let go (sim.core.takeover).
HEARTBEAT = 0.05
# A strategy as the engines take it: a plan's name, a plan class, a plan, or a Deployment.
Strategy = str | type | FailoverPlan | Deployment


@dataclass
class LabOptions:
    time_scale: float = 10.0
    clients_scale: float = 1.0
    max_resolvers: int | None = 16
    keep: bool = False  # keep the work folder (logs, configs) for inspection
    quiet: bool = False  # no phase lines on stderr (sim.progress.PhaseClock)
    # How a moving address (eip_remap, vrrp) moves: "namespace" (root: the balancers in
    # network namespaces, sim.core's address mode, sim.lab.netns), "loopback" (any user:
    # sim.core.vip), "auto": namespace where it can run, else loopback, said once.
    takeover: str = "auto"


def unsupported(scenario: m.Scenario, strategies: list[Strategy] | None = None) -> list[str]:
    """What the lab cannot run of `scenario` with `strategies` (default: the scenario's),
    each named: scenario fields, and strategies by their plan's name and the mechanism
    the lab lacks (`mechanism_problems`)."""
    out = []
    for i, b in enumerate(scenario.balancers):
        if b.churn is not None:
            out.append(f"balancers[{i}].churn")
        if b.scale_delay is not None:
            out.append(f"balancers[{i}].scale_delay")
    if scenario.backends.failures is not None:
        out.append("backends.failures")
    if scenario.backends.autoscaling is not None:
        out.append("backends.autoscaling")
    for i, g in enumerate(scenario.dns.resolvers):
        # prefetch and serve-expired are unbound's own options: only where unbound serves
        # the group (a farm's caches are unbound or our forwarders, as a single resolver's)
        forwarded = g.policy.kind not in UNBOUND_POLICIES
        if g.prefetch and forwarded:
            out.append(f"dns.resolvers[{i}].prefetch, with policy {g.policy.kind} (served by our forwarder, not unbound)")
        if g.serve_expired is not None and forwarded:
            out.append(f"dns.resolvers[{i}].serve_expired, with policy {g.policy.kind} "
                       "(served by our forwarder, not unbound)")
    for i, f in enumerate(scenario.faults):
        if isinstance(f, m.BalancerDown) and f.target != scenario.active.name:
            out.append(f"faults[{i}]: a fault of the standby balancer")
        elif isinstance(f, m.BalancerDown) and scenario.already_down(i):
            # one process: killed and stopped at once, restarted by whichever ends first
            out.append(f"faults[{i}]: a fault of the active balancer that overlaps another of it")
    for strategy in scenario.strategies if strategies is None else strategies:
        deployment = build.compile(scenario, strategy)
        out.extend(f"strategies: {deployment.strategy}: {reason}" for reason in mechanism_problems(deployment))
    return out


def mechanism_problems(deployment: Deployment) -> list[str]:
    """What the lab cannot build of what the plan publishes and of who detects the fault.

    The lab has the scenario's own health checks (run by its controller) or an
    operator's delay, a VRRP backup's Master_Down timer (sim.core's takeover),
    one static address moved between the two sim.core processes (by that timer
    or by a reassociate call), and record changes at its authoritative server.
    """
    published, detection = deployment.published, deployment.plan.detection
    out = []
    if detection == "provider_checks":
        out.append("detection by the DNS provider's health checkers (the lab has none)")
    elif detection == "accelerator_checks":
        out.append("detection by an accelerator's health checks (the lab has no accelerator)")
    elif detection == "master_down" and not published.moves_address:
        out.append("a Master_Down timer with no moving address to take over")
    elif detection not in ("scenario", "master_down"):
        out.append(f"detection {detection!r}")
    if published.moves_address and published.addresses > 1:
        out.append(f"{published.addresses} moving addresses (the lab moves one, between two sim.core processes)")
    if published.record not in RECORDS:
        out.append(f"a {published.record!r} record")
    return out


def time_scale_problems(scenario: m.Scenario, k: float) -> list[str]:
    """TTLs that K would round below unbound's one second, by field."""
    out = []
    checks = [("dns.service_ttl", scenario.dns.service_ttl), ("dns.balancer_ttl", scenario.dns.balancer_ttl)]
    for i, g in enumerate(scenario.dns.resolvers):
        for attr in ("min_ttl", "max_ttl"):
            value = getattr(g.policy, attr, None)
            if value is not None and g.policy.kind in UNBOUND_POLICIES:
                checks.append((f"dns.resolvers[{i}].policy.{attr}", value))
    for i, g in enumerate(scenario.dns.resolvers):
        if g.serve_expired is not None and g.policy.kind in UNBOUND_POLICIES:
            checks.append((f"dns.resolvers[{i}].serve_expired.reply_ttl", g.serve_expired.reply_ttl))
        if g.prefetch and g.policy.kind in UNBOUND_POLICIES:
            # unbound prefetches from ttl - ttl/10 in whole seconds: never under 10 s
            for path, ttl in (("dns.service_ttl", scenario.dns.service_ttl), ("dns.balancer_ttl", scenario.dns.balancer_ttl)):
                if ttl >= 10 and round(ttl / k) < 10:
                    out.append(f"dns.resolvers[{i}].prefetch: {path} {format_duration(ttl)} / K={k:g} is under unbound's "
                               f"10 s, which it never prefetches; use --time-scale {math.floor(ttl / 10):g} or less")
    for path, ttl in checks:
        if round(ttl / k) < 1:
            out.append(f"{path}: {format_duration(ttl)} / K={k:g} rounds below 1 s (unbound counts whole seconds); "
                       f"use --time-scale {math.floor(ttl):g} or less")
    return out


def effective(scenario: m.Scenario, options: LabOptions) -> m.Scenario:
    """The scenario as the lab runs it: fewer clients and resolvers, and a warm-up that fills real caches."""
    doc = scenario.to_document()
    sizes = scenario.cohort_sizes()
    doc.pop("population", None)
    for cohort in doc["clients"]:
        cohort.pop("share", None)
        cohort["count"] = max(1, round(sizes[cohort["name"]] * options.clients_scale))
    total = sum(g["count"] for g in doc["dns"]["resolvers"])
    if options.max_resolvers and total > options.max_resolvers:
        for g in doc["dns"]["resolvers"]:
            g["count"] = max(1, round(g["count"] * options.max_resolvers / total))
    # The lab starts from the model's time-0 state (prime_resolvers, the trace);
    # a warm-up of one service TTL lets the real processes' start settle before
    # anything is measured. It takes the run's first seconds when no fault falls in
    # them, so the run is no longer; otherwise the faults move by as much.
    # Both engines measure from the end of the warm-up on this scenario.
    extra = max(0.0, scenario.dns.service_ttl - scenario.warmup)
    if extra > 0:
        warmup = scenario.warmup + extra
        doc["warmup"] = format_duration(warmup)
        first = min((f.at for f in scenario.faults), default=math.inf)
        if first >= warmup and scenario.duration - extra > 0:
            doc["duration"] = format_duration(scenario.duration - extra)
        else:
            for fault, original in zip(doc["faults"], scenario.faults, strict=True):
                fault["at"] = format_duration(original.at + extra)
    doc["expect"] = []
    return load_data(doc, f"{scenario.name} (lab, effective)")


def replicate(scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence, replication: int = 0,
              options: LabOptions | None = None, trace: Trace | None = None) -> ReplicationOutput:
    """One lab replication of `strategy` (a plan's name, a plan class, a plan, or a
    Deployment of `scenario`) on real processes, replaying `trace`: the model's draws
    for `seed` on this same scenario (sim.model.trace), which the run layer builds
    and hands over. `replication` is the index only; the seed and the trace say what
    is drawn."""
    deployment = _deployment(scenario, strategy)
    if trace is None:
        raise TypeError(
            f"the lab replays the model's draws: the run layer must supply the trace of seed {seed} "
            f"(trace=sim.model.trace(scenario, strategy, seed)); the lab does not import the model")
    trace_problems(scenario, trace)
    options = options or LabOptions()
    problems = unsupported(scenario, [deployment]) + time_scale_problems(scenario, options.time_scale)
    if problems:
        raise LabError("the lab cannot run this scenario: " + "; ".join(problems))
    for tool in ("unbound",):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            raise LabError(f"{tool} is not installed (Debian package {tool}; scripts/test.sh installs it as root)")
    mode = takeover_mode(options) if deployment.published.moves_address else "loopback"
    # Signals held from the folder's making until Processes handles them: a SIGTERM
    # in between would end a pool worker on the spot (sim.lifeline) and leave the folder.
    unheld = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"failover-lab-{deployment.strategy}-"))
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, unheld)
        raise
    try:
        with Processes(workdir, remove=not options.keep) as procs:
            signal.pthread_sigmask(signal.SIG_SETMASK, unheld)
            segment = netns.Segment(procs) if mode == "namespace" else None
            try:
                if segment is not None:
                    segment.build()
                    # what it built, beside the logs (--keep): the tests check it is gone after
                    (workdir / "network.json").write_text(json.dumps(segment.describe()))
                world = _World(deployment, trace, seed, options, procs, workdir, segment)
                return asyncio.run(world.run())
            finally:
                if segment is not None:
                    segment.remove()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, unheld)
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def takeover_mode(options: LabOptions) -> str:
    """How this lab moves a static address ("namespace" or "loopback", sim.lab.netns):
    the loopback mode chosen for want of root says so once, with what it cannot show."""
    mode, reason = netns.resolve_mode(options.takeover)
    if reason is not None:
        netns.say_once(reason, options.quiet)
    return mode


def _deployment(scenario: m.Scenario, strategy: Strategy) -> Deployment:
    deployment = build.compile(scenario, strategy)
    if deployment.scenario is not scenario and deployment.scenario != scenario:
        raise ValueError(f"the deployment of {deployment.strategy} was compiled for scenario "
                         f"{deployment.scenario.name!r}, not for {scenario.name!r}")
    return deployment


def trace_problems(scenario: m.Scenario, trace: Trace) -> None:
    """Raise ValueError when `trace` cannot be the model's for `scenario` (the one the lab
    runs: the effective scenario, not the one it was made from)."""
    clients, resolvers = sum(scenario.cohort_sizes().values()), sum(g.count for g in scenario.dns.resolvers)
    found = (len(trace.clients), len(trace.caches), len(trace.resolver_seeds), len(trace.arrival_seeds))
    if found != (clients, resolvers, resolvers, len(scenario.clients)):
        raise ValueError(
            f"the trace is not of this scenario: {found[0]} clients, {found[1]} resolvers and {found[3]} cohorts "
            f"where {scenario.name!r} has {clients}, {resolvers} and {len(scenario.clients)}; build it from the "
            "scenario the lab runs (sim.lab.world.effective)")
    sizes = [g.caches for g in scenario.dns.resolvers for _ in range(g.count)]
    if any(n > 1 for n in sizes) and [len(f) for f in trace.farms] != sizes:
        raise ValueError(f"the trace has no state for each cache of this scenario's resolver farms ({sizes} caches "
                         "per resolver); build it with sim.model.trace")


@dataclass(frozen=True)
class Site:
    """Where the two balancers answer: their own addresses, their DNS names (a CNAME's
    targets), and the static address that moves between them."""

    active: str
    standby: str
    shared: str
    active_name: str
    standby_name: str


def service_record(published: Published, site: Site, failed_over: bool = False) -> dict:
    """The service name's record as the plan publishes it (TTL in scenario seconds),
    before the failover's DNS change or after it."""
    ttl = published.record_ttl
    if published.moves_address:
        return {"type": "A", "values": [site.shared], "ttl": ttl}  # the address moves, the record stays
    if published.record == "cname":
        return {"type": "CNAME", "values": [site.standby_name if failed_over else site.active_name], "ttl": ttl}
    if failed_over:
        # an alias (or the addresses) now the standby's; one address per balancer: the failed one deleted
        return {"type": "A", "values": [site.standby], "ttl": ttl}
    # An alias is answered as the balancer's A records (its TTL is the plan's record_ttl).
    return {"type": "A", "values": [site.active, site.standby] if published.per_balancer else [site.active],
            "ttl": ttl}


def initial_answer(published: Published, site: Site) -> list[str]:
    """The addresses the service name resolves to before the failover, in the model's order."""
    record = service_record(published, site)
    return list(record["values"]) if record["type"] == "A" else [site.active]


class _World:
    def __init__(self, deployment: Deployment, trace: Trace, seed: np.random.SeedSequence, options: LabOptions,
                 procs: Processes, workdir: Path, segment: netns.Segment | None = None) -> None:
        self.sc, self.options, self.procs, self.dir = deployment.scenario, options, procs, workdir
        self.deployment, self.plan, self.published = deployment, deployment.plan, deployment.published
        self.k = options.time_scale
        self.rng = np.random.default_rng(seed)
        # The model's draws for this seed: layout, priming, arrivals, lifetimes, plan.
        self.trace = trace
        self.block = address_block()
        sc = self.sc
        # Namespace mode (a moving address, as root): the balancers and the address on the
        # segment, the backends and the clients on addresses the balancers can reach.
        self.segment = segment
        if segment is None:
            self.balancer_ip = {sc.active.name: f"{self.block}.11", sc.standby.name: f"{self.block}.12"}
            shared = f"{self.block}.10"
        else:
            self.balancer_ip = {sc.active.name: segment.node(0), sc.standby.name: segment.node(1)}
            shared = segment.shared
        self.site = Site(self.balancer_ip[sc.active.name], self.balancer_ip[sc.standby.name], shared,
                         f"{sc.active.name}.elb.example.net.", f"{sc.standby.name}.elb.example.net.")
        # The addresses a client may send to, by the index its tries record (sim.lab.targets).
        self.addresses = (self.site.active, self.site.standby, self.site.shared)
        self.backends_down: set[str] = set()
        self.outages = 0  # dns_down faults on now
        self.scenario_file = workdir / "scenario.yaml"
        self.scenario_file.write_text(yaml.safe_dump(sc.to_document(), sort_keys=False))

    # -- building -----------------------------------------------------------------

    def _seconds(self, value: float) -> str:
        return f"{value / self.k:.6g}s"

    def _ttl(self, ttl: float) -> int:
        return max(1, round(ttl / self.k))

    def _backend_ip(self, i: int) -> str:
        return f"{self.block}.{50 + i}" if self.segment is None else self.segment.host(i)

    def start_backends(self) -> list[str]:
        addresses = []
        port = free_port(self._backend_ip(0))
        for i in range(self.sc.backends.instances):
            listen = f"{self._backend_ip(i)}:{port}"
            self.procs.start(f"backend-{i}", python("sim.lab.backend", "--listen", listen, "--scenario",
                             str(self.scenario_file), "--scale", str(self.k), "--seed", str(i)))
            addresses.append(listen)
        return addresses

    def start_balancers(self, backends: list[str]) -> None:
        sc = self.sc
        hc = sc.backends.health_check
        # (a port free here is free in a balancer's new namespace too)
        self.port = free_port(f"{self.block}.10")
        self.admin: dict[str, tuple[str, Path]] = {}
        heart = {name: free_port("127.0.0.1", 2) for name in self.balancer_ip}
        for i, (name, ip) in enumerate(self.balancer_ip.items()):
            admin_port = free_port("127.0.0.1")
            # in its namespace, the admin API listens on the balancer's own address: the
            # controller calls it from the root namespace (the token guards it)
            admin_ip = "127.0.0.1" if self.segment is None else ip
            token = self.dir / f"{name}.token"
            config = {
                "name": name, "mode": "http",
                "listen": f"{self.site.shared if self.published.moves_address else ip}:{self.port}",
                "balancing": sc.backends.policy,
                "backends": [{"name": f"i{j}", "address": a} for j, a in enumerate(backends)],
                "health_check": {"kind": "tcp", "interval": self._seconds(hc.interval), "timeout": self._seconds(hc.timeout),
                                 "rise": hc.rise, "fall": hc.fall},
                "retries": {"count": sc.backends.retries},
                "admin": {"listen": f"{admin_ip}:{admin_port}", "token_file": str(token),
                          "allow_non_loopback": self.segment is not None},
                # which requests it saw (sim.lab.targets): one buffered line each, in
                # HAProxy's format, so a kept lab run holds logs `failover-sim fit` reads
                "log": {"access": str(self.dir / f"{name}.access.log"), "access_format": "httplog",
                        "capture_user_agent": 128},
            }
            if self.published.moves_address:
                config["takeover"] = self._takeover(name, i, heart)
            path = self.dir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.admin[name] = (f"{admin_ip}:{admin_port}", token)
            self.balancer_config = getattr(self, "balancer_config", {})
            self.balancer_config[name] = path
            self._start_balancer(name)

    def _start_balancer(self, name: str) -> None:
        """sim.core's `serve` for balancer `name`, in its own namespace in namespace mode."""
        argv = python("sim", "serve", str(self.balancer_config[name]))
        if self.segment is not None:
            argv = self.segment.enter("a" if name == self.sc.active.name else "b") + argv
        self.procs.start(f"balancer-{name}", argv)

    def _takeover(self, name: str, i: int, heart: dict[str, int]) -> dict:
        """How the static address moves between the two sim.core processes."""
        sc = self.sc
        other = [n for n in self.balancer_ip if n != name][0]
        key = self.dir / "takeover.key"  # both nodes authenticate their heartbeats with it
        if not key.exists():
            key.touch(mode=0o600)
            key.write_text(secrets.token_hex(32))
        link: dict[str, object]
        if self.segment is None:
            link = {"heartbeat_listen": f"127.0.0.1:{heart[name]}", "peer": f"127.0.0.1:{heart[other]}"}
        else:
            # sim.core's address mode: the address on its eth0, heartbeats over the segment
            link = {"mode": "address", "interface": netns.INTERFACE, "prefix": 24,
                    "heartbeat_listen": f"{self.balancer_ip[name]}:{heart[name]}",
                    "peer": f"{self.balancer_ip[other]}:{heart[other]}"}
        link.update(role="active" if name == sc.active.name else "standby", key_file=str(key))
        if self.plan.detection == "master_down":
            # VRRP: the backup takes the address by itself, Master_Down_Interval after the
            # last advertisement (sim.core's takeover implements RFC 5798's timer).
            vrrp = self.deployment.failover.vrrp
            return {**link, "interval": self._seconds(vrrp.advert_int),
                    "priority": 254 if name == sc.active.name else vrrp.priority}
        # Not automatic: the address moves when the failover controller calls the
        # reassociate API, as an Elastic IP does.
        return {**link, "interval": f"{HEARTBEAT}s", "priority": 200 - i * 100, "automatic": False}

    def _wire(self, record: dict) -> dict:
        """A record as the authoritative server serves it: the TTL in real whole seconds."""
        return {**record, "ttl": self._ttl(record["ttl"])}

    def start_dns(self) -> None:
        sc = self.sc
        zone = sc.dns.zone.rstrip(".")
        self.fqdn = f"{sc.dns.service_name}.{zone}." if sc.dns.service_name != "@" else f"{zone}."
        # The balancers' own names (a CNAME's targets): the chain's TTL behind a CNAME.
        chain = self.published.chain_ttl if self.published.chain_ttl is not None else sc.dns.balancer_ttl
        records: dict[str, dict] = {}
        for name, ip in self.balancer_ip.items():
            records[f"{name}.elb.example.net."] = {"type": "A", "values": [ip], "ttl": self._ttl(chain)}
        records[self.fqdn] = self._wire(service_record(self.published, self.site))
        self.records = records
        spec = self.dir / "records.json"
        # Where each resolver's caches answer: its own address, or a farm's caches behind
        # its front (their own addresses, from a block of their own).
        self.sources = self._client_sources()
        self.cache_addresses: dict[int, list[tuple[str, int]]] = {}
        groups = [g for g in sc.dns.resolvers for _ in range(g.count)]
        farmed = sum(g.caches for g in groups if g.caches > 1)
        cache_block = address_block() if farmed else ""
        if farmed > 250:
            raise LabError(f"{farmed} farm caches: the lab gives each its own loopback address, 250 at most "
                           "(--max-resolvers)")
        j = 0
        for n, g in enumerate(groups):
            if g.caches > 1:
                ips = [f"{cache_block}.{1 + j + i}" for i in range(g.caches)]
                j += g.caches
                self.cache_addresses[n] = [(ip, free_port(ip, 2)) for ip in ips]
        # past 150 resolvers, blocks of their own: every resolver asks from its own address
        self.resolver_blocks = [address_block() for _ in range(math.ceil(max(0, len(groups) - 150) / 250))]
        unbound = sorted({self._resolver_ip(n) for n, g in enumerate(groups) if g.policy.kind in UNBOUND_POLICIES}
                         | {ip for n, caches in self.cache_addresses.items() for ip, _ in caches
                            if groups[n].policy.kind in UNBOUND_POLICIES})
        spec.write_text(json.dumps({"service": self.fqdn, "records": records, "unbound": unbound,
                                    "bounds": self._unbound_bounds(groups)}))
        self.auth = (f"{self.block}.2", free_port(f"{self.block}.2", 2))
        self.control = ("127.0.0.1", free_port("127.0.0.1"))
        self.procs.start("authoritative", python(
            "sim.lab.dnsserver", "authoritative", "--listen", f"{self.auth[0]}:{self.auth[1]}",
            "--control", f"{self.control[0]}:{self.control[1]}", "--records", str(spec),
            "--query-log", str(self.dir / "query.log")))
        self.resolvers: list[tuple[str, tuple[str, int]]] = []  # (group, address)
        # our forwarders' control addresses, by resolver and cache (0 for a single cache)
        self.forwarder_control: dict[tuple[int, int], tuple[str, int]] = {}
        n = 0
        for g in sc.dns.resolvers:
            for _ in range(g.count):
                ip = self._resolver_ip(n)
                port = free_port(ip, 2)
                if n in self.cache_addresses:
                    self._start_farm(n, ip, port, g, zone)
                else:
                    self._start_cache(n, 0, ip, port, g, zone)
                self.resolvers.append((g.name, (ip, port)))
                n += 1

    def _start_cache(self, n: int, cache: int, ip: str, port: int, group: m.ResolverGroup, zone: str) -> None:
        """One cache of resolver `n`: unbound where it can keep the group's policy, else our
        forwarder, drawing its lifetimes from the model's stream for that cache."""
        name = f"{n}" if n not in self.cache_addresses else f"{n}-{cache}"
        if group.policy.kind in UNBOUND_POLICIES:
            self._start_unbound(name, ip, port, group, zone)
            return
        policy = json.dumps(group.policy.model_dump(mode="json"))
        seed = self.deployment.resolver_setups[group.name].farm.cache_seed(self.trace.resolver_seeds[n], cache)
        control = self.forwarder_control[(n, cache)] = ("127.0.0.1", free_port("127.0.0.1"))
        self.procs.start(f"resolver-{name}", python(
            "sim.lab.dnsserver", "forwarder", "--listen", f"{ip}:{port}", "--upstream",
            f"{self.auth[0]}:{self.auth[1]}", "--policy", policy, "--scale", str(self.k),
            # its own address, so the query log tells the resolvers apart
            "--source", ip, "--seed", str(seed), "--control", "{}:{}".format(*control)))

    def _resolver_ip(self, n: int) -> str:
        # .100-.249 of the block, then blocks of their own (start_dns): one address each
        if n < 150:
            return f"{self.block}.{100 + n}"
        return f"{self.resolver_blocks[(n - 150) // 250]}.{1 + (n - 150) % 250}"

    def _unbound_bounds(self, groups: list[m.ResolverGroup]) -> dict[str, list[int]]:
        """A floor's or cap's bounds (real whole seconds) by the address its unbound asks from:
        the authoritative server answers it with the TTL the policy makes of the record's,
        max(TTL, floor) or min(TTL, cap), as unbound's cache-min-ttl and cache-max-ttl would
        make it of every TTL it receives. Not those options: they also bound the TTLs that
        prime a cache with the model's state at time 0 (a floor would keep every primed
        record the whole floor, so a floor group's caches would all expire together, at the
        floor), and unbound's whole second would come on top of the bound (sim.lab.dnsserver.
        unbound_ttl corrects it only for the TTL the server sends)."""
        out: dict[str, list[int]] = {}
        for n, g in enumerate(groups):
            if not isinstance(g.policy, (m.Floor, m.Cap)):
                continue
            bounds = ([self._ttl(g.policy.min_ttl), 2**31 - 1] if isinstance(g.policy, m.Floor)
                      else [0, self._ttl(g.policy.max_ttl)])
            ips = [ip for ip, _ in self.cache_addresses[n]] if n in self.cache_addresses else [self._resolver_ip(n)]
            out.update(dict.fromkeys(ips, bounds))
        return out

    def _client_sources(self) -> list[str]:
        """Each client's own loopback address, in the model's client order: its connections
        and its DNS queries come from it, as clients on the Internet come from their own, so
        the balancers' logs and a farm's front tell them apart (`failover-sim fit`). In
        namespace mode, its own address of those local to the root namespace (a loopback
        source cannot reach a namespace)."""
        total = sum(self.sc.cohort_sizes().values())
        if self.segment is not None:
            return [self.segment.host(250 + n) for n in range(total)]
        blocks = [address_block() for _ in range(math.ceil(total / 250))]
        return [f"{blocks[n // 250]}.{1 + n % 250}" for n in range(total)]

    def _start_farm(self, n: int, ip: str, port: int, group: m.ResolverGroup, zone: str) -> None:
        """A resolver farm: one unbound per cache, and our front on the resolver's address
        choosing a cache per query (sim.policy.resolver.Farm; dnsserver.Front), each client
        known by its source address and given the model's own cache (the trace's `home`)."""
        caches = self.cache_addresses[n]
        for i, (cip, cport) in enumerate(caches):
            self._start_cache(n, i, cip, cport, group, zone)
        homes = {self.sources[c]: state.home for c, state in enumerate(self.trace.clients) if state.resolver == n}
        homes_file = self.dir / f"front-{n}.homes.json"
        homes_file.write_text(json.dumps(homes))
        self.procs.start(f"resolver-{n}", python(
            "sim.lab.dnsserver", "front", "--listen", f"{ip}:{port}",
            "--upstreams", ",".join(f"{h}:{p}" for h, p in caches), "--sticky", str(group.sticky),
            "--homes", str(homes_file), "--seed", str(self.trace.resolver_seeds[n])))

    def _start_unbound(self, n: int | str, ip: str, port: int, group: m.ResolverGroup, zone: str) -> None:
        served = group.serve_expired
        expired = None
        if served is not None:
            # unbound's own options in real time: the timeout in ms, TTLs in whole seconds, 0 = no limit
            limit = 0 if math.isinf(served.ttl) else self._ttl(served.ttl)
            expired = (round(served.client_timeout / self.k * 1000), self._ttl(served.reply_ttl), limit)
        conf = self.dir / f"unbound-{n}.conf"
        allow = () if self.segment is None else (self.segment.network,)  # the clients' own addresses
        conf.write_text(unbound_config(self.dir, f"unbound-{n}", ip, port, self.auth, [zone, "elb.example.net"],
                                       prefetch=group.prefetch, serve_expired=expired, allow=allow))
        binary = shutil.which("unbound") or "/usr/sbin/unbound"
        self.procs.start(f"resolver-{n}", [binary, "-d", "-c", str(conf)], ready=None)
        _wait_dns(ip, port, self.fqdn, self.procs, f"resolver-{n}")

    def start_clients(self, t0: float) -> Path:
        sc = self.sc
        clients = []
        sizes = sc.cohort_sizes()
        # Every client on the model's resolver, with the model's stub cache, rotation
        # and open connection at time 0 (the trace).
        states = iter(self.trace.clients)
        for cohort in sc.clients:
            for _ in range(sizes[cohort.name]):
                state = next(states)
                group, resolver = self.resolvers[state.resolver]
                n = len(clients)
                clients.append({"id": n, "cohort": cohort.name, "group": group, "resolver": list(resolver),
                                "source": self.sources[n],
                                "stub": None if state.stub_expires is None else finite(state.stub_expires),
                                "stub_primed": state.stub_expires is not None, "rotation": state.rotation,
                                "conn": None if state.conn is None else [finite(x) for x in state.conn],
                                "restarts": state.restarts})
        self.clients = clients
        out = self.dir / "requests.npy"
        plan = {"scenario": str(self.scenario_file), "scale": self.k, "t0": t0, "end": sc.end, "service": self.fqdn,
                "addresses": list(self.addresses), "tries": str(self.dir / "tries.npy"),
                "rotate": self.published.rotate, "initial": initial_answer(self.published, self.site),
                "arrival_seeds": self.trace.arrival_seeds,
                "port": self.port, "clients": clients, "out": str(out), "seed": int(self.rng.integers(2**31))}
        (self.dir / "clients.json").write_text(json.dumps(plan))
        self.procs.start("clients", python("sim.lab.clients", str(self.dir / "clients.json")), timeout=60)
        return out

    async def prime_resolvers(self, t0: float) -> None:
        """Give every resolver the model's cache at time 0 (= t0): our forwarders by
        their control port; unbound by asking it while the authoritative server
        answers with the TTL that ends at the model's expiry. unbound keeps a
        record to the end of the second floor(received) + TTL (dnsserver.unbound_ttl),
        so it gets the TTL whose second ends nearest that expiry."""
        import dns.asyncquery
        import dns.message

        def name_of(record) -> str:  # type: ignore[no-untyped-def]
            return self.fqdn if not record.balancer else f"{record.name}.elb.example.net."

        # (records, the unbound to ask or the forwarder resolver's index): a farm's caches each
        # as the model's trace has them
        targets: list[tuple[list, tuple[str, int], tuple[int, int]]] = []
        for n, records in enumerate(self.trace.caches):
            if n in self.cache_addresses:
                targets.extend((farm, address, (n, i)) for i, (farm, address) in enumerate(
                    zip(self.trace.farms[n], self.cache_addresses[n], strict=True)))
            else:
                targets.append((records, self.resolvers[n][1], (n, 0)))
        for records, (ip, port), cache in targets:
            if not records:
                continue
            if cache in self.forwarder_control:
                prime = [{"name": name_of(r), "type": self.records[name_of(r)]["type"],
                          "values": self.records[name_of(r)]["values"],
                          "expires": None if math.isinf(r.expires) else t0 + r.expires / self.k} for r in records]
                await self._control({"op": "prime", "records": prime}, self.forwarder_control[cache])
                continue
            if time.time() % 1.0 > 0.8:  # not across a second boundary: unbound counts from the whole second
                await asyncio.sleep(1.02 - time.time() % 1.0)
            base = math.floor(time.time())
            ttls = {name_of(r): max(0, round(t0 + min(r.expires, 1e7) / self.k - base - 1)) for r in records}
            for name, record in self.records.items():
                if record["type"] == "A" and name not in ttls:
                    ttls[name] = 0  # not in the model's cache: answered, not kept
            await self._control({"op": "ttl", "ttls": ttls})
            ask = self.fqdn if any(not r.balancer for r in records) else name_of(records[0])
            await dns.asyncquery.udp(dns.message.make_query(ask, "A"), ip, port=port, timeout=2.0)
        await self._control({"op": "ttl", "ttls": {}})
        if time.time() > t0:
            raise LabError(f"priming {len(targets)} resolver caches took past the start; this machine is too slow "
                           "or too busy for this many resolvers (--max-resolvers)")

    # -- running ------------------------------------------------------------------------

    async def run(self) -> ReplicationOutput:
        clock = PhaseClock(f"lab {self.deployment.strategy}", quiet=self.options.quiet)
        clock.show("starting processes")
        backends = self.start_backends()
        self.start_balancers(backends)
        self.start_dns()
        caches = len(self.resolvers) + sum(len(c) - 1 for c in self.cache_addresses.values())
        t0 = time.time() + 2.0 + 0.05 * caches
        await self.prime_resolvers(t0)
        out = self.start_clients(t0)
        self.t0 = t0
        self.events: list[tuple[float, str]] = []
        # Where requests go: the change's time (None: none was made), the addresses'
        # holders (sim.lab.targets), filled in by the planned change or the failover.
        self.changed_at: float | None = None
        self.moved_at: float | None = None
        planned = self.sc.planned_change(self.published.changes_dns)
        tasks = [asyncio.create_task(self._fault(f, i)) for i, f in enumerate(self.sc.faults)]
        if planned is not None:
            tasks.append(asyncio.create_task(self._planned_change(planned.at)))
        tasks.append(asyncio.create_task(self._controller()))
        tasks.append(asyncio.create_task(self._phases(clock)))
        await self._until(self.sc.end)
        for task in tasks:
            task.cancel()
        clock.show("drain: waiting for the clients' last attempts", self.sc.end, self.sc.end)
        deadline = time.monotonic() + 30 + max(c.retry.attempts * c.retry.timeout for c in self.sc.clients) / self.k
        proc = self.procs.children["clients"]
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if not out.is_file():
            raise LabError(f"the client process wrote no records (see its log in {self.dir})")
        records = np.load(out)
        queries = await self._control({"op": "queries"})
        # the control plane's events, scenario seconds, beside the logs (--keep)
        (self.dir / "events.json").write_text(json.dumps(self.events))
        reached = self._targets(np.load(self.dir / "tries.npy"), records)
        return tables(self.sc, records, self.clients, queries.get("queries", []), t0, self.k, reached,
                      self.changed_at, self.published.changes_dns)

    def _targets(self, tries: np.ndarray, records: np.ndarray) -> Targets:
        """Each try attributed to the balancer that logged it, else by its address; counted
        as the model counts (sim.lab.targets)."""
        sc = self.sc
        for name in self.balancer_ip:  # a clean stop flushes the access log (SIGTERM)
            proc = self.procs.children.get(f"balancer-{name}")
            if proc is not None and proc.poll() is None:
                self.procs.signal(f"balancer-{name}", signal.SIGCONT)
                self.procs.signal(f"balancer-{name}", signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        logged: dict = {}
        for name in self.balancer_ip:
            log = self.dir / f"{name}.access.log"
            if log.is_file():
                with open(log, encoding="utf-8", errors="replace") as lines:
                    read_access_log(lines, name, logged)
        if self.plan.detection == "master_down" and self.changed_at is None:
            self.changed_at = self.moved_at = self._took_over()
        index = {a: i for i, a in enumerate(self.addresses)}
        holders = Holders({index[ip]: name for name, ip in self.balancer_ip.items()}, index[self.site.shared],
                          sc.active.name, sc.standby.name, self.moved_at)
        tries = sort_tries(tries)
        cohort_index = {c.name: i for i, c in enumerate(sc.clients)}
        return count(tries, attribute(tries, logged, holders), records,
                     [cohort_index[c["cohort"]] for c in self.clients], [c.name for c in sc.clients],
                     int(math.ceil(sc.end)), sc.standby.name, self.changed_at)

    def _took_over(self) -> float | None:
        """When the standby's sim.core took the address by its own timer (its event line,
        scenario seconds): a VRRP failover's change, which no controller of ours makes."""
        log = self.dir / f"balancer-{self.sc.standby.name}.log"
        if not log.is_file():
            return None
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                event = json.loads(line)
                if event.get("event") == "takeover" and event.get("state") == "active":
                    at = datetime.fromisoformat(event["time"]).timestamp()
                    if at >= self.t0:
                        return (at - self.t0) * self.k
        return None

    def now(self) -> float:
        return (time.time() - self.t0) * self.k

    async def _phases(self, clock: PhaseClock) -> None:
        """Say which phase the run is in, on the scenario's clock (starting, warm-up, before the
        fault, each fault), at each change and at the clock's interval."""
        started = sorted(((f.at, f"fault {i} {f.kind}") for i, f in enumerate(self.sc.faults)))
        while True:
            t = self.now()
            phase = "starting clients" if t < 0 else "warm-up" if t < self.sc.warmup else "before the fault"
            phase = next((name for at, name in reversed(started) if 0 <= at <= t), phase)
            clock.show(phase, max(0.0, t), self.sc.end)
            await asyncio.sleep(0.5)

    async def _until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, (t - self.now()) / self.k))

    async def _fault(self, fault: m.Fault, index: int) -> None:
        await self._until(fault.at)
        self.events.append((self.now(), f"fault {index} {fault.kind}"))
        if isinstance(fault, m.BalancerDown):
            name = f"balancer-{fault.target}"
            stop = signal.SIGKILL if fault.mode == "refuse" else signal.SIGSTOP
            self.procs.signal(name, stop)
            if fault.for_ is not None:
                await self._until(fault.at + fault.for_)
                if stop == signal.SIGSTOP:
                    self.procs.signal(name, signal.SIGCONT)
                else:
                    self._start_balancer(fault.target)
        elif isinstance(fault, m.InstanceDown):
            # as the model: drawn from the instances up now, in order
            names = [n for n in self.procs.children if n.startswith("backend-") and n not in self.backends_down]
            picks = self.trace.faults.choice(len(names), size=min(fault.count, len(names)), replace=False)
            victims = [names[int(i)] for i in picks]
            self.backends_down.update(victims)
            stop = signal.SIGKILL if fault.mode == "refuse" else signal.SIGSTOP
            argv = {v: self.procs.children[v].args for v in victims}
            for v in victims:
                self.procs.signal(v, stop)
            await self._until(fault.at + fault.for_)
            for v in victims:
                if stop == signal.SIGSTOP:
                    self.procs.signal(v, signal.SIGCONT)
                else:
                    self.procs.start(v, list(argv[v]))  # type: ignore[arg-type]
            self.backends_down.difference_update(victims)
        elif isinstance(fault, m.DnsDown):
            # counted, as the model counts them: overlapping outages are one
            self.outages += 1
            if self.outages == 1:
                await self._control({"op": "down", "value": True})
            await self._until(fault.at + fault.for_)
            self.outages -= 1
            if self.outages == 0:
                await self._control({"op": "down", "value": False})
        # traffic: the clients change their own rates

    async def _controller(self) -> None:
        """Detection, then the plan's actions: the change is made at the action before the
        one at which the failover takes effect (`plan.effective`), and what it sets in
        motion (propagation, the address move) takes until then."""
        if self.plan.detection == "master_down":
            return  # the backup's own timer moves the address (sim.core takeover)
        detected = await self._detect()
        if detected is None:
            return
        self.events.append((detected, "detected"))
        actions = self.plan.actions_after_detection(detected, self.trace.failover)
        effective = [a.kind for a in actions].index(self.plan.effective)
        call = max(0, effective - 1)
        for i, action in enumerate(actions):
            await self._until(action.at)
            self.events.append((self.now(), action.kind))
            if i == call and self._change_target(actions[0].at):
                await self._set_in_motion((actions[effective].at - action.at) / self.k, actions[effective].at)

    async def _planned_change(self, at: float) -> None:
        """A planned DNS change or address move (docs/scenario.md, `dns_change`): the
        failover's own change, made at `at`, in effect after the plan's second delay,
        while the old target keeps serving. The delay is drawn at `at` from the model's
        "failover" stream, as sim.model.control._planned_change draws it: after the
        checker's phase (drawn at the start) and before a detection that comes later."""
        await self._until(at)
        self.events.append((self.now(), "planned change"))
        _, delay = self.plan.delays(self.trace.failover)
        if self._change_target(at):
            await self._set_in_motion(delay / self.k, at + delay)

    def _change_target(self, at: float) -> bool:
        """The service now points at the standby (from scenario time `at`); False when it
        already did: a failover after a planned change changes nothing (as the model's
        _change_target)."""
        if self.changed_at is not None:
            return False
        self.changed_at = at
        return True

    async def _detect(self) -> float | None:
        """When the scenario's detection notices the active's fault: real health checks on
        the address clients use, or an operator's delay after the fault (None: no fault)."""
        sc, spec = self.sc, self.deployment.failover
        if spec.detection == "operator":
            faults = [f for f in sc.faults if isinstance(f, m.BalancerDown) and f.target == sc.active.name]
            if not faults:
                return None
            await self._until(faults[0].at + (spec.delay or 0.0))
            return self.now()
        hc = self.deployment.detector_check()
        target = (self.site.shared if self.published.moves_address else self.site.active, self.port)
        state = HealthState()
        rng = self.trace.failover  # the model's draws: the checker's phase, then the plan's delays
        # Probes on the model's schedule, in scenario time: an interval after each
        # result. Sleeping an interval after each probe drifted by the probe's own
        # time and the sleep's overshoot (~8 ms real a probe): 30 probes moved the
        # one the model puts 1.1 s before the fault past it, detection one interval early.
        at = first_probe_at(float(rng.random()), hc)
        while True:
            await self._until(at)
            outcome = await _http_probe(target, hc.timeout / self.k)
            state, transition = probe_step(state, probe_ok(outcome), hc)
            if transition == "down":
                return self.now()
            at += probe_duration(outcome, hc) + hc.interval

    async def _set_in_motion(self, gap: float, effective: float) -> None:
        """The failover's call, taking effect `gap` real seconds from now (scenario time
        `effective`): the record change (the authoritative server applies it then:
        propagation), or the address move."""
        self.moved_at = effective
        if self.published.changes_dns:
            record = self._wire(service_record(self.published, self.site, failed_over=True))
            await self._control({"op": "set", "name": self.fqdn, "delay": gap, **record})
        elif self.published.moves_address:
            admin, token = self.admin[self.sc.standby.name]
            # the address moves when the model moves it: sim.core takes it right after
            # the delay, then asks the old holder (alive or not) to let go
            await _post_takeover(admin, token.read_text().strip(), gap)

    async def _control(self, request: dict, to: tuple[str, int] | None = None) -> dict:
        reader, writer = await asyncio.open_connection(*(to or self.control))
        writer.write(json.dumps(request).encode())
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return json.loads(data or b"{}")


def unbound_config(workdir: Path, name: str, ip: str, port: int, auth: tuple[str, int], zones: list[str],
                   prefetch: bool = False, serve_expired: tuple[int, int, int] | None = None,
                   allow: tuple[str, ...] = ()) -> str:
    """One unbound resolver on ip:port with its own cache: the zones are stub zones at
    our authoritative server, it queries from its own address (the server tells
    unbound's queries apart by it, dnsserver.unbound_ttl). No prefetch and no stale
    answers unless asked: `serve_expired` is (client timeout in ms, reply TTL in s,
    limit in s, 0 for none), unbound's own options, written out whatever the
    version's defaults (they changed in 1.23). Its cache bounds are unbound's
    defaults: a floor or a cap is in the TTLs the server sends it
    (`_World._unbound_bounds`). It answers 127.0.0.0/8 and the networks in `allow`
    (the clients' addresses in namespace mode)."""
    acl = "".join(f"  access-control: {net} allow\n" for net in ("127.0.0.0/8", *allow))
    stub = f"{auth[0]}@{auth[1]}"
    if serve_expired is None:
        expired = "  serve-expired: no\n"
    else:
        timeout, reply, limit = serve_expired
        expired = (f"  serve-expired: yes\n  serve-expired-client-timeout: {timeout}\n"
                   f"  serve-expired-reply-ttl: {reply}\n  serve-expired-ttl: {limit}\n")
    zone_text = "".join(f'stub-zone:\n  name: "{z}"\n  stub-addr: {stub}\n' for z in zones)
    return f"""server:
  interface: {ip}@{port}
  port: {port}
  do-ip6: no
  do-tcp: no
  username: ""
  chroot: ""
  directory: "{workdir}"
  pidfile: "{workdir}/{name}.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
{acl}  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  prefetch: {"yes" if prefetch else "no"}
{expired}  rrset-roundrobin: no
  cache-min-ttl: 0
  cache-max-ttl: 86400
  infra-host-ttl: 1
  outgoing-interface: {ip}
{zone_text}remote-control:
  control-enable: no
"""


async def _http_probe(target: tuple[str, int], timeout: float) -> str:
    """The probe's outcome as sim.policy names it: ok, refuse, or blackhole (no answer in time)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*target)
            writer.write(b"GET / HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            return "ok" if int(head.split(b" ", 2)[1]) < 500 else "refuse"
    except TimeoutError:
        return "blackhole"
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        return "refuse"


async def _post_takeover(admin: str, token: str, delay: float) -> None:
    host, port = admin.rsplit(":", 1)
    body = json.dumps({"delay": f"{delay:.6g}s"}).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /takeover HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer " + token.encode()
                 + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    await reader.read()
    writer.close()


def _wait_dns(ip: str, port: int, name: str, procs: Processes, who: str, timeout: float = 10.0) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query("ready.invalid.", "A"), ip, port=port, timeout=0.3)
            return
        except Exception:
            if procs.children[who].poll() is not None:
                break
            time.sleep(0.1)
    log = (procs.workdir / f"{who}.log").read_text(errors="replace")[-1500:]
    raise LabError(f"{who} (unbound) did not answer on {ip}:{port}: {log.strip() or 'no output'}")


def tables(sc: m.Scenario, records: np.ndarray, clients: list[dict], queries: list[float], t0: float,
           k: float, targets: Targets | None = None, changed_at: float | None = None,
           changes_dns: bool = True) -> ReplicationOutput:
    """The model's tables from the request log (REQUEST_COLUMNS): per second, per client
    (every client, as the model lists them), the summary metrics; with `targets`, where
    the requests went (sim.lab.targets) and the change's time `changed_at`. A client's
    failures count from the faults and the planned change of the strategy's kind
    (`changes_dns`), as the model counts them."""
    seconds = int(math.ceil(sc.end))
    start = int(math.floor(sc.warmup))
    cid, issued, finished, outcome = (records[:, i] for i in range(4))
    cid = cid.astype(np.int64)
    outcome = outcome.astype(np.int64)
    sec = np.clip(issued.astype(np.int64), 0, seconds - 1)
    timeline = pd.DataFrame({"t": np.arange(seconds, dtype=np.int64)})
    counts = np.zeros((len(OUTCOMES), seconds), dtype=np.int64)
    np.add.at(counts, (outcome, sec), 1)
    timeline["requests"] = counts.sum(axis=0)
    for i, name in enumerate(OUTCOMES):
        timeline[name] = counts[i]
    timeline["on_old_target"] = np.zeros(seconds, dtype=np.int64)  # not observable from outside the clients
    q = ((np.array(queries) - t0) * k).astype(np.int64) if queries else np.zeros(0, dtype=np.int64)
    q = q[(q >= 0) & (q < seconds)]
    timeline["dns_queries"] = np.bincount(q, minlength=seconds)[:seconds]
    fault_times = sc.fault_times(changes_dns)
    client_df = _client_rows(sc, records, clients, fault_times, targets)
    affected = client_df[client_df["failed"] > 0]
    measured = counts[:, start:]
    ok = (outcome == 0) & (issued >= sc.warmup)
    lat = (finished[ok] - issued[ok]) * 1000.0
    recovery = affected["recovery_s"].to_numpy(dtype=float)
    metrics = {
        "requests": int(measured.sum()),
        "failed": int(measured[1:].sum()),
        "clients_affected": len(affected),
        "stragglers_5m": float(np.mean(~(recovery <= 300.0))) if len(affected) else 0.0,
        "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
        "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
        "dns_queries": int(timeline["dns_queries"].iloc[start:].sum()),
        "dropped": int(measured[OUTCOMES.index("shed")].sum()),
        "changed_at": math.nan if changed_at is None else float(changed_at),
    }
    return ReplicationOutput(metrics, client_df, timeline, None if targets is None else targets.table)


def _client_rows(sc: m.Scenario, records: np.ndarray, clients: list[dict], fault_times: list[float],
                 targets: Targets | None) -> pd.DataFrame:
    """Every client: its recovery after its first failure once a fault began (NaN and 0
    failures for a client no fault affected), and when it moved (`targets`)."""
    cid, issued, finished, outcome = (records[:, i] for i in range(4))
    cid, outcome = cid.astype(np.int64), outcome.astype(np.int64)
    counted = issued >= sc.warmup
    order = np.argsort(finished, kind="stable")
    cid, finished, outcome, counted = cid[order], finished[order], outcome[order], counted[order]
    recovery = np.full(len(clients), math.nan)
    failed = np.zeros(len(clients), dtype=np.int64)
    fault_at = np.full(len(clients), math.nan)
    for c in np.unique(cid):
        mine = (cid == c) & counted
        f, o = finished[mine], outcome[mine]
        bad = (o != 0) & (f >= (fault_times[0] if fault_times else math.inf))
        if not bad.any():
            continue
        first = f[bad][0]
        later_ok = f[(o == 0) & (f > first)]
        fault_at[c] = max(t for t in fault_times if t <= first)
        failed[c] = int(bad.sum())
        if len(later_ok) and later_ok[0] <= sc.end:
            recovery[c] = float(later_ok[0] - fault_at[c])
    nan = np.full(len(clients), math.nan)
    return pd.DataFrame({
        "client": np.arange(len(clients), dtype=np.int64),
        "cohort": [c["cohort"] for c in clients],
        "resolver_group": [c["group"] for c in clients],
        "recovery_s": recovery,
        "failed": failed,
        "fault_at": fault_at,
        "switched_at": nan if targets is None else targets.switched_at,
        "last_previous_at": nan if targets is None else targets.last_previous_at,
    })
