"""The backend fleet second by second: which instances serve, how full they are, autoscaling.

Control plane, discrete, as in the model (sim.model.requests,
sim.model.background):
- an instance is launched (up, not yet healthy), becomes eligible after `rise`
  passing probes of its own checker (random phase), dies in an instance_down
  fault (victims drawn among the instances up then) or by its own failures
  (backends.failures: the first instances only, as in the model), each death
  seen by the victim's checker (sim.fast.instances) and losing the requests
  the instance held, and is retired by a scale-in (no new work).
- autoscaling: every `period`, the mean of int(period) samples of busy workers
  over the workers of running instances (with the samples' noise), then
  sim.policy.scaling's decision; launches serve after the launch delay and
  their checks.

Data plane, per second, by formula (sim.fast.queueing):
- least_outstanding and p2c keep queues level, so the eligible live instances
  are one pool, M/M/(n c)/(n (c + K)): full only when every instance is.
  random: each instance M/M/c/(c + K) at lambda / n; round_robin: each instance
  takes every n-th arrival, E_n/M/c/(c + K) (the GI/M/c law, sim.fast.queueing).
- a worker is held for the service time plus the rtt (as in the model), taken
  as exponential with that mean.
- a request whose every balancer try lands on a dead instance still called
  healthy fails: uniform picks (random, p2c); round robin's own cursor
  (sim.policy.balancing.RoundRobin); under least_outstanding with refused
  connects a dead instance holds no work, so it is every pick's first choice;
  while there are at least as many dead eligible instances as tries, a live
  instance takes a request only when it is idle (ties at zero), and the live
  fleet is a loss system on the idle count, solved as a birth-death chain.
- clients retry a shed or refused request at once, which adds load: the
  per-attempt failure q solves q = F(lambda sum_{k<A} q^k) by iteration.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from sim.fast import instances
from sim.fast.queueing import Queue, erlang_b, mean_in_system
from sim.policy.attempts import CONNECT_TIMEOUT
from sim.policy.balancing import RoundRobin
from sim.policy.health import (
    HealthCheckSpec,
    HealthState,
    first_probe_at,
    probe_duration,
    probe_ok,
    probe_step,
)
from sim.policy.scaling import scaling_decision
from sim.scenario import build
from sim.scenario import models as m

POOLED = ("least_outstanding", "p2c")


@dataclass
class Fleet:
    """Per second: what an attempt that reaches the backends meets."""

    share: np.ndarray  # an attempt fails on dead instances still called healthy
    first_dead: np.ndarray  # its first try lands on one (blackhole: the connect timeout is spent)
    block: np.ndarray  # an attempt that reaches a live instance finds its queue full: shed
    queue: Queue  # waiting of the admitted ones
    outcome: str  # what a dead-instance failure is: error_5xx or timeout
    mode: str  # the instance faults' mode
    # (time, live + pending) at each autoscaling decision, as the model's fleet
    decisions: list[tuple[float, int]] = field(default_factory=list)
    # (time, requests the dying instance held): lost with it, as in the model
    kills: list[tuple[float, float]] = field(default_factory=list)

    def final(self, attempts: int) -> tuple[np.ndarray, np.ndarray]:
        """(share of requests of a client with `attempts` that fail in the end, the part of
        them that is shed). Refused and shed attempts are retried at once (the same second);
        a blackholed instance is left to its connect timeout (sim.fast.instances)."""
        p, d = self.block, self.share
        if self.mode == "blackhole":
            shed = (1.0 - d) * p**attempts
            return d + shed, shed
        q = 1.0 - (1.0 - d) * (1.0 - p)
        fail = q**attempts
        # The last attempt is shed with probability (1 - d) p / q.
        shed = np.divide(fail * (1.0 - d) * p, q, out=np.zeros_like(q), where=q > 0)
        return fail, shed


@dataclass
class _Instance:
    up_at: float  # launched: counted as running from here (its workers are idle until eligible)
    healthy_at: float  # eligible from here
    removed_at: float = math.inf
    dead: list[tuple[float, float, float, float]] = field(
        default_factory=list
    )  # (start, stop, down_at, up_at)


def simulate(
    scenario: m.Scenario,
    seconds: int,
    load: dict[int, np.ndarray],
    rng: np.random.Generator,
    control: np.random.Generator,
) -> Fleet:
    """`load`: per client attempts A, the requests per second that reach the backends."""
    return _Fleet(scenario, seconds, load, rng, control).run()


class _Fleet:
    def __init__(
        self,
        scenario: m.Scenario,
        seconds: int,
        load: dict[int, np.ndarray],
        rng: np.random.Generator,
        control: np.random.Generator,
    ) -> None:
        self.sc = scenario
        self.spec = scenario.backends
        self.hc = build.health_check(self.spec.health_check)
        self.seconds = seconds
        self.load = {a: np.asarray(v, dtype=float)[:seconds] for a, v in load.items()}
        self.rng = rng
        self.control = control
        self.holding = float(self.spec.service_time.mean) + scenario.rtt
        self.mu = 1.0 / self.holding if self.holding > 0 else 1e12
        self.fleet = [_Instance(-math.inf, -math.inf) for _ in range(self.spec.instances)]
        faults = [f for f in scenario.faults if isinstance(f, m.InstanceDown)]
        self.faults = sorted(faults, key=lambda f: f.at)
        self.mode = self.faults[0].mode if self.faults else "refuse"
        # backends.failures: each first instance fails after an exponential time with mean
        # mtbf, refuses for a repair time, and so on (instances launched later do not fail,
        # as in the model). The next failure of each, drawn as the run reaches it.
        self.failures = self.spec.failures
        self.next_failure = [
            float(self.rng.exponential(self.failures.mtbf)) if self.failures else math.inf
            for _ in self.fleet
        ]
        self.kills: list[float] = []  # when an instance died (the work it held is lost)
        n = seconds
        self.share, self.first_dead, self.block = np.zeros(n), np.zeros(n), np.zeros(n)
        self.servers, self.room = np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        self.rho, self.erlang = np.zeros(n), np.ones(n)
        self.busy = np.zeros(n)  # expected busy workers
        self.busy_var = np.zeros(n)  # and their variance at an instant
        self.pool = np.ones(n, dtype=np.int64)  # instances behind one pooled queue
        # Round robin: each instance takes every n-th arrival, n the instances it cycles over
        # (E_n/M/c, sim.fast.queueing); other policies split at random: Poisson (1).
        self.phases = np.ones(n, dtype=np.int64)

    def run(self) -> Fleet:
        auto = self.spec.autoscaling
        decisions: list[tuple[float, int]] = []
        if auto is None:
            self._faults_until(math.inf)
            self._serve(0, self.seconds)
        else:
            pending: list[float] = []  # launch times of instances not yet running
            done = 0
            k = 1
            # The model's run stops before a decision at its very end.
            while k * auto.period < self.sc.end:
                now = k * auto.period
                self._faults_until(now)
                stop = min(self.seconds, int(math.ceil(now)))
                self._serve(done, stop)
                done = stop
                utilization = self._utilization((k - 1) * auto.period, auto.period)
                pending = [t for t in pending if t > now]
                live = [i for i in self.fleet if i.removed_at > now and i.up_at <= now]
                change = scaling_decision(
                    len(live),
                    len(pending),
                    utilization,
                    auto.min,
                    auto.max,
                    auto.target_utilization,
                )
                for _ in range(max(change, 0)):
                    at = now + float(auto.launch_delay.sample(self.control, 1)[0])
                    pending.append(at)
                    healthy = _eligible_after_launch(at, float(self.control.random()), self.hc)
                    self.fleet.append(_Instance(at, healthy))
                if change < 0:
                    self._retire(live, now)
                running = sum(1 for i in self.fleet if i.removed_at > now and i.up_at <= now)
                decisions.append((now, running + len(pending)))
                k += 1
            self._faults_until(math.inf)
            self._serve(done, self.seconds)
        queue = Queue(self.servers, self.room, self.rho, self.erlang, self.mu, self.pool, self.phases)
        outcome = "error_5xx"
        if (
            self.mode == "blackhole"
            and min(c.retry.timeout for c in self.sc.clients) <= CONNECT_TIMEOUT
        ):
            outcome = "timeout"
        kills = [(t, self._held(t)) for t in self.kills if t < self.sc.end]
        return Fleet(
            self.share, self.first_dead, self.block, queue, outcome, self.mode, decisions, kills
        )

    def _held(self, t: float) -> float:
        """Requests one instance holds at `t`, in expectation (in service and waiting)."""
        s = min(max(int(t) - 1, 0), self.seconds - 1)  # the second before the death
        n = int(self.pool[s])
        servers, room = int(self.servers[s]), int(self.room[s])
        offered = float(self.rho[s]) * servers
        return mean_in_system(servers, room, offered) / max(n, 1)

    # -- control plane ------------------------------------------------------------------

    def _faults_until(self, now: float) -> None:
        """Instance deaths before `now`, in time order: instance_down faults (victims among
        the instances up then) and the first instances' own failures."""
        while True:
            fault_at = self.faults[0].at if self.faults else math.inf
            i = int(np.argmin(self.next_failure)) if self.next_failure else 0
            failure_at = self.next_failure[i] if self.next_failure else math.inf
            if min(fault_at, failure_at) >= min(now, self.sc.end):
                return
            if fault_at <= failure_at:
                fault = self.faults.pop(0)
                at = fault.at
                up = [j for j in self.fleet if j.up_at <= at < j.removed_at and not _dead_at(j, at)]
                picks = self.rng.choice(len(up), size=min(fault.count, len(up)), replace=False)
                for p in picks:
                    self._kill(up[int(p)], at, at + fault.for_, fault.mode)
            else:
                inst = self.fleet[i]
                assert self.failures is not None
                if inst.removed_at <= failure_at:
                    self.next_failure[i] = math.inf  # retired: its failure process ends
                elif _dead_at(inst, failure_at):
                    # Already down (an instance_down fault): the model skips this failure.
                    self.next_failure[i] = failure_at + float(
                        self.rng.exponential(self.failures.mtbf)
                    )
                else:
                    repair = float(self.failures.repair.sample(self.rng, 1)[0])
                    self._kill(inst, failure_at, failure_at + repair, "refuse")
                    self.next_failure[i] = (
                        failure_at + repair + float(self.rng.exponential(self.failures.mtbf))
                    )

    def _kill(self, victim: _Instance, start: float, stop: float, mode: str) -> None:
        # Its checker's probes run from its launch (the first instances' from time 0).
        origin = victim.up_at if math.isfinite(victim.up_at) else 0.0
        phase = (float(self.rng.random()) + origin / self.hc.interval) % 1.0
        down_at, up_at = instances.checker(self.hc, start, stop, mode, self.sc.end, phase)
        victim.dead.append((start, stop, down_at, up_at))
        self.kills.append(start)

    def _retire(self, live: list[_Instance], now: float) -> None:
        """The model retires the instance with the least work in flight: a dead one (it holds
        none), else one not yet eligible, else any (the serving ones are alike here)."""
        dead = [i for i in live if _dead_at(i, now)]
        idle = [i for i in live if i.healthy_at > now]
        (dead or idle or live)[0].removed_at = now

    def _utilization(self, start: float, period: float) -> float:
        """The model's samples: at int(period) instants of the period, busy workers over the
        workers of running instances (up, not retired, not dead)."""
        steps = max(1, int(period))
        total = spread = 0.0
        for j in range(1, steps + 1):
            t = start + j * period / steps
            s = min(max(int(math.ceil(t)) - 1, 0), self.seconds - 1)
            running = sum(
                1 for i in self.fleet if i.up_at <= t < i.removed_at and not _dead_at(i, t)
            )
            workers = max(1, running * self.spec.workers)
            total += min(self.busy[s], workers) / workers
            spread += self.busy_var[s] / workers**2
        # The model's samples are instants of a random queue, and its decision a ceiling of
        # their mean: near a threshold the noise decides, so it is drawn here too. Busy
        # workers vary about as a Poisson count thinned by the chance that all are busy;
        # samples a step apart are correlated by exp(-step / holding) (AR(1)).
        r = math.exp(-(period / steps) / self.holding) if self.holding > 0 else 0.0
        sd = math.sqrt(spread * (1.0 + r) / (1.0 - r)) / steps if r < 1 else 0.0
        # Clipped as the model's is bounded: a saturated fleet measures exactly 1, which the
        # decision's ceiling must see as 1 (10 instances for 6 at a 0.6 target, not 11).
        return min(1.0, max(0.0, total / steps + sd * float(self.control.standard_normal())))

    # -- data plane -------------------------------------------------------------------

    def _serve(self, lo: int, hi: int) -> None:
        """Per second in [lo, hi): counts from the instances, then the queue's fixed point."""
        if hi <= lo:
            return
        spec = self.spec
        t = np.arange(lo, hi) + 0.5
        # Per instance (in the model's list order) and second: 0 not eligible, 1 eligible
        # and live, 2 eligible and dead.
        codes = np.zeros((len(self.fleet), hi - lo), dtype=np.int8)
        for k, inst in enumerate(self.fleet):
            there = (t >= inst.up_at) & (t < inst.removed_at)
            eligible = there & (t >= inst.healthy_at)
            down = np.zeros(hi - lo, dtype=bool)
            for start, stop, down_at, up_at in inst.dead:
                down |= (t >= start) & (t < stop)
                eligible &= ~((t >= down_at) & (t < up_at))
            codes[k] = np.where(eligible, np.where(down, 2, 1), 0)
        live = (codes == 1).sum(axis=0).astype(float)
        dead = (codes == 2).sum(axis=0).astype(float)
        lam = {a: v[lo:hi] for a, v in self.load.items()}
        share, first_dead = self._dead_share(live, dead)
        self._round_robin(codes, share)
        chain = self._chain_seconds(live, dead)
        q = share.copy()
        pooled = spec.policy in POOLED
        n = np.maximum(live, 1)
        phases = (n if spec.policy == "round_robin" else np.ones(hi - lo)).astype(np.int64)
        servers = (n * spec.workers if pooled else np.full(hi - lo, spec.workers)).astype(np.int64)
        room = (n * spec.queue_limit if pooled else np.full(hi - lo, spec.queue_limit)).astype(
            np.int64
        )
        size = hi - lo
        attempts, reach = np.zeros(size), np.zeros(size)
        block, wait = np.zeros(size), np.zeros(size)
        rho, erl = np.zeros(size), np.ones(size)
        carried_chain = np.zeros(size)
        todo = np.arange(size)  # seconds whose fixed point has not settled yet
        for _ in range(200):
            c = chain[todo]
            att = sum(v[todo] * _geometric_sum(q[todo], a) for a, v in lam.items())
            sh = share[todo]
            if c.any():
                sh[c], carried_chain[todo[c]] = _loss_chain(
                    att[c], live[todo][c], dead[todo][c], spec.retries + 1, self.mu
                )
            r = att * (1.0 - sh)
            offered = (r if pooled else r / n[todo]) / self.mu
            e = erlang_b(servers[todo], offered)
            rh = offered / servers[todo]
            b, w = Queue(servers[todo], room[todo], rh, e, self.mu, phases=phases[todo]).probabilities()
            b = np.where(live[todo] > 0, np.where(c, 0.0, b), 1.0)
            new = 1.0 - (1.0 - sh) * (1.0 - b)
            settled = np.abs(new - q[todo]) < 1e-9
            share[todo], q[todo], attempts[todo], reach[todo] = sh, new, att, r
            block[todo], wait[todo], rho[todo], erl[todo] = b, w, rh, e
            todo = todo[~settled]
            if len(todo) == 0:
                break
        busy = reach * (1.0 - block) * self.holding
        var = busy * np.clip(1.0 - block - wait, 0.0, 1.0)
        if chain.any():
            busy[chain] = carried_chain[chain] * self.holding
            var[chain] = busy[chain]
        sl = slice(lo, hi)
        self.share[sl], self.first_dead[sl], self.block[sl] = share, first_dead, block
        self.servers[sl], self.room[sl], self.rho[sl], self.erlang[sl] = servers, room, rho, erl
        self.busy[sl], self.busy_var[sl] = busy, var
        self.pool[sl] = n if pooled else 1
        self.phases[sl] = phases

    def _dead_share(self, live: np.ndarray, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = live + dead
        tries = np.minimum(self.spec.retries + 1, np.maximum(e, 1))
        share = np.ones_like(e)
        for i in range(int(tries.max(initial=1))):
            # Every try so far landed on a dead instance (picks without replacement).
            share *= np.where(i < tries, np.clip(dead - i, 0, None) / np.maximum(e - i, 1), 1.0)
        share = np.where(e == 0, 1.0, np.where(dead == 0, 0.0, share))  # no eligible instance: 503
        first = np.where(e == 0, 1.0, dead / np.maximum(e, 1))
        if self.spec.policy == "least_outstanding" and self.mode == "refuse":
            # Dead instances hold no work: they are picked first, so a request fails only in
            # the chain's regime (every try can land on one), solved per second in _serve.
            share = np.where(e == 0, 1.0, 0.0)
        return share, first

    def _round_robin(self, codes: np.ndarray, share: np.ndarray) -> None:
        """Round robin with dead instances still eligible: the cursor counts picks, and a
        retry picks from the list without the instance tried, so whether every try lands on
        a dead one follows from the cursor, not from uniform picks (two of six dead, one
        retry: 10% fail, not 6.7%). Sets `share` to the model's long-run failing share, per
        pattern of dead positions in the list.

        The same cursor loads the live instances unevenly (one dead of four: 44%, 11%, 44%
        of the requests). That is not used: each instance's stationary blocking at its own
        load overstates the shedding of a window of a few seconds, whose queues take that
        long to fill (docs/fast.md: 154 shed against the model's 102; even loads, 57)."""
        if self.spec.policy != "round_robin":
            return
        rr = (codes == 2).any(axis=0) & (codes == 1).any(axis=0)
        for s in np.flatnonzero(rr):
            column = codes[:, s]
            pattern = tuple(bool(c == 2) for c in column[column > 0])
            share[s] = _round_robin_shares(pattern, self.spec.retries + 1)[0]

    def _chain_seconds(self, live: np.ndarray, dead: np.ndarray) -> np.ndarray:
        if self.spec.policy != "least_outstanding" or self.mode != "refuse":
            return np.zeros(len(live), dtype=bool)
        return (dead >= self.spec.retries + 1) & (live > 0)


class _Without:
    """Positions 0..n-1 without those tried, as the candidate list RoundRobin.pick indexes
    (the model builds that list per retry; here without copying n entries per pick)."""

    def __init__(self, n: int, tried: list[int]) -> None:
        self.n, self.tried = n, sorted(tried)

    def __len__(self) -> int:
        return self.n - len(self.tried)

    def __getitem__(self, j: int) -> int:
        for t in self.tried:
            if t <= j:
                j += 1
        return j


@functools.lru_cache(maxsize=4096)
def _round_robin_shares(dead: tuple[bool, ...], tries: int) -> tuple[float, tuple[float, ...]]:
    """The model's RoundRobin over the eligible instances in list order (`dead` marks the
    dead ones), each request tried up to `tries` times without repeating an instance:
    (share of requests that fail, share each live instance takes, in list order), over
    enough requests for the cursor's cycle to average out."""
    policy = RoundRobin()
    n = len(dead)
    landed = dict.fromkeys((p for p in range(n) if not dead[p]), 0)
    fails = 0
    requests = 20_000
    for _ in range(requests):
        tried: list[int] = []
        for _ in range(min(tries, n)):
            pick = policy.pick(_Without(n, tried), None)  # type: ignore[arg-type]
            if not dead[pick]:
                landed[pick] += 1
                break
            tried.append(pick)
        else:
            fails += 1
    return fails / requests, tuple(v / requests for v in landed.values())


def _eligible_after_launch(at: float, phase: float, hc: HealthCheckSpec) -> float:
    """A launched instance starts unhealthy; its checker (first probe at its phase) passes
    every probe, and the state machine calls it up after `rise` of them (as the model's)."""
    t = at + first_probe_at(phase, hc)
    state = HealthState(False, 0, 0)
    while True:
        t += probe_duration("ok", hc)
        state, transition = probe_step(state, probe_ok("ok"), hc)
        if transition == "up":
            return t
        t += hc.interval


def _dead_at(inst: _Instance, t: float) -> bool:
    return any(start <= t < stop for start, stop, _, _ in inst.dead)


def _geometric_sum(q: np.ndarray, attempts: int) -> np.ndarray:
    """Attempts per request when each fails with q and a request has `attempts` at most."""
    return sum((q**k for k in range(attempts)), np.zeros_like(q))


def _loss_chain(
    lam: np.ndarray, live: np.ndarray, dead: np.ndarray, tries: int, mu: float
) -> tuple[np.ndarray, np.ndarray]:
    """Least outstanding with at least `tries` dead eligible instances: a live instance takes
    a request only while idle, so the live fleet holds b <= live requests, one each. An
    attempt meeting b busy succeeds unless each try picks a dead one among the instances at
    zero: 1 - prod_{i<tries} (dead - i) / (dead - i + live - b). Returns (failing share of
    attempts, carried requests per second) from the chain's stationary law (PASTA)."""
    top = int(live.max(initial=0))
    b = np.arange(top + 1)[:, None]
    idle = np.maximum(live[None, :] - b, 0)
    fail = np.ones((top + 1, len(lam)))
    for i in range(tries):
        fail *= (dead - i)[None, :] / np.maximum((dead - i)[None, :] + idle, 1e-300)
    ok = 1.0 - fail
    ok = np.where(b <= live[None, :], ok, 0.0)
    # pi_{b+1} / pi_b = lam ok_b / ((b + 1) mu), in logs
    with np.errstate(divide="ignore"):
        step = np.log(np.maximum(lam[None, :] * ok[:-1], 1e-300)) - np.log(
            (b[1:] * mu).astype(float)
        )
    logpi = np.vstack([np.zeros((1, len(lam))), np.cumsum(step, axis=0)])
    logpi = np.where(b <= live[None, :], logpi, -np.inf)
    pi = np.exp(logpi - logpi.max(axis=0, keepdims=True))
    pi /= pi.sum(axis=0, keepdims=True)
    return (pi * fail).sum(axis=0), lam * (pi * ok).sum(axis=0)
