"""Sweeps: a scenario on every combination of a grid, many replications, local or on Dask.

`sweep(scenario, {"dns.service_ttl": ["30s", "300s"]}, replications=5)`
returns the tidy table (one row per cell, strategy and replication, the swept
values as columns) and, with `out=`, keeps it resumable on disk. The command is
`failover-sim sweep` (sim/commands/sweep.py); docs/scale-out.md shows Dask clusters.
"""

from __future__ import annotations

import os
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
    if progress:
        # the work is known now (after a resume, what is left): say so before the first unit ends
        progress(0, total, 0.0)

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
        _write_manifest(Path(out), scenario, grid, engine, reps, time.perf_counter() - started)  # type: ignore[arg-type]
    return table


def _write_manifest(out: Path, scenario: Scenario, grid: dict[str, list[Any]], engine: str, reps: int,
                    wall: float) -> None:
    """manifest.json as a run's (the scenario, its name and checksum, version, commit) plus the
    grid: what the report of the folder names it by and what reproduces it."""
    from sim.results.manifest import manifest
    from sim.results.writer import to_jsonable, write_json_atomic

    doc = manifest(scenario.to_document(), engine=engine, wall_time_s=wall, seed=scenario.seed, replications=reps)
    write_json_atomic(out / "manifest.json", dict(doc, grid=to_jsonable(grid)))


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
    from concurrent.futures import as_completed

    from sim.lifeline import end_pool, pool

    # The workers end with the sweep: on Ctrl-C or a failure here (end_pool), and on the
    # sweep's death by a signal, SIGKILL included (sim.lifeline).
    workers_pool = pool(workers)
    try:
        futures = [workers_pool.submit(run_unit, *args(u)) for u in units]
        for future in as_completed(futures):
            finished(future.result())
    except BaseException:
        end_pool(workers_pool)
        raise
    workers_pool.shutdown(wait=True)


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
    """Per cell and strategy: mean and 95% interval of the main metrics.

    The intervals are the summary's (sim.analysis.stats): Wilson for the shares
    (availability over requests, never_recovered over affected clients), the
    log-scale interval for recovery times; a recovery percentile beyond the run
    in some replication is infinite (its upper bound, or all of it).
    """
    from sim.analysis.planning import PLANNING_METRICS, planning_ci95
    from sim.analysis.stats import positive_ci95, share_ci95

    rows = []
    if table.empty:
        return pd.DataFrame()
    trials = {"availability": "requests", "never_recovered": "clients_affected"}
    for (cell, strategy), frame in table.groupby(["cell", "strategy"], sort=True):
        row: dict[str, Any] = {"cell": cell, **{p: frame[p].iloc[0] for p in paths}, "strategy": strategy,
                               "replications": len(frame)}
        planning = [m.replace(".", "_") for m in PLANNING_METRICS if m.replace(".", "_") in frame.columns]
        latency = [m for m in ("latency_ms_p50", "latency_ms_p99") if m in frame.columns]  # advise can target p99
        for metric in ("availability", "recovery_mean", "recovery_p50", "recovery_p99", "never_recovered", *latency,
                       *planning):
            series = frame[metric].to_numpy(dtype=float)
            if metric in trials:
                mean, low, high = share_ci95(series, frame[trials[metric]].to_numpy(dtype=float))
            elif metric in planning:
                # as the summary's (sim.analysis.planning): log scale, availability as 1 - unavailability
                mean, low, high = planning_ci95(metric.replace("_", ".", 1), series)
            else:
                mean, low, high = positive_ci95(series)
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean, low, high
        rows.append(row)
    return pd.DataFrame(rows)
