"""Sweeps: a scenario on every combination of a grid, many replications, local or on Dask.

`sweep(scenario, {"dns.service_ttl": ["30s", "300s"]}, replications=5)`
returns the tidy table (one row per cell, strategy and replication, the swept
values as columns) and, with `out=`, keeps it resumable on disk. The command is
`failover-sim sweep` (sim/commands/sweep.py); docs/scale-out.md shows Dask clusters.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.batch.grid import Cell, GridError, cells, parse_set, unit_seed
from sim.batch.store import StoreError, SweepStore
from sim.batch.work import run_unit
from sim.scenario import Scenario

__all__ = ["GridError", "StoreError", "parse_set", "summarize_sweep", "sweep"]
Progress = Callable[[int, int, float], None]


def sweep(
    scenario: Scenario,
    grid: dict[str, Sequence[Any]],
    replications: int | None = None,
    engine: str = "des",
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run every (cell, strategy, replication) and return the tidy table, sorted."""
    from sim.runner import check_engine, runnable_strategies

    reps = replications or scenario.replications
    grid = {path: list(values) for path, values in grid.items()}
    todo_cells = cells(scenario, grid)
    names, _ = runnable_strategies(scenario)
    check_engine(scenario, engine, names)
    units = [(c, s, k) for c in todo_cells for s in names for k in range(reps)]
    store = None
    if out is not None:
        from sim.results.manifest import scenario_sha256

        spec = {"scenario_sha256": scenario_sha256(scenario.to_document()), "grid": grid, "replications": reps,
                "engine": engine, "strategies": names}
        store = SweepStore(Path(out), spec)
        store.open()
        units = [u for u in units if not store.done(u[0].index, u[1], u[2])]
    rows: list[dict[str, Any]] = []
    total, started = len(units), time.perf_counter()

    def finished(row: dict[str, Any]) -> None:
        if store is not None:
            store.put(row)
        rows.append(row)
        if progress:
            progress(len(rows), total, time.perf_counter() - started)

    def args(unit: tuple[Cell, str, int]) -> tuple:
        cell, strategy, k = unit
        seed = unit_seed(scenario.seed, len(todo_cells), cell.index, reps, k)
        return (cell.scenario, engine, strategy, seed, k, cell.index, cell.values)

    if executor == "dask":
        _run_dask(units, args, finished, workers, scheduler)
    elif executor == "local":
        _run_local(units, args, finished, workers)
    else:
        raise ValueError(f"executor {executor!r}: expected local or dask")
    table = store.table() if store is not None else pd.DataFrame(rows)
    if len(table):
        table = table.sort_values(["cell", "strategy", "replication"], kind="stable").reset_index(drop=True)
    if store is not None:
        _write(Path(out) / "sweep.parquet", table)  # type: ignore[arg-type]
        _write(Path(out) / "summary.parquet", summarize_sweep(table, list(grid)))  # type: ignore[arg-type]
    return table


def _write(path: Path, frame: pd.DataFrame) -> None:
    import io

    from sim.results.writer import write_bytes_atomic

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes_atomic(path, buffer.getvalue())


def _run_local(units, args, finished, workers: int | None) -> None:  # type: ignore[no-untyped-def]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(units) <= 1:
        for unit in units:
            finished(run_unit(*args(unit)))
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, initializer=_die_with, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(run_unit, *args(u)) for u in units]
        try:
            for future in as_completed(futures):
                finished(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _die_with(parent: int) -> None:
    """In a pool worker: end when the sweep's process ends, however it ends.

    A worker waits on its queue and outlived a parent killed by SIGKILL or an
    unhandled SIGTERM (issue 21: a killed `sweep --workers 2` left both
    running). Linux sends the worker SIGKILL when its parent dies
    (prctl PR_SET_PDEATHSIG); elsewhere nothing changes.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _run_dask(units, args, finished, workers: int | None, scheduler: str | None) -> None:  # type: ignore[no-untyped-def]
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ValueError("--executor dask needs dask[distributed]: pip install '.[dask]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(run_unit, *args(u), pure=False) for u in units]
        for future in as_completed(futures):
            finished(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def summarize_sweep(table: pd.DataFrame, paths: list[str]) -> pd.DataFrame:
    """Per cell and strategy: mean and 95% interval of availability and recovery mean."""
    from sim.analysis.stats import mean_ci95

    rows = []
    if table.empty:
        return pd.DataFrame()
    for (cell, strategy), frame in table.groupby(["cell", "strategy"], sort=True):
        row: dict[str, Any] = {"cell": cell, **{p: frame[p].iloc[0] for p in paths}, "strategy": strategy,
                               "replications": len(frame)}
        for metric in ("availability", "recovery_mean", "recovery_p50", "never_recovered"):
            mean, low, high = mean_ci95(frame[metric].to_numpy(dtype=float))
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean, low, high
        rows.append(row)
    return pd.DataFrame(rows)


def bar() -> Progress:
    def show(done: int, total: int, elapsed: float) -> None:
        left = elapsed / done * (total - done) if done else 0.0
        filled = int(30 * done / max(total, 1))
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} units, {elapsed:.0f}s, ~{left:.0f}s left   ",
              end="", file=sys.stderr, flush=True)

    return show
