"""The project's own performance gate: short ratios, compared with a stored baseline.

Each figure is a ratio of two things measured side by side in this run
(docs/benchmarks.md): the model against a bare SimPy loop, the fast engine
against the model (simulated requests per wall second, the default scenario
with 5 times its clients), and sim.core against HAProxy in requests per
CPU-second of the balancer's own process (HTTP and TCP). A ratio more than
20% below the stored baseline fails the gate. The baseline also records the
event loop sim.core ran on (uvloop or asyncio): a gate run on another loop
says so, since the balancer ratios depend on it.

Why a plain script rather than pytest-benchmark or asv: both gate on absolute
timings compared across runs, which move 30% here from one minute to the
next on a shared 2-core machine; the ratios we gate on are two measurements
of one run, which neither tool computes. The ratios, the command and the date
are stored in benchmarks/baseline.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

BASELINE = Path("benchmarks/baseline.json")
ALLOWED_DROP = 0.20
FAST_CLIENTS_FACTOR = 5  # the full benchmark uses 20; 5 keeps the gate short


def model_ratio(repeats: int) -> float:
    from sim.bench.model import measure

    return float(measure("scenarios/elb-blowup.yaml", repeats)["median_ratio"])


def fast_ratio(repeats: int) -> float:
    from sim.bench.fast import ratio

    return float(ratio("scenarios/elb-blowup.yaml", repeats, FAST_CLIENTS_FACTOR)["median_ratio"])


def environment() -> dict[str, str]:
    import importlib.util
    import platform

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {"event_loop": loop, "python": platform.python_version(), "machine": platform.machine()}


def core_ratios(repeats: int, duration: float) -> dict[str, float]:
    """sim.core / HAProxy, requests per CPU-second, per mode (medians of repeats)."""
    from sim.bench.core import run_bench, summarize

    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()) or not shutil.which("wrk"):
        raise RuntimeError("haproxy and wrk are needed for the balancer ratios (scripts/test.sh installs them as root)")
    with tempfile.TemporaryDirectory() as out:
        results = run_bench(
            Path(out), ["simcore", "haproxy"], ["http", "tcp"], duration, 0.0, [], repeats, 50, 0.0, 1, 0,
            log=lambda *_: None, warm_wrk=0.5,
        )
    summary = summarize(results)
    ratios = {}
    for mode in ("http", "tcp"):
        ratio = summary.get(mode, {}).get("simcore", {}).get("ratio_rps_per_cpu_to_haproxy")
        if ratio is None:
            raise RuntimeError(f"no sim.core/HAProxy ratio for {mode}: {results.get('skipped')}")
        ratios[f"core_vs_haproxy_{mode}_per_cpu"] = float(ratio)
    return ratios


def measure(repeats: int, duration: float) -> dict[str, float]:
    return {
        "model_vs_bare_simpy": model_ratio(repeats),
        "fast_vs_model": fast_ratio(min(repeats, 3)),
        **core_ratios(repeats, duration),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.bench.regression",
        description="Short performance ratios (model/bare SimPy, sim.core/HAProxy per CPU-second); "
        "exit 1 when one drops more than 20%% below benchmarks/baseline.json.",
        epilog="examples:\n  python -m sim.bench.regression\n  python -m sim.bench.regression --record",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--record", action="store_true", help="store this run's ratios as the baseline")
    parser.add_argument("--repeats", type=int, default=5, help="medians of this many side-by-side pairs")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of each wrk run")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        ratios = measure(args.repeats, args.duration)
    except RuntimeError as exc:
        print(f"regression benchmark: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - started
    command = "python -m sim.bench.regression " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.record:
        from sim.results.writer import write_json_atomic

        write_json_atomic(args.baseline, {
            "ratios": ratios, "command": command, "date": time.strftime("%Y-%m-%d"), "wall_s": wall,
            "environment": environment(),
        })
        print(f"recorded {args.baseline}: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
        return 0
    if not args.baseline.is_file():
        print(f"regression benchmark: no baseline at {args.baseline}; record one with --record", file=sys.stderr)
        return 2
    baseline = json.loads(args.baseline.read_text())
    stored = baseline["ratios"]
    recorded_env, env = baseline.get("environment", {}), environment()
    for key, value in recorded_env.items():
        if env.get(key) != value:
            print(f"note: the baseline was recorded with {key} {value}; this run has {env.get(key)}")
    failed = False
    print(f"{'ratio':<32} {'baseline':>9} {'now':>9} {'change':>8}")
    for name, now in ratios.items():
        base = stored.get(name)
        if base is None:
            print(f"{name:<32} {'-':>9} {now:9.3f}  (no baseline)")
            continue
        change = now / base - 1
        bad = change < -ALLOWED_DROP
        failed |= bad
        print(f"{name:<32} {base:9.3f} {now:9.3f} {change:+8.1%}" + ("  REGRESSION (> 20% drop)" if bad else ""))
    print(f"({wall:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
