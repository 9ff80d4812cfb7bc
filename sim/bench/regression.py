"""The project's own performance gate: short ratios, compared with a stored baseline.

Each figure is a ratio of two things measured side by side in this run
(docs/benchmarks.md), as a set of pairs: the model against a bare SimPy loop
(the same number of requests), the fast engine against a fixed piece of
numpy work (CPU-seconds; cname_repoint on the default scenario with 5 times
its clients), and sim.core against HAProxy in requests per CPU-second of the
balancer's own process (HTTP and TCP; both balancers started once, then 1 s
wrk runs alternated). The statistic is the mean over pairs of the log
ratio (the log of their geometric mean); the gate fails a figure when it lies more than that figure's threshold
(a log drop, stored in the baseline) below the log of the baseline. The
baseline and the thresholds come from many runs of unchanged code and of an
injected 30% slowdown (`--inject-slowdown 0.3`, sim.bench.slowdown;
sim.bench.gate_stats derives them; docs/ci.md has the figures). The baseline
also records the event loop sim.core ran on (uvloop or asyncio): a gate run on
another loop says so, since the balancer ratios depend on it.

Why a plain script rather than pytest-benchmark or asv: both gate on absolute
timings compared across runs, which move 30% here from one minute to the
next on a shared 2-core machine; the ratios we gate on are two measurements
of one run, which neither tool computes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BASELINE = Path("benchmarks/baseline.json")
SCENARIO = "scenarios/elb-blowup.yaml"
DEFAULT_LOG_THRESHOLD = -math.log(0.8)  # a baseline without thresholds: the former 20% drop
MODEL_STRATEGIES = ("cname_repoint", "eip_remap")  # alternated, pooled: their ratios agree
FAST_STRATEGY = "cname_repoint"  # one strategy: the two engines' ratios differ 2.4x between them
FAST_CLIENTS_FACTOR = 5  # the full benchmark uses 20; 5 keeps the gate short
CONNECTIONS = 50
LB_CPU, GEN_CPU = 1, 0  # as `failover-sim bench core` pins them
MODES = ("http", "tcp")
PAIRS = {"model": 4, "fast": 5, "http": 10, "tcp": 6}  # chosen from the measured spread (docs/ci.md)
MODEL_REPEATS = 3  # each side of a model pair is the least of this many runs
FAST_REPEATS = 5  # each side of a fast pair is the least of this many runs
KERNEL_SIZE = 160_000  # the numpy reference's array length: ~50 ms here, as the fast engine's run


# -- the decision rule --------------------------------------------------------------------


def statistic(ratios: list[float]) -> float:
    """The mean over pairs of the log ratio. Not the median: the model's pairs alternate two
    strategies whose ratios differ by 11% (0.71 and 0.79), and the median of an even count
    then falls between the two groups; over 7 runs of unchanged code the mean's spread was
    0.035 against the median's 0.056 (TCP 0.021 against 0.031, the others alike)."""
    return statistics.fmean(math.log(r) for r in ratios)


def decide(ratios: list[float], baseline: float, log_threshold: float) -> tuple[float, bool]:
    """(log shift of this run against the baseline, whether the gate fails)."""
    shift = statistic(ratios) - math.log(baseline)
    return shift, shift < -log_threshold


# -- the pairs ----------------------------------------------------------------------------


def model_pairs(n: int, slowdown: float = 0.0) -> list[float]:
    """bare SimPy CPU-seconds / model CPU-seconds for the same request count, per pair. CPU
    time of this thread, not wall time: on a shared machine the wall clock also counts
    other processes' turns on the core (3 times the CPU time at a load average of 7). Each
    side is the least of MODEL_REPEATS runs: one model run of the same seed read 350 to
    500 ms in one process on an idle machine, and interference only adds time."""
    from sim.bench.model import bare_simpy, model_run

    model_run(SCENARIO, MODEL_STRATEGIES[0], 0)  # warm-up: the first run also imports (2.5x its CPU)
    out = []
    for k in range(n):
        # the two sides alternate, so that both meet the same minutes of the machine's load
        model_s, bare_s = [], []
        for _ in range(MODEL_REPEATS):
            requests, seconds = model_run(SCENARIO, MODEL_STRATEGIES[k % 2], k, slowdown, time.thread_time)
            model_s.append(seconds)
            bare_s.append(bare_simpy(requests, k, time.thread_time))
        out.append(min(bare_s) / min(model_s))
    return out


def numpy_reference(seed: int) -> float:
    """A fixed piece of numpy work of the kinds the fast engine is made of (random draws,
    cumulative sums, sorts, searches, bincounts over arrays of a few hundred thousand);
    returns a checksum so that nothing is optimised away."""
    import numpy as np

    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0, KERNEL_SIZE))
    owner = rng.integers(0, 5000, KERNEL_SIZE)
    order = np.argsort(owner, kind="stable")
    found = np.searchsorted(times, rng.uniform(0.0, times[-1], KERNEL_SIZE))
    per_owner = np.bincount(owner[order], weights=times[order], minlength=5000)
    return float(per_owner.sum() + found.sum())


def fast_pairs(n: int, slowdown: float = 0.0) -> list[float]:
    """The numpy reference's CPU-seconds over the fast engine's for one replication
    (cname_repoint, the default scenario with 5 times its clients), per pair.

    Not the fast engine against the model (the former pair): a 2 s model run's CPU time
    moves 10% from one run to the next, which buried the fast engine's own changes (a 30%
    slowdown was caught in 4 of 12 runs), while the numpy reference's moves about 3% and
    shares the fast engine's sensitivity to memory and cache. The model has its own figure.
    Each side is the least of FAST_REPEATS runs: repeats of the fast engine in one process
    read 46 to 66 ms on an idle machine, and interference only adds time; an injected
    slowdown slows every repeat alike."""
    from sim.bench.fast import _timed, scaled

    scenario = scaled(SCENARIO, FAST_CLIENTS_FACTOR)
    _timed("fast", scenario, FAST_STRATEGY, 0)  # warm-up (the first run costs twice the next)
    numpy_reference(0)
    out = []
    for k in range(n):
        fast_s = min(_timed("fast", scenario, FAST_STRATEGY, k, slowdown, time.thread_time)[1]
                     for _ in range(FAST_REPEATS))
        reference_s = []
        for _ in range(FAST_REPEATS):
            started = time.thread_time()
            numpy_reference(k)
            reference_s.append(time.thread_time() - started)
        out.append(min(reference_s) / fast_s)
    return out


@contextlib.contextmanager
def _balancer_slowdown(slowdown: float) -> Iterator[None]:
    """Set sim.bench.slowdown.ENV for the sim.core processes started inside, only when asked."""
    from sim.bench.slowdown import ENV

    if slowdown <= 0:
        yield
        return
    os.environ[ENV] = repr(slowdown)
    try:
        yield
    finally:
        os.environ.pop(ENV, None)


def _per_cpu(pid: int, port: int, duration: int) -> float:
    """Requests wrk completed per CPU-second of the balancer `pid` over one wrk run."""
    from sim.bench.core import cpu_seconds, run_wrk

    c0 = cpu_seconds(pid)
    w = run_wrk(port, duration, CONNECTIONS, GEN_CPU)
    cpu = cpu_seconds(pid) - c0
    found = re.search(r"(\d+) requests in", w["raw"])
    requests = int(found.group(1)) if found else w["rps"] * duration
    if cpu <= 0 or requests <= 0:
        raise RuntimeError(f"wrk on port {port}: {requests} requests in {cpu:.2f} CPU-s:\n{w['raw']}")
    return requests / cpu


def core_pairs(n: dict[str, int], duration: int, slowdown: float = 0.0) -> dict[str, list[float]]:
    """sim.core / HAProxy requests per CPU-second, per pair, per mode. All four balancers run
    from the start (pinned to one core, the backend and wrk to the other) and are warmed
    once; each pair is one wrk run on each, their order alternated."""
    from sim.bench import core

    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()) or not shutil.which("wrk"):
        raise RuntimeError("haproxy and wrk are needed for the balancer ratios (scripts/test.sh installs them as root)")
    ratios: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp, _balancer_slowdown(slowdown):
        out = Path(tmp)
        backend, bport, _ = core.start_backend(out, GEN_CPU)
        procs: dict[tuple[str, str], tuple[Any, int]] = {}
        try:
            for mode in MODES:
                for target in ("simcore", "haproxy"):
                    proc, port, why = core.start_target(target, mode, out, bport, LB_CPU)
                    if why:
                        raise RuntimeError(f"{target} {mode}: {why}")
                    procs[(mode, target)] = (proc, port)
            for _, port in procs.values():
                core.run_wrk(port, 1, CONNECTIONS, GEN_CPU)  # warm-up, not measured
            for k in range(max(n[mode] for mode in MODES)):
                for mode in (mode for mode in MODES if k < n[mode]):
                    order = ("simcore", "haproxy") if k % 2 == 0 else ("haproxy", "simcore")
                    rate = {t: _per_cpu(procs[(mode, t)][0].pid, procs[(mode, t)][1], duration) for t in order}
                    ratios[mode].append(rate["simcore"] / rate["haproxy"])
        finally:
            for proc, _ in procs.values():
                proc.stop()
            backend.stop()
    return {f"core_vs_haproxy_{m}_per_cpu": ratios[m] for m in MODES}


def measure(pairs: dict[str, int], duration: int, slowdown: float = 0.0) -> tuple[dict[str, list[float]], dict[str, float]]:
    """(per-pair ratios per figure, wall seconds per part)."""
    walls: dict[str, float] = {}
    out: dict[str, list[float]] = {}
    started = time.perf_counter()
    if pairs["model"]:  # a part with no pairs is skipped (a calibration of one figure)
        out["model_vs_bare_simpy"] = model_pairs(pairs["model"], slowdown)
        walls["model"] = time.perf_counter() - started
    started = time.perf_counter()
    if pairs["fast"]:
        out["fast_vs_numpy"] = fast_pairs(pairs["fast"], slowdown)
        walls["fast"] = time.perf_counter() - started
    started = time.perf_counter()
    if any(pairs[m] for m in MODES):
        core = core_pairs({m: pairs[m] for m in MODES}, duration, slowdown)
        out.update((name, ratios) for name, ratios in core.items() if ratios)
        walls["core"] = time.perf_counter() - started
    return out, walls


def environment() -> dict[str, str]:
    import importlib.util
    import platform

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {"event_loop": loop, "python": platform.python_version(), "machine": platform.machine()}


# -- the command --------------------------------------------------------------------------


def _report(pairs: dict[str, list[float]], baseline: dict[str, Any]) -> bool:
    """Print each figure against the baseline; True when one fails."""
    stored, limits = baseline.get("ratios", {}), baseline.get("log_thresholds", {})
    failed = False
    print(f"{'ratio':<30} {'baseline':>9} {'now':>9} {'change':>8} {'limit':>7}  pairs (min-max)")
    for name, ratios in pairs.items():
        spread = f"{len(ratios)} ({min(ratios):.3g}-{max(ratios):.3g})"
        base = stored.get(name)
        now = math.exp(statistic(ratios))
        if base is None:
            print(f"{name:<30} {'-':>9} {now:9.3f} {'':>8} {'':>7}  {spread}  (no baseline)")
            continue
        limit = float(limits.get(name, DEFAULT_LOG_THRESHOLD))
        shift, bad = decide(ratios, base, limit)
        failed |= bad
        print(f"{name:<30} {base:9.3f} {now:9.3f} {math.exp(shift) - 1:+8.1%} {math.exp(-limit) - 1:+7.1%}  {spread}"
              + (f"  REGRESSION (below {math.exp(-limit) - 1:+.1%})" if bad else ""))
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.bench.regression",
        description="Short performance ratios (model/bare SimPy, fast engine/numpy reference, sim.core/HAProxy "
        "per CPU-second), each the geometric mean of side-by-side pairs; exit 1 when one drops below its threshold "
        "under benchmarks/baseline.json.",
        epilog="examples:\n  python -m sim.bench.regression\n"
        "  python -m sim.bench.regression --log /tmp/gate-stats/runs.jsonl --inject-slowdown 0.3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--record", action="store_true", help="store this one run's figures as the baseline "
                        "(thresholds kept; docs/ci.md derives both from many runs instead)")
    parser.add_argument("--pairs-model", type=int, default=PAIRS["model"], help="model/bare SimPy pairs")
    parser.add_argument("--pairs-fast", type=int, default=PAIRS["fast"], help="fast engine/numpy reference pairs")
    parser.add_argument("--pairs-http", type=int, default=PAIRS["http"], help="sim.core/HAProxy pairs, HTTP")
    parser.add_argument("--pairs-tcp", type=int, default=PAIRS["tcp"], help="sim.core/HAProxy pairs, TCP")
    parser.add_argument("--duration", type=int, default=1, help="whole seconds of each wrk run")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--inject-slowdown", type=float, default=0.0, metavar="FRACTION",
                        help="calibration only: the measured code does 1 + FRACTION times its CPU work")
    parser.add_argument("--log", type=Path, help="append this run's pairs as a JSON line (for sim.bench.gate_stats)")
    args = parser.parse_args(argv)
    # A SIGTERM (a CI runner's cancel, a calibration stopped) ends as SystemExit, so that the
    # balancers, the backend and wrk started here are stopped by their `finally`, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.record and args.inject_slowdown:
        print("regression benchmark: --record with --inject-slowdown would store a slowed baseline", file=sys.stderr)
        return 2
    if args.inject_slowdown:
        print(f"note: slowdown injected (measured code x{1 + args.inject_slowdown:.2f} CPU): "
              "a failure here is the gate working")
    counts = {"model": args.pairs_model, "fast": args.pairs_fast, "http": args.pairs_http, "tcp": args.pairs_tcp}
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        pairs, walls = measure(counts, args.duration, args.inject_slowdown)
    except RuntimeError as exc:
        print(f"regression benchmark: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - started
    command = "python -m sim.bench.regression " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.log is not None:
        args.log.parent.mkdir(parents=True, exist_ok=True)
        with args.log.open("a") as f:
            f.write(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "inject_slowdown": args.inject_slowdown,
                "pairs": pairs, "wall_s": wall, "walls": walls, "duration": args.duration,
                "loadavg_1m": [load_before, os.getloadavg()[0]], "environment": environment(),
            }) + "\n")
    baseline = json.loads(args.baseline.read_text()) if args.baseline.is_file() else {}
    if args.record:
        from sim.results.writer import write_json_atomic

        ratios = {k: math.exp(statistic(v)) for k, v in pairs.items()}
        write_json_atomic(args.baseline, {
            **baseline, "ratios": ratios, "command": command, "date": time.strftime("%Y-%m-%d"), "wall_s": wall,
            "environment": environment(), "note": "recorded from one run (--record)",
        })
        print(f"recorded {args.baseline}: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
        return 0
    if not baseline:
        print(f"regression benchmark: no baseline at {args.baseline}; record one with --record", file=sys.stderr)
        return 2
    for key, value in baseline.get("environment", {}).items():
        if environment().get(key) != value:
            print(f"note: the baseline was recorded with {key} {value}; this run has {environment().get(key)}")
    failed = _report(pairs, baseline)
    print(f"({wall:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in walls.items()) + ")")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
