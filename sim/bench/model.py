"""Engine speed: the model's simulated requests per wall second, as a ratio.

The floor is a bare SimPy loop doing the same number of requests, each one
resource request and one timeout, timed in the same process and run, with the
two alternated so that machine noise hits both (docs/benchmarks.md). The ratio,
not either rate, is the figure: absolute speed moves 30% between runs here.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import simpy

from sim.progress import Progress

TARGET_RATIO = 0.35  # issue 3: the model at least 0.35 of the bare loop's rate


def bare_simpy(requests: int, seed: int = 0, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds (of `clock`) for `requests` requests of one resource request and one timeout each."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(0.001, requests).tolist()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)

    def loop(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for gap in gaps:
            req = server.request()
            yield req
            yield env.timeout(gap)
            server.release(req)

    env.process(loop(env))
    started = clock()
    env.run()
    return clock() - started


def model_run(
    scenario_path: str, strategy: str, seed: int, slowdown: float = 0.0, clock: Callable[[], float] = time.perf_counter
) -> tuple[int, float]:
    """(requests simulated, seconds of `clock`) for one replication of the model; `slowdown` > 0
    only for the regression gate's calibration (sim.bench.slowdown)."""
    from sim.bench.slowdown import slowed
    from sim.model.engine import Replication
    from sim.scenario import load_file

    scenario = load_file(scenario_path)
    started = clock()
    with slowed(slowdown):
        rep = Replication(scenario, strategy, np.random.SeedSequence(seed))
        rep.run()
    return rep.issued, clock() - started


def measure(scenario_path: str, repeats: int, bar: Progress | None = None) -> dict:
    rows = []
    for k in range(repeats):
        for strategy in ("cname_repoint", "eip_remap"):
            requests, model_s = model_run(scenario_path, strategy, k)
            bare_s = bare_simpy(requests, k)
            if bar is not None:
                # between the timed parts, so drawing it costs neither of them
                bar.advance(f"{strategy} pair {k + 1}/{repeats}")
            rows.append(
                {
                    "strategy": strategy,
                    "requests": requests,
                    "model_s": model_s,
                    "bare_s": bare_s,
                    "model_rate": requests / model_s,
                    "bare_rate": requests / bare_s,
                    "ratio": bare_s / model_s,
                }
            )
    ratios = [r["ratio"] for r in rows]
    return {
        "benchmark": "engine speed: model vs bare SimPy",
        "scenario": scenario_path,
        "median_ratio": statistics.median(ratios),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "median_model_rate": statistics.median(r["model_rate"] for r in rows),
        "median_bare_rate": statistics.median(r["bare_rate"] for r in rows),
        "target_ratio": TARGET_RATIO,
        "runs": rows,
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="failover-sim bench model",
        description="Simulated requests per wall second of the model, as a ratio to a bare SimPy loop "
        "(one resource request and one timeout per request) run alternately in the same process.",
        epilog="example:\n  failover-sim bench model --repeats 5 --out results/bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="scenarios/elb-blowup.yaml", help="scenario to run (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs per strategy (median reported)")
    parser.add_argument("--out", default="results/bench", help="folder for the JSON result")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if not Path(args.scenario).is_file():
        print(f"{args.scenario}: cannot read: no such file", file=sys.stderr)
        return 2
    with Progress(2 * args.repeats, "bench model", "pairs", quiet=args.quiet) as bar:
        result = measure(args.scenario, args.repeats, bar)
    result["command"] = "failover-sim bench model " + " ".join(argv or [])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from sim.results.writer import write_json_atomic

    path = write_json_atomic(out / f"model-{time.strftime('%Y%m%dT%H%M%S')}.json", result)
    print(f"model:  {result['median_model_rate']:,.0f} simulated requests/s (median)")
    print(f"bare:   {result['median_bare_rate']:,.0f} requests/s (bare SimPy, same run)")
    print(
        f"ratio:  {result['median_ratio']:.2f} median (min {result['min_ratio']:.2f}, max {result['max_ratio']:.2f}; "
        f"target >= {TARGET_RATIO})"
    )
    print(f"saved:  {path}")
    return 0
