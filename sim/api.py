"""The public Python API: load a scenario, edit it, run it, sweep it, read results back.

Everything here is re-exported from `sim`::

    import sim

    scenario = sim.load("scenarios/elb-blowup.yaml")
    shorter = scenario.with_values({"dns.service_ttl": "60s", "duration": "10m"})
    results = sim.run(shorter, replications=2)
    results.summary_frame          # strategy, metric, mean, ci_low, ci_high
    results.plot_recovery_cdf(by="cohort")

The command line (sim/commands/) is built on these same functions
(`failover-sim run` calls `sim.run`, which delegates to `sim.runner.run`;
`failover-sim report` calls `write_report`, which reads a folder with
`open_results`). See docs/api.md for the reference.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.scenario import Scenario, ScenarioError, load_data, load_file

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from sim.analysis.report import Report
    from sim.results.reader import RunResults
    from sim.runner import Results

__all__ = [
    "ScenarioSource",
    "StoredResults",
    "FittedScenario",
    "available_engines",
    "fit_logs",
    "has_sweep",
    "load",
    "open_results",
    "run",
    "sweep",
    "write_report",
]

ScenarioSource = str | os.PathLike[str] | Mapping[str, Any] | Scenario


def load(source: ScenarioSource) -> Scenario:
    """A validated `Scenario` from a YAML file path, a dict (parsed YAML) or a Scenario.

    Raises `sim.scenario.ScenarioError` whose `problems` name the file, the
    field path and what was expected.

    >>> import sim
    >>> sim.load({"version": 1, "name": "tiny", "dns": {"zone": "example.com"},
    ...           "clients": [{"name": "web", "count": 10, "rate": "1/s"}],
    ...           "balancers": [{"name": "blue", "role": "active"},
    ...                         {"name": "green", "role": "standby"}]}).name
    'tiny'
    """
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return load_data(dict(source))
    if isinstance(source, str | os.PathLike):
        return load_file(source)
    raise TypeError(f"sim.load takes a path, a dict or a Scenario, got {type(source).__name__}")


def available_engines() -> list[str]:
    """The engines `run` accepts here (`des` always; `fast`, `lab` once they exist)."""
    from sim.runner import ENGINES

    return list(ENGINES)


def run(
    scenario: ScenarioSource,
    engine: str = "des",
    replications: int | None = None,
    strategies: Sequence[str] | None = None,
    seed: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    lab: Any = None,
) -> Results:
    """Run every runnable strategy of `scenario` for each replication, on common random numbers.

    `engine` is "des" (the model), "fast" or "lab"; for the lab, `lab` is a
    `sim.lab.world.LabOptions` (time scale K, clients scale, maximum resolvers)
    and `Results.scenario` is the effective scenario that ran.

    `scenario` may be a Scenario, a path or a dict (see `load`). `replications`
    and `seed` override the scenario's; `strategies` picks a subset (a
    strategy the zone rules refuse is an error when asked for by name, and
    skipped with its reason in `Results.refused` otherwise). `progress` is
    called as `progress(done, total, what)`.

    Returns `sim.runner.Results`: `.summary` (the summary.json dict),
    `.summary_frame` (tidy DataFrame), `.replications`, `.clients`,
    `.timeline` (DataFrames), `.table()`, `.plot_success_rate()`,
    `.plot_recovery_cdf(by="strategy"|"cohort")`, `.figures()`, `.write(dir)`.
    Raises `sim.runner.RunError` for input that cannot run.
    """
    from sim.runner import run as run_scenario

    return run_scenario(load(scenario), engine, replications, strategies, seed, progress, lab)


def has_sweep() -> bool:
    """Whether `sim.batch` (sweeps) is installed in this checkout."""
    return importlib.util.find_spec("sim.batch") is not None


def sweep(scenario: ScenarioSource, grid: Mapping[str, Sequence[Any]], **options: Any) -> pd.DataFrame:
    """Run `scenario` on every combination of `grid` (path -> values) and return a tidy DataFrame.

    Paths are those of `Scenario.with_values` (`{"dns.service_ttl": ["30s",
    "60s", "300s"]}`). Delegates to `sim.batch.sweep`, which defines the
    options (replications, engine, executor, ...) and the columns: one row
    per cell, strategy and replication, the swept values as columns.

    Raises RuntimeError when `sim.batch` is not installed in this checkout.
    """
    if not has_sweep():
        raise RuntimeError(
            "sim.sweep needs sim.batch, which is not in this checkout yet; "
            "loop over sim.run with Scenario.with_values instead"
        )
    batch = importlib.import_module("sim.batch")
    return batch.sweep(load(scenario), dict(grid), **options)


@dataclass(frozen=True)
class StoredResults:
    """A results folder read back, with the same reading surface as `sim.runner.Results`.

    `.summary` (dict), `.summary_frame`, `.clients`, `.timeline`,
    `.replications` (DataFrames), `.manifest`, `.table()`,
    `.plot_success_rate()`, `.plot_recovery_cdf(by=)`, `.figures()`.
    """

    run: RunResults

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def summary(self) -> dict[str, Any]:
        return self.run.summary

    @property
    def summary_frame(self) -> pd.DataFrame:
        return self.run.summary_frame

    @property
    def manifest(self) -> dict[str, Any]:
        return self.run.manifest

    @property
    def clients(self) -> pd.DataFrame:
        return self.run.clients

    @property
    def timeline(self) -> pd.DataFrame:
        return self.run.timeline

    @property
    def replications(self) -> pd.DataFrame:
        return self.run.replications

    @property
    def name(self) -> str:
        """The scenario's name."""
        return str(self.summary.get("scenario") or self.manifest.get("scenario", {}).get("name", "?"))

    @property
    def engine(self) -> str:
        return str(self.summary.get("engine") or self.manifest.get("engine", "?"))

    @property
    def scenario(self) -> Scenario | None:
        """The scenario as it ran (from manifest.json), or None if it no longer validates."""
        doc = self.manifest.get("scenario")
        if not isinstance(doc, dict):
            return None
        try:
            return load_data(doc, str(self.path / "manifest.json"))
        except ScenarioError:
            return None

    @property
    def fault_times(self) -> list[float]:
        """Start of each fault, in seconds from 0."""
        times = self.summary.get("fault_times")
        if times is None:
            scenario = self.scenario
            times = [f.at for f in scenario.faults] if scenario else []
        return [float(t) for t in times]

    def table(self) -> str:
        from sim.analysis import format_table

        return format_table(self.summary)

    def _labels(self) -> dict[str, Any]:
        from sim.analysis.figures import fault_label

        scenario = self.scenario
        return {"scenario": self.name, "date": self.manifest.get("created"), "fault_times": self.fault_times,
                "fault_labels": [fault_label(f) for f in scenario.faults] if scenario is not None else None}

    def plot_success_rate(self) -> Figure:
        from sim.analysis.figures import plot_success_rate

        return plot_success_rate(self.timeline, **self._labels())

    def plot_recovery_cdf(self, by: str = "strategy") -> Figure:
        from sim.analysis.figures import plot_recovery_cdf

        return plot_recovery_cdf(self.clients, scenario=self.name, by=by, date=self.manifest.get("created"))

    def figures(self) -> dict[str, bytes]:
        """The run's figures as PNG bytes, drawn again from the tables (same names as `Results.figures`)."""
        from sim.analysis.figures import run_figures

        scenario = self.scenario
        return run_figures(self.timeline, self.clients, self.summary, **self._labels(), targets=self.run.targets,
                           planned_at=scenario.planned_at if scenario is not None else None)

    @property
    def targets(self) -> pd.DataFrame:
        """Where first attempts went, per second and cohort (docs/scenario.md, targets.parquet)."""
        return self.run.targets

    @property
    def lacks(self) -> tuple[str, ...]:
        """What this folder lacks because an older version wrote it (e.g. "targets.parquet")."""
        return self.run.lacks


def open_results(path: str | os.PathLike[str]) -> StoredResults:
    """Read the results folder at `path` (written by `failover-sim run` or `Results.write`).

    Raises FileNotFoundError when the folder or one of its files is missing,
    ValueError naming the file when one is corrupt.
    """
    from sim.results.reader import open_run

    return StoredResults(open_run(path))


def write_report(folder: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Write report.html and report.md (figures under report-figures/) for a results folder
    (`failover-sim run`, `Results.write`) or a sweep folder (`sim.sweep(..., out=)`); return both paths.

    `out` defaults to `folder` itself. Each file is written atomically. Raises
    FileNotFoundError when `folder` is neither, ValueError naming a corrupt file.
    """
    from sim.analysis.report import FIGURE_DIR, render_html, render_markdown
    from sim.results.writer import write_bytes_atomic

    report = _report(Path(folder))
    target = Path(out) if out is not None else Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    if report.figures:
        (target / FIGURE_DIR).mkdir(exist_ok=True)
        for name, png in report.figures.items():
            write_bytes_atomic(target / FIGURE_DIR / f"{name}.png", png)
    html_path = write_bytes_atomic(target / "report.html", render_html(report).encode("utf-8"))
    md_path = write_bytes_atomic(target / "report.md", render_markdown(report).encode("utf-8"))
    return Path(html_path), Path(md_path)


def _report(path: Path) -> Report:
    """The report of a results folder, or of a sweep folder (sweep.parquet / summary.parquet)."""
    from sim.analysis.report import run_report, sweep_report

    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such results folder")
    if (path / "summary.json").is_file():
        run = open_results(path)
        return run_report(run.summary, run.manifest, run.clients, run.figures(), name=run.name, engine=run.engine,
                          folder=path)
    if (path / "sweep.parquet").is_file() or (path / "summary.parquet").is_file():
        return sweep_report(*_read_sweep(path), folder=path)
    raise FileNotFoundError(
        f"{path} is neither a results folder (summary.json, clients.parquet, ...) "
        "nor a sweep folder (sweep.parquet, summary.parquet)"
    )


def _read_sweep(path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, Any]]:
    """A sweep folder's tables: sweep.parquet, summary.parquet (None when absent) and manifest.json ({})."""
    import json

    import pandas as pd

    tables = [pd.read_parquet(path / name) if (path / name).is_file() else None
              for name in ("sweep.parquet", "summary.parquet")]
    manifest: dict[str, Any] = {}
    if (path / "manifest.json").is_file():
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return tables[0], tables[1], manifest


@dataclass(frozen=True)
class FittedScenario:
    """What `fit_logs` returns: the scenario (loaded, so valid), its YAML text with the intervals
    as comments, the estimates (`sim.fit.run.Fit`), and the files written (empty without `out`)."""

    scenario: Scenario
    text: str
    fit: Any
    written: tuple[Path, ...] = ()


def fit_logs(
    access_logs: Sequence[str | os.PathLike[str]],
    dns_logs: Sequence[str | os.PathLike[str]] = (),
    *,
    service: str | None = None,
    ttl: str | float | None = None,
    access_format: str | None = None,
    dns_format: str | None = None,
    name: str = "fitted",
    out: str | os.PathLike[str] | None = None,
    time_scale: float = 1.0,
    start_hour: int | None = None,
    duration: str | float | None = None,
) -> FittedScenario:
    """A scenario fitted to access logs and DNS query logs (docs/fit.md)::

        fitted = sim.fit_logs(["alb.log.gz"], ["queries.log"], service="www.example.com", ttl="60s")
        sim.run(fitted.scenario)

    `ttl` is the service record's TTL (a duration; guessed from the DNS log when
    None). `time_scale`: K of a lab run's logs (`run --engine lab --time-scale K
    --keep`), so what is fitted is in scenario time. `start_hour`: the hour of the day (the
    logs' clock) the run's time 0 stands for, whose traffic the faults reproduce (default:
    the busiest hour); `duration`: the run's length (default 20m), which they cover. With `out`, writes the scenario there and the report (fit-report.md,
    fit-report.html, figures/) beside it. Raises `sim.fit.formats.LogError`
    naming a file that cannot be used at all; malformed lines are counted
    (`fit.files`), never raised.
    """
    import yaml

    from sim.fit.report import write_report as write_fit_report
    from sim.fit.run import fit
    from sim.fit.writer import scenario_text
    from sim.results.writer import write_bytes_atomic
    from sim.scenario.units import parse_duration

    seconds = None if ttl is None else parse_duration(ttl)
    result = fit(access_logs, dns_logs, service=service, ttl=seconds, access_format=access_format,
                 dns_format=dns_format, time_scale=time_scale)
    run_s = {} if duration is None else {"duration": parse_duration(duration)}
    text = scenario_text(result, service=service, name=name, start_hour=start_hour, **run_s)
    scenario = load_data(yaml.safe_load(text))
    written: tuple[Path, ...] = ()
    if out is not None:
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, text.encode("utf-8"))
        written = (target, *write_fit_report(result, target.parent, target.stem))
    return FittedScenario(scenario, text, result, written)
