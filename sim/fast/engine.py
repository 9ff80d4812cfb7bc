"""One replication of one strategy, per client with numpy instead of per request.

Outline (docs/fast.md has the reasoning and what is approximated):
1. the control plane as in the model: fault, detection, the plan's effective time;
2. per client, the moment its requests reach a live balancer again: the
   standby after its caches let go of the old record (cname_repoint), the
   address's move (eip_remap), or the end of the fault;
3. per client, the requests that fail are those it issues in between:
   a Poisson number, their times drawn only for those; its recovery is its
   first request after the window (plus one connection reset for pooled
   connections that outlive an address move);
4. per second, successful requests as Poisson counts of the remaining
   intensity, balancer capacity by formula (sim.fast.load), the backend fleet
   (dead instances, full queues, waiting, autoscaling: sim.fast.fleet) whose
   failures are drawn per client like step 3's, and authoritative DNS queries
   from resolver renewal processes (sim.fast.dns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.fast import fleet, load, multia
from sim.fast.control import DETECTIONS, ControlPlane, control_plane
from sim.fast.dns import query_counts, switch_times
from sim.fast.intensity import Intensity
from sim.fast.population import Population, population, resolver_query_rate
from sim.policy.attempts import CONNECT_TIMEOUT
from sim.policy.failover import FailoverPlan
from sim.replication import OUTCOMES, ReplicationOutput, streams
from sim.scenario import build
from sim.scenario import models as m

Strategy = str | type | FailoverPlan | build.Deployment


def unsupported(scenario: m.Scenario, strategies: Sequence[Strategy] | None = None) -> list[str]:
    """What this scenario (run with `strategies`, default all of its own) uses that the fast
    engine does not model: scenario fields by path, strategies by the mechanism, naming the plan.
    A strategy is a name, a plan class, a plan, or a Deployment of this scenario."""
    out = _unsupported_fields(scenario)
    for strategy in scenario.strategies if strategies is None else strategies:
        try:
            deployment = build.compile(scenario, strategy)
        except ValueError as exc:
            out.append(f"strategies: {exc}")
            continue
        out.extend(f"strategies: {deployment.strategy} {reason}" for reason in _unsupported_plan(deployment, _blackholed(scenario)))
    return out


def _unsupported_fields(scenario: m.Scenario) -> list[str]:
    """The scenario's fields the fast engine does not model, whatever the strategy."""
    out = []
    for i, b in enumerate(scenario.balancers):
        if b.churn is not None:
            out.append(f"balancers[{i}].churn (node replacement)")
        if b.scale_delay is not None:
            out.append(f"balancers[{i}].scale_delay (node scaling)")
    out.extend(_unsupported_faults(scenario))
    blackhole = _blackholed(scenario)
    for i, c in enumerate(scenario.clients):
        # Trying the answer's next address matters only when there is one that works or a
        # fallback delay to wait: a blackhole, or one address per balancer (refused below).
        if getattr(c, "address_mode", "first") == "next" and blackhole:
            out.append(f"clients[{i}].address_mode: next, with a blackholed balancer")
    return out


def _blackholed(scenario: m.Scenario) -> bool:
    return any(isinstance(f, m.BalancerDown) and f.mode == "blackhole" for f in scenario.faults)


def _unsupported_faults(scenario: m.Scenario) -> list[str]:
    out = []
    down = 0
    spans = []
    for i, f in enumerate(scenario.faults):
        if isinstance(f, m.DnsDown):
            out.append(f"faults[{i}] of kind {f.kind}")
        elif isinstance(f, m.BalancerDown):
            if f.target != scenario.active.name:
                out.append(f"faults[{i}]: a fault of the standby balancer")
            down += 1
            if down > 1:
                out.append(f"faults[{i}]: a second balancer_down")
        elif isinstance(f, m.Traffic):
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


def _unsupported_plan(deployment: build.Deployment, blackhole: bool) -> list[str]:
    """What a plan publishes or how it detects that the fast engine has no mechanism for.

    It models a failover that either changes DNS records (clients switch as their caches
    let go) or moves static addresses (everyone at once); one address per balancer is
    followed request by request (sim.fast.multia), two addresses, the failed one deleted."""
    published, detection = deployment.published, deployment.plan.detection
    out = []
    if detection not in DETECTIONS:
        out.append(f"is detected by {detection!r} (known: {', '.join(DETECTIONS)})")
    if published.changes_dns == published.moves_address:
        out.append("neither changes DNS nor moves an address" if not published.changes_dns
                   else "both changes DNS and moves an address")
    if published.per_balancer:
        if not published.changes_dns:
            out.append("publishes one address per balancer and moves them")
        elif published.addresses != 2:
            out.append(f"publishes one address per balancer, {published.addresses} of them (two balancers)")
        elif blackhole:
            out.append("publishes one address per balancer, with a blackholed balancer (fallback delays)")
    return out


def simulate(scenario: m.Scenario, strategy: Strategy, seed: np.random.SeedSequence,
             replication: int = 0) -> ReplicationOutput:
    """One replication of `strategy` (a name, a plan class, a plan, or a Deployment of `scenario`)."""
    deployment = build.compile(scenario, strategy)
    reasons = unsupported(scenario, [deployment])
    if reasons:
        raise ValueError("the fast engine does not model: " + "; ".join(reasons))
    return _Replication(deployment, streams(seed)).run()


class _Replication:
    def __init__(self, deployment: build.Deployment, rng: dict[str, np.random.Generator]) -> None:
        scenario = deployment.scenario
        self.sc = scenario
        self.published = deployment.published
        self.rng = rng
        self.end = scenario.end
        self.seconds = int(math.ceil(self.end))
        self.shape = Intensity(scenario)
        self.pop: Population = population(deployment, rng["clients"])
        self.ctl: ControlPlane = control_plane(deployment, rng["control"])
        ttl = self.published.answer_ttl
        self.q = resolver_query_rate(self.pop, ttl, rng["priming"])
        self.q_outage = resolver_query_rate(self.pop, ttl, rng["priming"], pooled=False)
        cohorts = self.pop.cohorts
        self.attempts = np.array([c.attempts for c in cohorts])[self.pop.cohort]
        self.timeout = np.array([c.timeout for c in cohorts])[self.pop.cohort]

    def run(self) -> ReplicationOutput:
        sc, ctl, pop, shape = self.sc, self.ctl, self.pop, self.shape
        n, rate = pop.size, pop.rate
        fault = ctl.fault_at if ctl.fault_at < self.end else math.inf
        # Per client: until when its requests go to the dead balancer (`until`), and
        # the request that first reaches a live one when the failover brings it (`reach`).
        outage = (fault, min(ctl.fault_end, self.end))
        hits = np.zeros(n, dtype=np.int64)
        if not math.isfinite(fault):
            reach = until = np.full(n, np.inf)
        elif self.published.changes_dns:
            reach, until, hits, mass = switch_times(
                sc, pop, shape, ctl.effective_at, self.q_outage, outage, self.rng["dns"],
                self.published.record_ttl, self.published.chain_ttl,
            )
        else:
            until = np.full(n, ctl.effective_at)
            reach = np.full(n, np.inf)  # drawn below, after the window
        start = np.full(n, fault if math.isfinite(fault) else self.end)
        back = np.maximum(np.minimum(np.minimum(until, ctl.fault_end), self.end), start)
        if not self.published.changes_dns or not math.isfinite(fault):
            mass = shape.measure(start, back)

        # Requests issued while the client's path is dead: how many, and when.
        arrivals = self.rng["arrivals"]
        failures = hits + arrivals.poisson(rate * mass) if math.isfinite(fault) else np.zeros(n, np.int64)
        owner = np.repeat(np.arange(n), failures)
        issued = shape.uniform_between(start[owner], back[owner], arrivals.random(len(owner)))
        multi_recovered = None
        if self.published.per_balancer and math.isfinite(fault):
            owner, issued, multi_recovered = multia.follow(
                pop, shape, fault, back, self.published.answer_ttl, self.published.rotate, arrivals)
            failures = np.bincount(owner, minlength=n)
            self.outage_end = fault  # clients re-resolve once after a failure, not all outage long
            back = start.copy()  # no window: the failures above are all there is
        waits = ctl.mode == "blackhole"
        self.rescued_delay = np.empty(0)
        self.rescued_at = np.empty(0)
        self.rescued_owner = np.empty(0, dtype=np.int64)
        if waits:
            # A blackholed attempt is retried after the client's timeout; a retry
            # that starts once the path is back succeeds, late (as in the model).
            spare = (self.attempts[owner] - 1) * self.timeout[owner]
            saved = issued >= back[owner] - spare
            tries = np.ceil((back[owner][saved] - issued[saved]) / self.timeout[owner][saved])
            self.rescued_delay = np.maximum(tries, 1.0) * self.timeout[owner][saved]
            self.rescued_at = issued[saved]
            self.rescued_owner = owner[saved]
            failures = failures - np.bincount(owner[saved], minlength=n)
            owner, issued = owner[~saved], issued[~saved]
        # The backend fleet per second (sim.fast.fleet): dead instances still called healthy,
        # full queues, autoscaling; its load is what gets past the balancers.
        self.fleet = self._fleet(fault, start, back)
        share, first_dead = self.fleet.share, self.fleet.first_dead
        self.backend_outcome, self.backend_mode = self.fleet.outcome, self.fleet.mode
        # Successful requests that first waited out a blackholed instance's connect timeout.
        self.detour = np.where(share < 1, (first_dead - share) / np.maximum(1 - share, 1e-12), 0.0) \
            if self.backend_mode == "blackhole" else np.zeros(self.seconds)
        # Per client: the share of its requests that fail at the backends in each second
        # (its own attempts retry a refused or shed one), and the part of those shed.
        classes, self.attempt_class = np.unique(self.attempts, return_inverse=True)
        finals = [self.fleet.final(int(a)) for a in classes]
        self.backend_fail = np.array([f for f, _ in finals])
        backend_shed = np.array([sh for _, sh in finals])
        self.backend_issued = np.empty(0)
        self.backend_shed = np.zeros(self.seconds, dtype=np.int64)
        first_issue = np.full(n, np.inf)
        np.minimum.at(first_issue, owner, issued)
        cost = self.attempts * self.timeout if waits else np.zeros(n)
        first_fail = first_issue + cost
        if self.backend_fail.any() or self.fleet.kills:
            whos, whens, ends = self._kill_losses()
            for c in range(len(classes)):
                weight = self.backend_fail[c] * shape.g[: self.seconds]
                if not weight.sum() > 0:
                    continue
                members = np.flatnonzero(self.attempt_class == c)
                lost_c = arrivals.poisson(rate[members] * weight.sum())
                who_c = np.repeat(members, lost_c)
                second = arrivals.choice(self.seconds, size=len(who_c), p=weight / weight.sum())
                # Which of them the fleet shed (the last attempt found a full queue).
                shed = arrivals.random(len(who_c)) * self.backend_fail[c][second] < backend_shed[c][second]
                self.backend_shed += np.bincount(second[shed], minlength=self.seconds)[: self.seconds]
                whos.append(who_c)
                whens.append(second + arrivals.random(len(who_c)))
                ends.append(whens[-1])
            who = np.concatenate(whos) if whos else np.empty(0, dtype=np.int64)
            when = np.concatenate(whens) if whens else np.empty(0)
            end = np.concatenate(ends) if ends else np.empty(0)  # when each is known to fail
            # As in the model, a client's failures count from the first fault on (a fleet
            # overloaded from the start fails requests before it); the timeline has them all.
            counted = end >= min((f.at for f in sc.faults), default=math.inf)
            lost = np.bincount(who[counted], minlength=n)
            self.backend_issued = when
            failures = failures + lost
            # A blackholed instance costs the balancer's connect timeout per try (504),
            # or the client's own timeout if that is shorter (as the model).
            spent = np.zeros(n)
            if self.backend_mode == "blackhole":
                spent = np.minimum(self.timeout, CONNECT_TIMEOUT * (sc.backends.retries + 1))
            first_backend = np.full(n, np.inf)
            np.minimum.at(first_backend, who[counted], end[counted])
            first_fail = np.minimum(first_fail, first_backend + spent)
            first_issue = np.minimum(first_issue, first_backend)
            owner, issued = np.concatenate([owner, who]), np.concatenate([issued, when])
        failed = failures.copy()

        # The first successful request after the first failure: the client's own
        # switch request (cname_repoint) when it comes after, otherwise the next
        # request once both the path is back and the failure is known.
        window_end = back if math.isfinite(fault) else np.full(n, -np.inf)  # no balancer fault: no window
        after = np.maximum(window_end, np.where(np.isfinite(first_fail), first_fail, back))
        next_req = shape.next_after(after, rate, arrivals)
        if self.published.changes_dns:
            # switch_times drew `reach` = inf for a client that sends nothing between its
            # switch and the end of the run; drawing its next request again here would hand
            # it a recovery it never has (never recovered: 0 against the model's 0.5 a run).
            silent = ~np.isfinite(reach) & (until < min(ctl.fault_end, self.end))
            next_req = np.where(silent, np.inf, next_req)
        by_switch = (until < ctl.fault_end) & np.isfinite(reach) & (reach >= after)
        recovered_issue = np.where(by_switch, reach, next_req)
        if multi_recovered is not None:
            recovered_issue = multi_recovered
        if self.backend_fail.any():
            # A request that fails at the backends (a dead instance, a full queue) fails too.
            pending = np.isfinite(recovered_issue)
            for _ in range(1000):
                sec = np.clip(recovered_issue, 0, self.seconds - 1).astype(np.int64)
                chance = self.backend_fail[self.attempt_class, sec]
                pending &= np.isfinite(recovered_issue) & (arrivals.random(n) < chance)
                if not pending.any():
                    break
                recovered_issue[pending] = shape.next_after(recovered_issue[pending], rate[pending], arrivals)
        if len(self.rescued_delay):
            # A retried request that got through after the first failure is a recovery too
            # (its finish time stands in for its issue time: latency is added below).
            done = self.rescued_at + self.rescued_delay
            late = done > first_fail[self.rescued_owner]
            earliest = np.full(n, np.inf)
            np.minimum.at(earliest, self.rescued_owner[late], done[late])
            recovered_issue = np.minimum(recovered_issue, earliest)
        reach = np.where(np.isfinite(reach), reach, next_req)

        resets = self._connection_resets(fault, failures, arrivals)
        reset_fail = resets & (self.attempts == 1)
        reset_at = np.full(n, np.inf)
        if reset_fail.any():
            reset_at[reset_fail] = self._reset_time[reset_fail]
            failed = failed + reset_fail
            only_reset = reset_fail & ~np.isfinite(first_fail)
            first_fail = np.where(only_reset, reset_at, first_fail)
            recovered_issue = np.where(only_reset, shape.next_after(reset_at, rate, arrivals), recovered_issue)

        clients = self._clients(first_fail, recovered_issue, failed)
        # As in the model, a request is counted when it ends: one still waiting out its
        # timeouts when the run ends is not counted at all.
        ends_in_run = issued + cost[owner] <= self.end
        timeline, ok = self._timeline(fault, reach, back, issued, ends_in_run, reset_at, waits)
        return ReplicationOutput(self._metrics(timeline, clients, ok), clients, timeline)

    # -- the backend fleet ---------------------------------------------------------------

    def _fleet(self, fault: float, start: np.ndarray, back: np.ndarray) -> fleet.Fleet:
        """The fleet's per-second state, given the requests that get past the balancers
        (every client's intensity, less its dead-balancer window), per client attempts."""
        pop, g = self.pop, self.shape.g[: self.seconds]
        load: dict[int, np.ndarray] = {}
        for a in np.unique(self.attempts):
            mask = self.attempts == a
            alive = pop.rate[mask].sum() * g
            if math.isfinite(fault):
                alive = alive - _window_mass(pop.rate[mask], start[mask], back[mask], self.seconds) * g
            load[int(a)] = np.maximum(alive, 0.0)
        out = fleet.simulate(self.sc, self.seconds, load, self.rng["faults"], self.rng["control"])
        # The share of the requests that get past the balancers that then fail at the backends.
        total = sum(load.values())
        lost = sum(v * out.final(a)[0] for a, v in load.items())
        self.backend_mean = np.divide(lost, total, out=np.zeros(self.seconds), where=total > 0)
        return out

    def _kill_losses(self) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Requests a dying instance held (in service or waiting): lost with it, as in the
        model (a 502, or the client's timeout for a blackhole); the client's own retry, if it
        has one left, is an attempt like any other (it fails with the second's q)."""
        pop, arrivals, fl = self.pop, self.rng["arrivals"], self.fleet
        whos, whens, ends = [], [], []
        holding = float(self.sc.backends.service_time.mean) + self.sc.rtt
        q = 1.0 - (1.0 - fl.share) * (1.0 - fl.block)
        for at, held in fl.kills:
            k = int(arrivals.poisson(held))
            if k == 0:
                continue
            who = arrivals.choice(pop.size, size=k, p=pop.rate / pop.rate.sum())
            s = min(int(at), self.seconds - 1)
            final = arrivals.random(k) < q[s] ** (self.attempts[who] - 1)
            whos.append(who[final])
            whens.append(np.maximum(at - arrivals.exponential(holding, int(final.sum())), 0.0))
            ends.append(np.full(int(final.sum()), at))
        return whos, whens, ends

    # -- connection resets at an address move -----------------------------------------

    def _connection_resets(self, fault: float, failures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Clients whose first request after the static address moved goes down a pooled
        connection opened before the move: it is reset once (as in the model)."""
        n = self.pop.size
        self._reset_time = np.full(n, np.inf)
        moved = self.ctl.effective_at
        if not self.published.moves_address or not math.isfinite(fault) or not moved < self.end:
            return np.zeros(n, dtype=bool)
        out = np.zeros(n, dtype=bool)
        for cohort in self.pop.cohorts:
            idx = cohort.members
            if len(idx) == 0 or cohort.reuse.keepalive <= 0:
                continue
            first = self.shape.next_after(np.full(len(idx), moved), cohort.rate, rng)
            if self.ctl.fault_end >= moved:
                # Any request during the outage failed and closed the connection.
                last = self.shape.last_before(np.full(len(idx), fault), cohort.rate, rng)
                open_ = failures[idx] == 0
            else:
                last = self.shape.last_before(np.full(len(idx), moved), cohort.rate, rng)
                open_ = ~((last >= fault) & (last < self.ctl.fault_end))
            age = cohort.reuse.max_age
            opened = last - (rng.random(len(idx)) * age if math.isfinite(age) else np.inf)
            alive = open_ & (first - last < cohort.reuse.keepalive) & (first - opened < age) & (first < self.end)
            out[idx] = alive
            self._reset_time[idx] = np.where(alive, first, np.inf)
        return out

    # -- tables ----------------------------------------------------------------------

    def _clients(self, first_fail: np.ndarray, recovered_issue: np.ndarray, failed: np.ndarray) -> pd.DataFrame:
        sc, pop = self.sc, self.pop
        affected = np.flatnonzero(np.isfinite(first_fail) & (first_fail <= self.end) & (first_fail >= sc.warmup))
        fault_times = np.array(sorted(f.at for f in sc.faults))
        ff = first_fail[affected]
        anchor = fault_times[np.maximum(np.searchsorted(fault_times, ff, side="right") - 1, 0)] if len(fault_times) else ff
        done = recovered_issue[affected]
        service = np.asarray(sc.backends.service_time.sample(self.rng["service"], len(affected)), dtype=float)
        finished = done + sc.rtt + service
        recovery = np.where(finished <= self.end, finished - anchor, np.nan)
        return pd.DataFrame(
            {
                "client": affected.astype(np.int64),
                "cohort": [pop.cohorts[i].name for i in pop.cohort[affected]],
                "resolver_group": [pop.group_names[g] for g in pop.resolver_group[pop.resolver[affected]]],
                "recovery_s": recovery,
                "failed": failed[affected].astype(np.int64),
                "fault_at": anchor.astype(float),
            }
        )

    def _timeline(self, fault, reach, back, issued, ends_in_run, reset_at, waits):  # type: ignore[no-untyped-def]
        shape, pop, rng = self.shape, self.pop, self.rng["traffic"]
        seconds = self.seconds
        g = shape.g[:seconds]
        rate = pop.rate
        total = rate.sum() * g
        dead = _window_mass(rate, np.full(pop.size, fault), back, seconds) * g if math.isfinite(fault) else 0.0
        backend = np.isin(issued, self.backend_issued) if len(self.backend_issued) else np.zeros(len(issued), bool)
        lost_to_backends = np.bincount(np.minimum(issued[backend], seconds - 1).astype(np.int64), minlength=seconds)[:seconds]
        issued, ends_in_run = issued[~backend], ends_in_run[~backend]
        second = np.minimum(issued, seconds - 1).astype(np.int64)
        recorded = np.bincount(second[ends_in_run], minlength=seconds)[:seconds]
        reset = np.isfinite(reset_at)
        refused_resets = np.bincount(reset_at[reset].astype(np.int64), minlength=seconds)[:seconds]
        # Successful requests: a Poisson count of the intensity left once every client's
        # dead window is taken out (in expectation the failures drawn per client: a
        # stub refresh counted one by one stands for the empty gap before it).
        # Subtracting the drawn failures instead adds noise where everyone fails.
        if self.published.per_balancer:
            dead = dead + np.bincount(second, minlength=seconds)[:seconds]  # drawn one by one (sim.fast.multia)
        ok = rng.poisson(np.maximum((total - dead) * (1.0 - self.backend_mean) - refused_resets, 0.0))
        if len(self.rescued_at):
            # Requests of the dead window that a retry got through: successes, by issue second.
            ok = ok + np.bincount(np.minimum(self.rescued_at, seconds - 1).astype(np.int64), minlength=seconds)[:seconds]
        shed = self._shed(ok, fault, reach, rate, g, total - dead)
        ok = ok - shed
        counts = {name: np.zeros(seconds, dtype=np.int64) for name in OUTCOMES}
        counts["ok"] = ok
        counts["timeout" if waits else "refused"] += recorded
        counts[self.backend_outcome] += lost_to_backends - self.backend_shed
        counts["refused"] += refused_resets
        counts["shed"] = shed + self.backend_shed
        timeline = pd.DataFrame({"t": np.arange(seconds, dtype=np.int64)})
        timeline["requests"] = sum(counts.values())
        for name in OUTCOMES:
            timeline[name] = counts[name]
        timeline["on_old_target"] = self._on_old_target(fault, reach)
        # Queries run at the outage rate while most clients' paths are dead.
        busy = (fault, getattr(self, "outage_end", float(np.median(back)))) if math.isfinite(fault) else (math.inf, math.inf)
        # The record our servers answer (an alias carries the balancer's TTL).
        dns = query_counts(pop, self.published.record_ttl, self.q, self.q_outage, busy, shape, seconds, self.rng["dns"])
        timeline["dns_queries"] = dns
        return timeline, ok

    def _shed(self, ok, fault, reach, rate, g, live):  # type: ignore[no-untyped-def]
        """Requests beyond a balancer endpoint's capacity in their second (sim.fast.load.shed)."""
        sc, rng, seconds = self.sc, self.rng["balancing"], self.seconds
        t = np.arange(seconds, dtype=float)
        if not self.published.changes_dns:
            standby = np.clip(t + 1 - self.ctl.effective_at, 0.0, 1.0)
        else:
            order = np.sort(reach)
            weights = np.cumsum(rate[np.argsort(reach)])
            k = np.searchsorted(order, t + 1.0, side="right")
            switched = np.where(k > 0, weights[np.maximum(k - 1, 0)], 0.0) * g
            standby = np.divide(switched, live, out=np.zeros(seconds), where=live > 0)
        standby = np.where((t >= fault) & (t < self.ctl.fault_end), 1.0, np.clip(standby, 0.0, 1.0))
        on_standby = rng.binomial(ok, standby)
        out = np.zeros(seconds, dtype=np.int64)
        for spec, counts in ((sc.active, ok - on_standby), (sc.standby, on_standby)):
            if not self.published.changes_dns:
                out += load.shed(counts, 1, spec.nodes * spec.capacity, rng)
            else:
                out += load.shed(counts, spec.nodes, spec.capacity, rng)
        return out

    def _on_old_target(self, fault: float, reach: np.ndarray) -> np.ndarray:
        seconds = self.seconds
        t = np.arange(seconds, dtype=float)
        out = np.zeros(seconds, dtype=np.int64)
        if not math.isfinite(fault):
            return out
        down = (t >= fault) & (t < self.ctl.fault_end)
        if not self.published.changes_dns:
            out[down & (t < self.ctl.effective_at)] = self.pop.size
        else:
            order = np.sort(reach)
            out[down] = len(order) - np.searchsorted(order, t[down], side="right")
        return out

    def _metrics(self, timeline: pd.DataFrame, clients: pd.DataFrame, ok: np.ndarray) -> dict[str, float]:
        sc = self.sc
        start = int(math.floor(sc.warmup))
        measured = timeline.iloc[start:]
        requests = int(measured["requests"].sum())
        failed = requests - int(measured["ok"].sum())
        lat = load.latencies(ok[start:].astype(float), self.fleet.queue, start, sc.backends.service_time, sc.rtt,
                             self.rng["service"])
        if self.detour.any() and len(lat):
            measured_ok = ok[start:].astype(float)
            k = int(round(len(lat) * float((measured_ok * self.detour[start:]).sum()) / max(measured_ok.sum(), 1.0)))
            if k:
                lat[self.rng["service"].choice(len(lat), size=min(k, len(lat)), replace=False)] += CONNECT_TIMEOUT
        late = self.rescued_delay[self.rescued_at >= sc.warmup] if len(self.rescued_delay) else self.rescued_delay
        if len(late) and len(lat):
            # The sample stands for all successful requests; the late ones join at their share.
            k = int(round(len(lat) * len(late) / max(int(ok[start:].sum()), 1)))
            if k:
                pick = self.rng["service"].choice(late, size=k)
                lat = np.concatenate([lat, pick + np.asarray(sc.backends.service_time.sample(self.rng["service"], k)) + sc.rtt])
        lat = lat * 1000.0
        recovery = clients["recovery_s"].to_numpy()
        return {
            "requests": requests,
            "failed": failed,
            "clients_affected": len(clients),
            "stragglers_5m": float(np.mean(~(recovery <= 300.0))) if len(clients) else 0.0,
            "latency_ms_p50": float(np.percentile(lat, 50)) if lat.size else math.nan,
            "latency_ms_p99": float(np.percentile(lat, 99)) if lat.size else math.nan,
            "dns_queries": int(measured["dns_queries"].sum()),
            "dropped": int(measured["shed"].sum()),
        }


def _window_mass(rate: np.ndarray, lo: np.ndarray, hi: np.ndarray, seconds: int) -> np.ndarray:
    """Per second s, sum over clients of rate x |[lo, hi) overlap [s, s+1)|.

    With A(t) = sum rate (clip(t, lo, hi) - lo), the answer is A(s+1) - A(s);
    every window starts at the same `lo` here (the fault), so A is a sum of
    min(t - lo, width), evaluated on sorted widths with prefix sums.
    """
    start = float(lo[0])
    width = np.sort(hi - lo)
    order = np.argsort(hi - lo)
    w_rate = rate[order]
    cum_rw = np.concatenate([[0.0], np.cumsum(w_rate * width)])
    cum_r = np.concatenate([[0.0], np.cumsum(w_rate)])
    t = np.arange(seconds + 1, dtype=float)
    a = np.maximum(t - start, 0.0)
    k = np.searchsorted(width, a, side="left")
    area = cum_rw[k] + a * (cum_r[-1] - cum_r[k])
    return np.diff(area)
