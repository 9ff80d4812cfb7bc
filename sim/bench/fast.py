"""The fast engine's speed: against the model on one scenario, and a day at scale.

- ratio: simulated requests per wall second of the fast engine over the
  model's, one replication of each alternated on the same seed (so machine
  noise hits both), median over pairs (docs/benchmarks.md), on the default
  scenario with 20 times its clients (the model takes seconds per
  replication there). Target: 100x.
- day: scenarios/day-at-scale.yaml (a million clients, 24 h, ~10,000
  requests/s), every strategy once; wall time and peak resident memory of
  this process. Target: 60 s and 4 GB.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sim.progress import Progress

TARGET_RATIO = 100.0
TARGET_DAY_S = 60.0
TARGET_DAY_GB = 4.0


def _timed(  # type: ignore[no-untyped-def]
    engine: str, scenario, strategy: str, seed: int, slowdown: float = 0.0, clock: Callable[[], float] = time.perf_counter
) -> tuple[int, float]:
    """(requests, seconds of `clock`) of one replication; `slowdown` > 0 only for the regression
    gate's calibration (sim.bench.slowdown)."""
    from sim.bench.slowdown import slowed
    from sim.runner import replicate

    started = clock()
    with slowed(slowdown):
        out = replicate(scenario, engine, strategy, np.random.SeedSequence(seed), 0)
    return int(out.metrics["requests"]), clock() - started


def scaled(scenario_path: str, factor: int):  # type: ignore[no-untyped-def]
    """The scenario with `factor` times the clients and resolvers: big enough that the fast
    engine's fixed costs (building arrays, the DNS renewal) do not decide the ratio."""
    from sim.scenario import load_data, load_file

    doc = load_file(scenario_path).to_document()
    for cohort in doc["clients"]:
        if cohort.get("count"):
            cohort["count"] *= factor
    if doc.get("population"):
        doc["population"] *= factor
    for group in doc["dns"]["resolvers"]:
        group["count"] *= factor
    return load_data(doc, f"{scenario_path} x{factor}")


def ratio(scenario_path: str, repeats: int, factor: int, bar: Progress | None = None) -> dict:
    scenario = scaled(scenario_path, factor)
    rows = []
    for k in range(repeats):
        for strategy in scenario.strategies:
            model_n, model_s = _timed("des", scenario, strategy, k)
            # The fast side takes tens of milliseconds: its median of three steadies the ratio.
            fast_runs = [_timed("fast", scenario, strategy, k) for _ in range(3)]
            fast_n, fast_s = fast_runs[0][0], statistics.median(s for _, s in fast_runs)
            if bar is not None:
                bar.advance(f"ratio: {strategy} pair {k + 1}/{repeats}")
            rows.append({
                "strategy": strategy, "model_requests": model_n, "model_s": model_s, "fast_requests": fast_n,
                "fast_s": fast_s, "ratio": (fast_n / fast_s) / (model_n / model_s),
            })
    ratios = [r["ratio"] for r in rows]
    # per strategy: the engines' costs scale differently with each (cname_repoint's
    # per-client DNS work), so a median over both would describe neither
    per_strategy = {s: statistics.median(r["ratio"] for r in rows if r["strategy"] == s) for s in scenario.strategies}
    return {
        "per_strategy_median_ratio": per_strategy,
        "scenario": scenario_path, "clients_factor": factor, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
        "max_ratio": max(ratios), "target_ratio": TARGET_RATIO,
        "median_model_rate": statistics.median(r["model_requests"] / r["model_s"] for r in rows),
        "median_fast_rate": statistics.median(r["fast_requests"] / r["fast_s"] for r in rows), "runs": rows,
    }


def day(scenario_path: str, bar: Progress | None = None) -> dict:
    from sim.scenario import load_file

    scenario = load_file(scenario_path)
    started = time.perf_counter()
    runs = []
    for strategy in scenario.strategies:
        requests, seconds = _timed("fast", scenario, strategy, scenario.seed)
        runs.append({"strategy": strategy, "requests": requests, "wall_s": seconds})
        if bar is not None:
            bar.advance(f"day: {strategy}")
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "scenario": scenario_path, "wall_s": wall, "peak_rss_gb": peak_kb / 1024**2, "runs": runs,
        "target_wall_s": TARGET_DAY_S, "target_peak_gb": TARGET_DAY_GB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="failover-sim bench fast",
        description="The fast engine against the model (requests per wall second, same run) and on a day "
        "at scale (wall time, peak memory).",
        epilog="example:\n  failover-sim bench fast --repeats 3 --out results/bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="scenarios/elb-blowup.yaml", help="for the ratio")
    parser.add_argument("--day", default="scenarios/day-at-scale.yaml", help="the scale scenario")
    parser.add_argument("--repeats", type=int, default=3, help="pairs per strategy (median reported)")
    parser.add_argument("--clients-factor", type=int, default=20, help="clients and resolvers x this for the ratio")
    parser.add_argument("--out", default="results/bench", help="folder for the JSON result")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    for path in (args.scenario, args.day):
        if not Path(path).is_file():
            print(f"{path}: cannot read: no such file", file=sys.stderr)
            return 2
    from sim.scenario import load_file

    # one step per strategy of the day and per pair of the ratio
    steps = len(load_file(args.day).strategies) + args.repeats * len(load_file(args.scenario).strategies)
    with Progress(steps, "bench fast", "runs", quiet=args.quiet) as bar:
        # The day first: the peak memory figure is then the day's own.
        result = {"day": day(args.day, bar), "ratio": ratio(args.scenario, args.repeats, args.clients_factor, bar)}
    result.update(command="failover-sim bench fast " + " ".join(argv or []), python=platform.python_version(),
                  numpy=np.__version__, machine=platform.machine())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from sim.results.writer import write_json_atomic

    path = write_json_atomic(out / f"fast-{time.strftime('%Y%m%dT%H%M%S')}.json", result)
    d, r = result["day"], result["ratio"]
    print(f"day:    {d['wall_s']:.1f} s wall, peak {d['peak_rss_gb']:.2f} GB "
          f"(targets {TARGET_DAY_S:.0f} s, {TARGET_DAY_GB:.0f} GB); "
          + ", ".join(f"{x['strategy']} {x['requests']:,} requests in {x['wall_s']:.1f} s" for x in d["runs"]))
    print(f"ratio:  {r['scenario']} x{r['clients_factor']} clients: fast {r['median_fast_rate']:,.0f} vs model {r['median_model_rate']:,.0f} simulated requests/s: "
          f"{r['median_ratio']:,.0f}x median (min {r['min_ratio']:,.0f}x, max {r['max_ratio']:,.0f}x; "
          f"target >= {TARGET_RATIO:.0f}x)")
    print("        per strategy (median): " + ", ".join(f"{k} {v:,.0f}x" for k, v in r["per_strategy_median_ratio"].items()))
    print(f"saved:  {path}")
    return 0
