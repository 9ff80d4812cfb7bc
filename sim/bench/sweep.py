"""Sweep scaling: a 16-cell sweep on 2 workers against 1, locally and on a Dask LocalCluster.

Each configuration runs the same 48 units (the default scenario, 4 TTLs x 4
detection intervals, one strategy, 3 replications each, the model engine);
1 and 2 workers alternate within one run so machine noise hits both
(docs/benchmarks.md). The figure is the speed-up, wall(1) / wall(2), per
executor; the target is 1.7 on this 2-core machine. Dask's time includes
starting and closing its LocalCluster, as a user's sweep does.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

from sim.progress import Progress

TARGET_SPEEDUP = 1.7
REPLICATIONS = 3  # 48 units of about 0.3 s: long enough that starting a Dask cluster is not the figure
GRID = {"dns.service_ttl": ["30s", "60s", "120s", "300s"], "failover.detection.interval": ["5s", "10s", "20s", "30s"]}


def timed(executor: str, workers: int) -> float:
    from sim.batch import sweep
    from sim.scenario import load_file

    scenario = load_file("scenarios/elb-blowup.yaml").replace(strategies=["cname_repoint"], expect=[])
    started = time.perf_counter()
    table = sweep(scenario, GRID, replications=REPLICATIONS, engine="des", executor=executor, workers=workers)
    assert len(table) == 16 * REPLICATIONS
    return time.perf_counter() - started


def measure(repeats: int, bar: Progress | None = None) -> dict:
    out: dict = {}
    for executor in ("local", "dask"):
        pairs = []
        for k in range(repeats):
            one, two = timed(executor, 1), timed(executor, 2)
            if bar is not None:
                bar.advance(f"{executor} pair {k + 1}/{repeats}")
            pairs.append({"one_worker_s": one, "two_workers_s": two, "speedup": one / two})
        out[executor] = {"median_speedup": statistics.median(p["speedup"] for p in pairs), "runs": pairs}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="failover-sim bench sweep",
                                     description="A 16-cell sweep: 2 workers against 1, local and Dask.",
                                     epilog="example:\n  failover-sim bench sweep --repeats 3",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of 1- and 2-worker sweeps per executor (median reported)")
    parser.add_argument("--out", default="results/bench", help="folder for the JSON result")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    with Progress(2 * args.repeats, "bench sweep", "pairs of sweeps", quiet=args.quiet) as bar:
        result = measure(args.repeats, bar)
    result.update(command="failover-sim bench sweep " + " ".join(argv or []), target_speedup=TARGET_SPEEDUP,
                  python=platform.python_version(), machine=platform.machine())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from sim.results.writer import write_json_atomic

    path = write_json_atomic(out / f"sweep-{time.strftime('%Y%m%dT%H%M%S')}.json", result)
    for executor in ("local", "dask"):
        r = result[executor]
        walls = ", ".join(f"{p['one_worker_s']:.1f}/{p['two_workers_s']:.1f} s" for p in r["runs"])
        print(f"{executor}: 2 workers {r['median_speedup']:.2f}x one (median; 1/2-worker walls {walls}; "
              f"target >= {TARGET_SPEEDUP})")
    print(f"saved:  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
