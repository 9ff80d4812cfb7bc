"""`failover-sim sweep`: a scenario over a grid of values (`sim.sweep`), resumable under --out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sim
from sim.commands._common import EXIT_OK, EXIT_USAGE, print_problems
from sim.progress import Progress

NAME = "sweep"
HELP = "a scenario over a grid of values, many replications, local or on Dask (resumable)"
DESCRIPTION = (
    "Run every combination of the --set values, every strategy and replication. Seeds come from "
    "the scenario's seed (SeedSequence.spawn), so results do not depend on the executor or the worker count. "
    "Finished units are kept under --out: run the same command again to resume. Writes sweep.parquet "
    "(one row per cell, strategy, replication) and summary.parquet (means with 95% intervals)."
)
EPILOG = (
    "examples:\n  failover-sim sweep scenarios/elb-blowup.yaml --set dns.service_ttl=30s,60s,300s "
    "--replications 5 --out results/ttl-sweep\n"
    "  failover-sim sweep scenarios/elb-blowup.yaml --set dns.service_ttl=30s,300s "
    "--set failover.detection.interval=10s,30s --engine fast --executor dask --workers 2 --out results/grid\n"
    "  failover-sim sweep ... --executor dask --scheduler tcp://scheduler:8786 --out results/big"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("scenario", help="the scenario file (YAML)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=V1,V2,...", dest="sets",
                   help="a scenario path and its values (repeatable: the grid is every combination)")
    p.add_argument("--replications", type=int, help="override the scenario's replications")
    p.add_argument("--engine", default="des", choices=["des", "fast"],
                   help="des: the SimPy model (reference); fast: the numpy engine (default: %(default)s)")
    p.add_argument("--executor", default="local", choices=["local", "dask"],
                   help="local: a process pool; dask: a Dask cluster (default: %(default)s)")
    p.add_argument("--scheduler", help="dask: the scheduler's address (default: start a LocalCluster)")
    p.add_argument("--workers", type=int, help="processes (local) or LocalCluster workers (default: CPU count)")
    p.add_argument("--out", required=True, help="folder for the units and tables (resumable)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace) -> int:
    from sim.batch import GridError, StoreError, parse_set, summarize_sweep

    path = Path(args.scenario)
    if not path.is_file():
        print(f"{path}: cannot read: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        scenario = sim.load(path)
        grid = dict(parse_set(option) for option in args.sets)
        if args.replications is not None and args.replications < 1:
            raise GridError(f"--replications {args.replications}: expected a whole number >= 1")
        progress = _Units(f"sweep {scenario.name}", args.quiet)
        try:
            table = sim.sweep(scenario, grid, replications=args.replications, engine=args.engine,
                              executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                              out=args.out, progress=progress)
        finally:
            progress.close()
    except sim.ScenarioError as exc:
        print_problems(f"{path}: cannot sweep: the scenario is invalid", exc.problems)
        return EXIT_USAGE
    except (GridError, StoreError, sim.RunError, ValueError) as exc:
        print(f"{path}: cannot sweep: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from sim.analysis.report import sweep_summary_table

    # as the report shows it: each value beside its interval, shares in percent
    print(sweep_summary_table(summarize_sweep(table, list(grid))).to_string(index=False))
    print(f"\nunits: {len(table)}; tables: {Path(args.out) / 'sweep.parquet'}, {Path(args.out) / 'summary.parquet'}")
    return EXIT_OK


class _Units:
    """The sweep's progress callback (done, total, elapsed) as a sim.progress bar, made once the
    sweep knows how many units are left to run."""

    def __init__(self, what: str, quiet: bool) -> None:
        self.what, self.quiet = what, quiet
        self.bar: Progress | None = None

    def __call__(self, done: int, total: int, elapsed: float) -> None:
        if self.bar is None:
            self.bar = Progress(total, self.what, "units", quiet=self.quiet)
        self.bar.update_to(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
