"""What the fast engine does not model, named: each refusal says the scenario's field and
why (docs/fast.md, "What it does not model"). `unsupported` is asked before a run (the
runner refuses such a scenario with `--engine fast`, exit 2); sim.fast.engine runs the rest."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from sim.fast import churn, churn_requests, scaling
from sim.fast.control import DETECTIONS
from sim.fast.dns import WITHIN_TTL
from sim.fast.population import followed_groups, groups_of, on_farm, outage_followed
from sim.policy.failover import FailoverPlan
from sim.scenario import build
from sim.scenario import models as m

Strategy = str | type | FailoverPlan | build.Deployment


# Requests the follower (sim.fast.lookups) draws one by one, at most: it keeps every one
# of them (about 150 bytes each: 3 million requests took 680 MB against 234 MB without
# the follower, and 93 s on two loaded cores), so 20 million is about 3 GB, near the 4 GB
# the fast engine is held to (docs/benchmarks.md).
FOLLOWED_REQUESTS_LIMIT = 20_000_000


def unsupported(scenario: m.Scenario, strategies: Sequence[Strategy] | None = None) -> list[str]:
    """What this scenario (run with `strategies`, default all of its own) uses that the fast
    engine does not model: scenario fields by path, strategies by the mechanism, naming the plan.
    A strategy is a name, a plan class, a plan, or a Deployment of this scenario. Overlapping
    faults of one balancer and mode are judged as the one fault that covers them (as they run,
    `merged_faults`), each named by its place in `scenario`."""
    merged = merged_faults(scenario)
    if merged is scenario:
        return _unsupported(scenario, strategies)
    if strategies is not None:
        strategies = [s.plan if isinstance(s, build.Deployment) else s for s in strategies]
    place = _fault_places(scenario, merged)
    return [re.sub(r"faults\[(\d+)\]", lambda x: f"faults[{place[int(x.group(1))]}]", r)
            for r in _unsupported(merged, strategies)]


def _fault_places(scenario: m.Scenario, merged: m.Scenario) -> list[int]:
    """Where each of `merged`'s faults stands in `scenario` (a merged fault: where its first was)."""
    out, j = [], 0
    for g in merged.faults:
        while not _same_start(scenario.faults[j], g):
            j += 1
        out.append(j)
        j += 1
    return out


def _same_start(f: m.Fault, g: m.Fault) -> bool:
    return f == g or (isinstance(f, m.BalancerDown) and isinstance(g, m.BalancerDown)
                      and (f.target, f.at, f.mode) == (g.target, g.at, g.mode))


def _unsupported(scenario: m.Scenario, strategies: Sequence[Strategy] | None = None) -> list[str]:
    out = _unsupported_fields(scenario) + _unsupported_size(scenario)
    blackhole = _blackholed(scenario)
    several = len(balancer_faults(scenario)) > 1
    for strategy in scenario.strategies if strategies is None else strategies:
        try:
            deployment = build.compile(scenario, strategy)
        except ValueError as exc:
            out.append(f"strategies: {exc}")
            continue
        reasons = _unsupported_plan(deployment, blackhole) + _unsupported_planned(deployment)
        if deployment.published.per_balancer:
            reasons.extend(f"publishes one address per balancer, with clients[{i}].restart"
                           for i, c in enumerate(scenario.clients) if c.restart is not None)
        if deployment.published.per_balancer:
            reasons.extend(f"publishes one address per balancer, with clients[{i}].stub_grace"
                           for i, c in enumerate(scenario.clients) if c.stub_grace > 0)
        if deployment.published.per_balancer:
            # A farm's Poisson clients are followed with their rotation (sim.fast.lookups); sessions not yet.
            reasons.extend(f"publishes one address per balancer, with clients[{i}]{_followed_as(scenario, c)}"
                           for i, c in enumerate(scenario.clients) if c.sessions is not None)
        if several and deployment.published.per_balancer:
            reasons.append("publishes one address per balancer, with several balancer faults")
        if deployment.published.changes_dns:
            reasons.extend(_unsupported_scaling(deployment))
        if deployment.published.record != "addresses":
            # Static addresses lead to a balancer's front, which churn leaves alone (as in the
            # model); a name that resolves to its nodes' addresses is followed by sim.fast.churn.
            reasons.extend(_unsupported_churn(deployment))
        out.extend(f"strategies: {deployment.strategy} {reason}" for reason in reasons)
    return out


def _unsupported_scaling(deployment: build.Deployment) -> list[str]:
    """Node scaling (`scale_delay`) where the failover changes DNS. Behind a name that resolves
    to the nodes (a CNAME or an alias) a new node meets only the requests of clients whose
    answer lists it (sim.fast.scaling), followed on the active balancer through the faults
    `_unsupported_scaling_faults` lets by, for clients who ask a plain resolver: no stub cache
    or one of sim.fast.scaling.STUBS (restarts included), pooled connections too; no sessions,
    farms, prefetch or serve-expired. One address per balancer leads to
    its front, which this engine takes per node (not followed)."""
    scenario, published = deployment.scenario, deployment.published
    scaled = [i for i, b in enumerate(scenario.balancers) if b.scale_delay is not None]
    if not scaled:
        return []
    what = "changes DNS, with balancers[{}].scale_delay (node scaling)"
    if published.per_balancer:
        return [what.format(i) + ": one address per balancer, whose front is taken per node here" for i in scaled]
    out = [what.format(i) + f" and faults[{j}] ({reason})"
           for i in scaled for j, reason in _unsupported_scaling_faults(deployment, i)]
    for k, c in enumerate(scenario.clients):
        held = [field for field, on in (("sessions", c.sessions is not None),
                                        ("stub_cache", c.stub_cache.kind not in ("none", *scaling.STUBS))) if on]
        out.extend(what.format(i) + f" and clients[{k}].{field} (followed for clients with no stub cache or one of "
                   f"{', '.join(scaling.STUBS)}, not in sessions)"
                   for i in scaled for field in held)
    out.extend(what.format(i) + f" and dns.resolvers[{g}] with a farm, prefetch or serve_expired (followed for "
               "plain resolvers)" for i in scaled for g, r in enumerate(scenario.dns.resolvers)
               if r.caches > 1 or r.prefetch or r.serve_expired is not None)
    return out


def _unsupported_scaling_faults(deployment: build.Deployment, i: int) -> list[tuple[int, str]]:
    """The faults node scaling of balancers[i] is not followed through (sim.fast.scaling), with
    why. Followed on the active balancer, the standby not scaled: from the active's first fault
    with no end its nodes meet no request (every one fails in the engine's window, none counts
    toward a join), so what comes from then on (a dns_down, a fault of the standby) leaves them
    alone. Before that, one planned DNS change away from it (sim.fast.churn.Move: the answers
    fetched after it hold the standby), one dns_down (no fetch of our zone's records in it:
    sim.fast.scaling.held_shares), or with no fault for good one fault of it that ends; and
    faults of the standby that end before the first change."""
    scenario = deployment.scenario
    planned = "dns_change" if deployment.published.changes_dns else "address_move"  # the other: ignored
    faults = [(j, f) for j, f in enumerate(scenario.faults)
              if isinstance(f, m.BalancerDown | m.DnsDown) or f.kind == planned]
    balancer = scenario.balancers[i]
    if balancer.role != "active":
        return _unsupported_scaling_standby(scenario, faults)
    own = [(j, f) for j, f in faults if isinstance(f, m.BalancerDown) and f.target == balancer.name]
    gone = min((f.at for _, f in own if f.for_ is None), default=math.inf)
    # Until the first change (planned, or the failover's after a fault of the active) every
    # client is on the active: a fault of the standby that ends before it meets nobody.
    first = min((f.at for j, f in faults if f.kind == planned or (j, f) in own), default=math.inf)
    before = [(j, f) for j, f in faults if f.at < gone and not (
        isinstance(f, m.BalancerDown) and (j, f) not in own and f.for_ is not None and f.at + f.for_ <= first)]
    if len(before) <= 1 and all(f.kind == planned or isinstance(f, m.DnsDown) or ((j, f) in own and math.isinf(gone))
                                for j, f in before):
        return []
    return [(j, "followed before the active balancer's first fault with no end: with one planned change, "
                "one dns_down, or one fault of the active that ends and none for good") for j, _ in before]


def _unsupported_scaling_standby(scenario: m.Scenario, faults: list[tuple[int, m.Fault]]) -> list[tuple[int, str]]:
    """Node scaling of the standby: its clients are those whose answer holds it since the
    failover's change (sim.fast.scaling.held_shares, `arriving`), followed with the active not
    scaled through one fault of the active. Through a planned change the fast engine sheds
    more on the arriving standby than the model (docs/fast.md, "Balancer node scaling")."""
    active = scenario.active
    own = [f for _, f in faults if isinstance(f, m.BalancerDown) and f.target == active.name]
    if len(faults) == 1 and len(own) == 1 and active.scale_delay is None:
        return []
    return [(j, "the standby scaling is followed with the active not scaled, through one fault of the active "
                "alone") for j, _ in faults]


def _unsupported_churn(deployment: build.Deployment) -> list[str]:
    """Node churn behind a name that resolves to the nodes is followed on the active balancer:
    per held answer for stubs whose position in the answer is known (sim.fast.churn.STUBS),
    request by request for stubs that outlive the resolver's answer (floor, fixed, cap),
    stubs with a grace period and pooled connections (sim.fast.churn_requests; with no age
    limit or a stub kept forever from the run's start, up to FOLLOWED_REQUESTS_LIMIT
    requests: `_unsupported_whole_run`), address_mode next included. The one balancer fault
    followed with it is the churned active balancer's, refusing: for the rest of the run
    (every node refuses from then on), or with an end (every node refuses in a client's
    window, the churn goes on around it). A planned dns_change away from the churned active
    balancer, alone, is followed too (sim.fast.churn.Move: the answers fetched after it
    hold the new target, whose nodes are not churned), and a dns_down alone with no stub
    cache, honouring stubs, stubs kept forever or stubs followed request by request (no fetch
    succeeds during it). Together (`_churn_together`): the change and the old balancer
    switched off for good after it (with pooled connections every client followed request by
    request: sim.fast.population.migration_followed), and a dns_down with the
    change, the active's refusing fault or both. Beside these a refusing fault of the standby
    and the active's later refusing faults (`_churn_faults`), and an address_move the
    strategy ignores; its own fault blackholing, with or without an end (split by the churn's spans for clients
    followed per answer with one try, sim.fast.churn.by_answer; request by request for
    the others and every cohort with a retry, sim.fast.churn_requests.Gap.hole). No other
    combination. Sessions, a
    farm's Poisson clients and restarts are followed request by request with their node
    lists (sim.fast.lookups, sim.fast.churn_restarts), retries with no stub cache and a stub
    grace period included."""
    scenario = deployment.scenario
    what = f"publishes {deployment.published.record} records to the nodes, with"
    out = []
    faults = [(j, f) for j, f in enumerate(scenario.faults)
              if isinstance(f, m.BalancerDown | m.DnsDown) or f.kind in m.PLANNED]
    faults = _churn_faults(deployment, faults)
    for i, b in enumerate(scenario.balancers):
        if b.churn is None:
            continue
        churned = f"balancers[{i}].churn (node replacement)"
        out.extend(f"{what} {churned}{reason}" for reason in _unsupported_churn_faults(deployment, b, faults))
        if b.role != "active":
            continue
        out.extend(_unsupported_churn_clients(scenario, f"{what} {churned}"))
        out.extend(f"{what} {churned} and {reason}" for reason in _unsupported_whole_run(scenario))
    return out


def _unsupported_churn_clients(scenario: m.Scenario, prefix: str) -> list[str]:
    """The cohorts the churned active balancer's node lists are not followed for (see
    `_unsupported_churn`), each reason after `prefix`: stubs neither followed per answer
    (sim.fast.churn.STUBS) nor request by request (sim.fast.churn_requests.STUBS). Session
    clients are followed request by request whatever their stub (sim.fast.lookups: each
    answer keeps the node list of its resolver's fetch, each client's rotation over the nodes
    as the model's, a try to a node from its retirement on refused, at once through a
    blackhole too), with its grace period, pooled connections, retries and address_mode
    next; a resolver shared with Poisson clients holds the list of the Poisson path's fetch
    that covers the moment (sim.fast.churn.resolver_cycles), or fetches it then."""
    followed = churn.STUBS + churn_requests.STUBS
    return [f"{prefix} and clients[{j}].stub_cache {c.stub_cache.kind} (followed: {', '.join(followed)})"
            for j, c in enumerate(scenario.clients) if c.sessions is None and c.stub_cache.kind not in followed]


def _unsupported_whole_run(scenario: m.Scenario) -> list[str]:
    """Pooled connections with no age limit, or through a stub kept forever, are followed
    request by request over the whole run under churn (sim.fast.churn_requests.whole_run):
    refused by name past FOLLOWED_REQUESTS_LIMIT requests of such cohorts (the follower
    steps every lane a request at a time: hours of a few fast clients are millions of
    steps)."""
    sizes = scenario.cohort_sizes()
    whole = [(i, sizes[c.name] * float(c.rate or 0.0) * scenario.duration) for i, c in enumerate(scenario.clients)
             if c.keepalive > 0 and (not math.isfinite(c.max_connection_age) or c.stub_cache.kind == "forever")]
    total = sum(n for _, n in whole)
    held = {i: "stub_cache forever" if scenario.clients[i].stub_cache.kind == "forever" else "no max_connection_age"
            for i, _ in whole}
    # One client's requests are one lane's steps, each about 40 us (4 clients at 5/s for 6 h:
    # 9 s); past MAX_REQUESTS the lane would stop short.
    per_client = [f"clients[{i}].keepalive with {held[i]}: about {n / sizes[scenario.clients[i].name]:,.0f} "
                  f"requests of one client followed one by one for the whole run, past the "
                  f"{churn_requests.MAX_REQUESTS:,} the fast engine follows a client; a lower rate or a shorter "
                  "duration, or a max_connection_age" for i, n in whole
                  if sizes[scenario.clients[i].name] and n / sizes[scenario.clients[i].name] > churn_requests.MAX_REQUESTS]
    if total <= FOLLOWED_REQUESTS_LIMIT:
        return per_client
    return per_client + [f"clients[{i}].keepalive with {held[i]}: about {n:,.0f} requests followed one by one for the whole run ({total:,.0f} in all), past the "
            f"{FOLLOWED_REQUESTS_LIMIT:,} the fast engine follows; fewer clients or a shorter duration, or a "
            "max_connection_age" for i, n in whole]


def _unsupported_churn_faults(deployment: build.Deployment, b: m.Balancer,
                              faults: list[tuple[int, m.Fault]]) -> list[str]:
    """Of the faults that meet the churned balancer `b`'s clients (`_churn_faults`), what is not
    followed, each reason from ", faults[j] ..." or " and faults[j] ...". Followed on the active
    balancer: one fault alone, or the faults of one of `_churn_together`'s cases."""
    together = b.role == "active" and (len(faults) == 1 or _churn_together(deployment, faults))
    out = []
    for j, f in faults:
        own = together and isinstance(f, m.BalancerDown) and f.target == b.name
        if own and f.for_ is None:
            continue
        if own:
            # Back after `for`: every node refuses in each client's window, churn around it.
            out.extend(f", faults[{j}] (balancer_down with for) {reason}"
                       for reason in _unsupported_churn_dns(deployment, f))
            continue
        if together and (f.kind == "dns_change" or isinstance(f, m.DnsDown)):
            out.extend(f", faults[{j}] ({f.kind}) {reason}" for reason in _unsupported_churn_dns(deployment, f))
            continue
        why = "" if not isinstance(f, m.BalancerDown) or not together else \
            " (followed: the churned active balancer's own)"
        out.append(f" and faults[{j}] ({f.kind}){why}")
    return out


def _churn_together(deployment: build.Deployment, faults: list[tuple[int, m.Fault]]) -> bool:
    """Are several faults followed together under node churn of the active balancer? The
    migration: a planned dns_change away from it, then its own refusing fault for the rest
    of the run ("switch the old one off after the drain": its clients' node lists churn
    until then, sim.fast.churn.Move, and those still on them fail from then on, the window);
    or one dns_down with a dns_change, its own refusing fault, or both (every client
    is followed request by request, sim.fast.population.outage_followed, with the node
    lists, sim.fast.lookups)."""
    scenario = deployment.scenario
    if len(faults) < 2:
        return False
    kinds = sorted(faults, key=lambda x: x[1].at)
    owns = [f for _, f in faults if isinstance(f, m.BalancerDown) and f.target == scenario.active.name
            and f.mode == "refuse"]
    (_, first), (_, second) = kinds[0], kinds[-1]
    if len(faults) == 2 and first.kind == "dns_change" and second in owns and second.for_ is None \
            and second.at > first.at:
        return True
    outages = [f for _, f in faults if isinstance(f, m.DnsDown)]
    changes = [f for _, f in faults if f.kind == "dns_change"]
    return len(outages) == 1 and len(changes) <= 1 and len(owns) <= 1 and len(faults) == 1 + len(changes) + len(owns)


def _churn_faults(deployment: build.Deployment, faults: list[tuple[int, m.Fault]]) -> list[tuple[int, m.Fault]]:
    """The faults that meet the churned active balancer's clients, of `faults`. Left out: a
    planned change the strategy does not make (an address_move, which a strategy that changes
    DNS ignores in both engines, sim.scenario.models.Scenario.planned_change), and a refusing
    fault of the standby, whose nodes are not churned: it is one more span per client from
    its switch on (`_Replication._extra_windows`), after the churn's spans and requests
    followed, which end at the switch (the new target's row never retires,
    sim.fast.churn.Replacements.with_target); and the active's later refusing faults after a
    first refusing one with an end: more spans in which every node refuses (the engine's
    `Window.extra`, sim.fast.churn_requests.Gap.more), the churn going on around them."""
    scenario = deployment.scenario
    planned = scenario.planned_change(deployment.published.changes_dns)
    active = sorted((f for _, f in faults if isinstance(f, m.BalancerDown) and f.target == scenario.active.name),
                    key=lambda f: f.at)
    first = active[0] if active and active[0].mode == "refuse" and active[0].for_ is not None else None
    return [(j, f) for j, f in faults
            if not (f.kind in m.PLANNED and f is not planned)
            and not (isinstance(f, m.BalancerDown) and f.target == scenario.standby.name and f.mode == "refuse"
                     and not scenario.standby.churn)
            and not (first is not None and f in active[1:] and f.mode == "refuse")]


def _unsupported_churn_dns(deployment: build.Deployment, fault: m.DnsChange | m.DnsDown | m.BalancerDown) -> list[str]:
    """What the fast engine does not follow of node churn on the active balancer through a
    planned dns_change, a dns_down, or its own refusing fault with an end, alone or together
    (`_churn_together`; sim.fast.churn.Move, resolver_cycles). Honouring stubs are followed through all three,
    behind a CNAME too: the resolver's answer at the change or outage is drawn at its
    clients' refetch rate (sim.fast.population.resolver_rates), which the switch and the
    cut of the old node lists follow (tests/fast/test_churn.py)."""
    scenario = deployment.scenario
    if fault.kind == "dns_change":
        return []
    if isinstance(fault, m.BalancerDown):
        # Pooled connections go through a fault with an end request by request (their
        # resolvers followed from time 0 for the window, sim.fast.pooled_fault).
        return []
    # No fetch succeeds during the outage; a resolver serving expired answers holds old node
    # lists through it: not followed. Pooled connections fail from their first reopening
    # after the answer ran out (sim.fast.pooled_fault.outage_starts), followed request by
    # request around it.
    return [f"and dns.resolvers {g.name} serving expired answers" for g in scenario.dns.resolvers
            if deployment.resolver_setups[g.name].serve_expired or g.policy.kind == "serve_stale"]


def _unsupported_fields(scenario: m.Scenario) -> list[str]:
    """The scenario's fields the fast engine does not model, whatever the strategy."""
    out = _unsupported_faults(scenario)
    out.extend(resolver_mechanisms(scenario))
    blackhole = _blackholed(scenario)
    for i, c in enumerate(scenario.clients):
        if _followed_as(scenario, c):
            out.extend(f"clients[{i}]{_followed_as(scenario, c)} with {why}" for why in _unsupported_sessions(scenario, c))
        if c.stub_grace > 0:
            out.extend(f"clients[{i}].stub_grace with {why}" for why in _unsupported_grace(scenario, c))
        if c.restart is not None:
            out.extend(f"clients[{i}].restart with {why}" for why in _unsupported_restart(c))
        # Trying the answer's next address matters only when there is one that works or a
        # fallback delay to wait: a blackhole, or one address per balancer (refused below).
        if getattr(c, "address_mode", "first") == "next" and blackhole:
            out.append(f"clients[{i}].address_mode: next, with a blackholed balancer")
    return out


def _unsupported_size(scenario: m.Scenario) -> list[str]:
    """Cohorts followed request by request whose requests, together, pass what the follower
    holds in memory: refused by name with the count (run as it is, it would need tens of GB
    and hours, where the Poisson shortcuts take seconds)."""
    sizes = scenario.cohort_sizes()
    followed = [(i, sizes[c.name] * float(c.rate or 0.0) * scenario.duration) for i, c in enumerate(scenario.clients)
                if _followed_as(scenario, c)]
    total = sum(n for _, n in followed)
    if total <= FOLLOWED_REQUESTS_LIMIT:
        return []
    return [f"clients[{i}]{_followed_as(scenario, scenario.clients[i])}: about {n:,.0f} requests drawn one by one "
            f"({total:,.0f} in all), past the {FOLLOWED_REQUESTS_LIMIT:,} the fast engine follows (about 150 bytes "
            "each); fewer clients or a shorter duration, or without what makes them followed"
            for i, n in followed]


def _followed_as(scenario: m.Scenario, c: m.Cohort) -> str:
    """How a cohort whose requests are drawn one by one and followed (sim.fast.lookups) is
    named in a refusal, after `clients[i]`: its `sessions`, or its Poisson requests on a
    resolver farm's groups (sim.fast.population.on_farm); "" for a cohort the Poisson
    shortcuts take."""
    if c.sessions is not None:
        return ".sessions"
    why = "a resolver farm, a dns_down, or a planned change with pooled connections under churn"
    return f" (Poisson requests followed one by one, for {why})" if on_farm(scenario, c) else ""


def _unsupported_sessions(scenario: m.Scenario, c: m.Cohort) -> list[str]:
    """Session clients are followed request by request (sim.fast.lookups) through balancer
    faults (each try to the active or the standby inside one of its faults fails, after the
    client's timeout if blackholed), a failover or a planned change that changes DNS or
    moves the address, a dns_down, stubs of any kind (with a grace period), pooled
    connections, restarts and retries. Not followed: what the follower has no state for (a
    dns_down on a resolver shared with Poisson clients, serve-expired's one stale answer and
    prefetch on the cohort's resolvers, unless every client of those is followed too: a
    farm's group and the groups followed with it, sim.fast.population.followed_groups);
    one address per balancer is refused with the
    strategy, a blackhole of the standby with the faults. Traffic faults are applied to the
    drawn requests (sim.fast.sessions.requests)."""
    out = []
    for i, f in enumerate(scenario.faults):
        if isinstance(f, m.DnsDown) and _shares_resolvers(scenario, c):
            out.append(f"a {f.kind} (faults[{i}]), on resolvers shared with clients not followed (use the model)")
    whole = followed_groups(scenario)
    for i, g in enumerate(scenario.dns.resolvers):
        if c.resolver_group not in (None, g.name) or g.name in whole:
            continue  # a group whose clients are all followed: its caches are followed too
        if g.prefetch:
            out.append(f"dns.resolvers[{i}].prefetch on its resolvers (use the model)")
        if g.serve_expired is not None and g.serve_expired.client_timeout == 0:
            out.append(f"dns.resolvers[{i}].serve_expired.client_timeout: 0s on its resolvers (use the model)")
    return out


def _shares_resolvers(scenario: m.Scenario, c: m.Cohort) -> bool:
    """Can a followed cohort's resolver have clients that are not followed? Such a resolver is
    not followed cache by cache: it turns at one drawn moment (sim.fast.lookups), with no
    expiry of its own for a dns_down to meet."""
    groups = groups_of(scenario, c)
    return any(groups & groups_of(scenario, o) for o in scenario.clients if not _followed_as(scenario, o))


def _unsupported_grace(scenario: m.Scenario, c: m.Cohort) -> list[str]:
    """A stub grace period is followed where a client's switch is (sim.fast.dns), and request
    by request for a followed cohort (sim.fast.lookups, a failed refresh leaving the answer
    in grace); a Poisson cohort's is not where a failed lookup leaves the old answer in
    grace (a dns_down); one address per balancer (sim.fast.multia, its own stub refreshes)
    is refused with the strategy."""
    if _followed_as(scenario, c):
        return []
    return [f"a dns_down (faults[{i}]; use the model)" for i, f in enumerate(scenario.faults) if isinstance(f, m.DnsDown)]


def _unsupported_restart(c: m.Cohort) -> list[str]:
    """What of a restarting cohort the fast engine does not follow: restarts end the
    answer of a stub followed refresh by refresh (forever, floor, fixed, extend;
    sim.fast.dns), and a stub that never outlives its resolver's answer is not changed
    by them; a restart closes pooled connections (sim.fast.population.connection_rate,
    Run._connection_resets). A grace period is not followed."""
    out = []
    if c.stub_grace > 0:
        out.append("stub_grace (a restart empties the stub, leaving nothing in grace; use the model)")
    return out


def resolver_mechanisms(scenario: m.Scenario) -> list[str]:
    """A resolver group's prefetch and serve-expired where the fast engine does not follow
    them, by field path. serve-expired with a client timeout only acts when the
    authoritative servers do not answer (with a dns_down every client is followed,
    sim.fast.population.outage_followed); with timeout 0 it is
    followed for clients whose stubs never outlive the resolver's answer (sim.fast.dns).
    A farm's group, and the groups followed with it (sim.fast.population.followed_groups),
    have every client followed request by request and every cache with them, prefetch and
    serve-expired included (sim.fast.lookups): whatever their stubs, through a dns_down too."""
    out = []
    dns_down = [i for i, f in enumerate(scenario.faults) if isinstance(f, m.DnsDown)]
    whole = followed_groups(scenario)
    for i, g in enumerate(scenario.dns.resolvers):
        if g.prefetch:
            out.extend(_prefetch_problems(scenario, i, g, dns_down, g.name in whole))
        if g.serve_expired is None:
            continue
        if g.serve_expired.client_timeout == 0 and g.name not in whole:
            for j, c in enumerate(scenario.clients):
                on_group = c.resolver_group in (None, g.name)
                if on_group and (c.stub_cache.kind not in WITHIN_TTL + ("forever",) or c.stub_grace > 0):
                    out.append(f"dns.resolvers[{i}].serve_expired.client_timeout: 0s, with clients[{j}].stub_cache "
                               f"{c.stub_cache.kind} on that group (a stub that may outlive the resolver's answer)")
    return out


def _prefetch_problems(scenario: m.Scenario, i: int, g: m.ResolverGroup, dns_down: list[int],
                       followed: bool) -> list[str]:
    """Prefetch is followed for clients without a stub cache (sim.fast.dns.resolver_expiry): a
    stub that keeps answers could hold the old one past the resolver's refresh, to its expiry.
    On a group `followed` request by request (a farm's, sim.fast.lookups) with any stub and
    with serve-expired, as the model's caches do."""
    out: list[str] = []
    if followed:
        return out
    if g.serve_expired is not None and g.serve_expired.client_timeout == 0:
        out.append(f"dns.resolvers[{i}].prefetch together with serve_expired.client_timeout: 0s")
    for j, c in enumerate(scenario.clients):
        if c.resolver_group in (None, g.name) and (c.stub_cache.kind not in ("none", "forever") or c.stub_grace > 0):
            out.append(f"dns.resolvers[{i}].prefetch, with clients[{j}].stub_cache {c.stub_cache.kind} on that group "
                       "(a stub that keeps the old answer past the resolver's refresh)")
    return out


def _blackholed(scenario: m.Scenario) -> bool:
    return any(isinstance(f, m.BalancerDown) and f.mode == "blackhole" for f in scenario.faults)


def _unsupported_faults(scenario: m.Scenario) -> list[str]:
    out = _unsupported_dns_down(scenario) + _unsupported_balancer_faults(scenario)
    spans = []
    for i, f in enumerate(scenario.faults):
        if isinstance(f, m.Traffic):
            spans.append((f.at, f.at + f.for_, i, f.factor))
    # Overlapping traffic faults add up in both engines (a surge adds its own arrivals, a
    # drop thins the base ones), except two drops: the model thins with one factor at a time.
    spans.sort()
    for k, (start, _, i, factor) in enumerate(spans):
        if factor < 1 and any(start < stop and other < 1 for _, stop, _, other in spans[:k]):
            out.append(f"faults[{i}]: a traffic drop that overlaps another traffic drop")
    modes = {f.mode for f in scenario.faults if isinstance(f, m.InstanceDown)}
    if scenario.backends.failures is not None:
        modes.add("refuse")  # an instance that fails by itself refuses
    if len(modes) > 1:
        out.append("faults: instance deaths of both modes (refuse and blackhole)")
    return out


def balancer_faults(scenario: m.Scenario) -> list[tuple[int, m.BalancerDown]]:
    return [(i, f) for i, f in enumerate(scenario.faults) if isinstance(f, m.BalancerDown)]


def _unsupported_balancer_faults(scenario: m.Scenario) -> list[str]:
    """Several balancer faults run as one window per client for the active's first fault and
    one more span per other fault (`_extra_windows`): they must refuse (no timeouts to wait
    out across spans) and not overlap on one balancer."""
    faults = balancer_faults(scenario)
    # The engine waits out a blackhole's timeouts in the active's window only.
    out = [f"faults[{i}]: a blackholed balancer_down of {f.target}, not the active balancer"
           for i, f in faults if f.mode != "refuse" and f.target != scenario.active.name]
    if len(faults) < 2:
        return out
    out += [f"faults[{i}]: a blackholed balancer_down among several balancer faults"
            for i, f in faults if f.mode != "refuse" and f.target == scenario.active.name]
    for name in {f.target for _, f in faults}:
        mine = sorted((f.at, math.inf if f.for_ is None else f.at + f.for_, f.mode, i)
                      for i, f in faults if f.target == name)
        # Overlapping faults of one mode are one (`merged_faults`); of two modes the latest's holds
        # while both are on (sim.model.control), a switch of mode this engine does not follow.
        out.extend(f"faults[{i}]: overlaps an earlier fault of {name} in the other mode"
                   for (_, stop, was, _), (start, _, mode, i) in zip(mine, mine[1:], strict=False)
                   if start < stop and mode != was)
    return out


def merged_faults(scenario: m.Scenario) -> m.Scenario:
    """`scenario` with each set of overlapping balancer faults of one balancer and one mode as
    the one fault that covers them: the model reads them so (sim.model.control stacks them,
    the balancer down until the last ends), request for request (tests/model/test_mechanisms.py)."""
    faults = list(scenario.faults)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(faults):
        if isinstance(f, m.BalancerDown):
            groups.setdefault((f.target, f.mode), []).append(i)
    drop = set()
    for members in groups.values():
        members.sort(key=lambda i: faults[i].at)
        keep, end = members[0], _fault_end(faults[members[0]])
        for i in members[1:]:
            if faults[i].at < end:
                end = max(end, _fault_end(faults[i]))
                faults[keep] = faults[keep].model_copy(
                    update={"for_": None if math.isinf(end) else end - faults[keep].at})
                drop.add(i)
            else:
                keep, end = i, _fault_end(faults[i])
    if not drop:
        return scenario
    return scenario.model_copy(update={"faults": [f for i, f in enumerate(faults) if i not in drop]})


def _fault_end(fault: m.BalancerDown) -> float:
    return math.inf if fault.for_ is None else fault.at + fault.for_


def _unsupported_dns_down(scenario: m.Scenario) -> list[str]:
    """A `dns_down` alone is one span per client: from its first resolution after its
    resolver's answer expired until the outage ends (`_dns_window`); clients followed request
    by request meet it in their lookups (sim.fast.lookups). With what that span cannot hold
    (a balancer fault, a second outage, resolvers serving stale or expired answers or
    prefetching, pooled connections) every client is followed
    (sim.fast.population.outage_followed). Outages that overlap are their union in both
    engines (sessions.Plan.servers_down, sim.model.control). Pooled connections beside node
    churn are not followed there (sim.fast.churn_requests, sim.fast.pooled_fault), and not
    with restarts, which close them where no follower sees it."""
    if not any(isinstance(f, m.DnsDown) for f in scenario.faults) or outage_followed(scenario):
        return []
    return [f"clients[{i}].keepalive and restart, with a dns_down and balancer churn"
            for i, c in enumerate(scenario.clients)
            if c.keepalive > 0 and c.restart is not None and not _followed_as(scenario, c)]


def _unsupported_planned(deployment: build.Deployment) -> list[str]:
    """A planned change runs as a failover's switch does, without the dead balancer: the
    clients' caches let go of the old record (a DNS change), or the address moves and pooled
    connections are reset once; pooled connections through a DNS change are followed one
    by one (sim.fast.pooled). Not modelled: one address per balancer (each client's
    rotation decides). With a dns_down every client is followed request by request
    (sim.fast.population.outage_followed)."""
    scenario, published = deployment.scenario, deployment.published
    planned = scenario.planned_change(published.changes_dns)
    if planned is None:
        return []
    what = f"with a planned {planned.kind}"
    out = []
    if published.per_balancer:
        out.append(f"publishes one address per balancer, {what}")
    return out


def _unsupported_plan(deployment: build.Deployment, blackhole: bool) -> list[str]:
    """What a plan publishes or how it detects that the fast engine has no mechanism for.

    It models a failover that either changes DNS records (clients switch as their caches
    let go) or moves static addresses (everyone at once); one address per balancer is
    followed request by request (sim.fast.multia), two addresses, the failed one deleted."""
    published, detection = deployment.published, deployment.plan.detection
    out = []
    if detection not in DETECTIONS:
        out.append(f"is detected by {detection!r} (known: {', '.join(DETECTIONS)})")
    if published.per_balancer:
        if not published.changes_dns:
            out.append("publishes one address per balancer and moves them")
        elif published.addresses != 2:
            out.append(f"publishes one address per balancer, {published.addresses} of them (the engine follows two)")
        elif blackhole:
            out.append("publishes one address per balancer, with a blackholed balancer (fallback delays)")
    return out
