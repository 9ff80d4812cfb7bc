"""Running a scenario: replications, seeds, the results folder, the table.

`run()` is what `sim.run` delegates to; the `failover-sim run` command
(sim/commands/run.py) is a thin layer on top of that.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim._version import __version__
from sim.replication import ReplicationOutput
from sim.results.schema import ADDED
from sim.scenario import Scenario, ScenarioError, strategy_refusals, zone_violations
from sim.scenario.build import compile as compile_strategy
from sim.scenario.limits import MAX_REPLICATIONS, REPLICATIONS_REASON

ENGINES = ("des", "fast", "lab")
Progress = Callable[[int, int, str], None]


def replicate(scenario: Scenario, engine: str, strategy: str, seed: np.random.SeedSequence, replication: int = 0,
              lab: object = None):  # type: ignore[no-untyped-def]
    """One replication of one strategy on one engine: a ReplicationOutput
    (metrics, clients, timeline). Every engine takes the same seed sequence, and
    the strategy is decided once (sim.scenario.build.compile) for all of them."""
    deployment = compile_strategy(scenario, strategy)
    if engine == "lab":
        from sim.lab import replicate as lab_replicate
        from sim.lab.procs import LabError
        from sim.model.trace import trace

        # The lab replays the model's draws for this seed; the run layer hands them over,
        # so the lab itself never imports the model.
        replayed = trace(scenario, deployment, seed)
        try:
            return lab_replicate(scenario, deployment, seed, replication, lab, trace=replayed)  # type: ignore[arg-type]
        except LabError as exc:
            raise RunError(str(exc)) from None
    return _engine(engine).simulate(scenario, deployment, seed, replication)


def _engine(engine: str):  # type: ignore[no-untyped-def]
    """The engine's package: each exposes `simulate` (or, the lab, `replicate`) and `unsupported`."""
    if engine == "des":
        import sim.model as module
    elif engine == "fast":
        import sim.fast as module
    elif engine == "lab":
        import sim.lab as module
    else:
        raise RunError(f"engine {engine!r} is not available; expected one of {list(ENGINES)}")
    return module


_ENGINE_NAMES = {"fast": "the fast engine", "lab": "the lab"}


def check_engine(scenario: Scenario, engine: str, strategies: Sequence[str] | None = None) -> None:
    """Raise RunError if `engine` cannot run `scenario` with `strategies` (what it does not model, named)."""
    module = _engine(engine)
    reasons = module.unsupported(scenario, list(strategies) if strategies is not None else None)
    if not reasons:
        return
    # One reason a line, each said once, a cohort also by its name (a population file's
    # cohorts are not in the scenario the user wrote); then what does run.
    lines = [f"  - {_cohorts_named(scenario, r)}" for r in dict.fromkeys(reasons)]
    wanted = list(strategies) if strategies is not None else list(scenario.strategies)
    runs = [s for s in wanted if not module.unsupported(scenario, [s])] if len(wanted) > 1 else []
    hint = "use --engine des" + (f", or run {', '.join(runs)} alone: "
                                 + " ".join(f"--strategy {s}" for s in runs) if runs else "")
    raise RunError(f"{_ENGINE_NAMES.get(engine, 'the model')} cannot run this scenario:\n"
                   + "\n".join(lines) + f"\n{hint}")


def _cohorts_named(scenario: Scenario, reason: str) -> str:
    """`reason` with each `clients[i]...` field followed by the cohort's name."""
    def named(match: re.Match[str]) -> str:
        i = int(match.group(1))
        name = scenario.clients[i].name if i < len(scenario.clients) else None
        return match.group(0) + (f" (cohort {name})" if name else "")
    return re.sub(r"clients\[(\d+)\](?:\.[A-Za-z_]+)*", named, reason)


class RunError(Exception):
    """Input that cannot be run (exit status 2 at the command line)."""


@dataclass
class Results:
    """Everything one run produced, in memory; `write()` puts it in a folder."""

    scenario: Scenario
    engine: str
    seed: int
    summary: dict
    replications: pd.DataFrame
    clients: pd.DataFrame
    timeline: pd.DataFrame
    manifest: dict
    refused: dict[str, str] = field(default_factory=dict)
    # Where first attempts went, per second and cohort (empty from an engine
    # that does not track targets).
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def summary_frame(self) -> pd.DataFrame:
        from sim.results.reader import summary_frame

        return summary_frame(self.summary)

    def table(self) -> str:
        from sim.analysis import format_table

        return format_table(self.summary)

    def _labels(self) -> dict:
        from sim.analysis.figures import fault_label

        return {"scenario": self.scenario.name, "date": self.manifest.get("created"),
                "fault_times": [f.at for f in self.scenario.faults],
                "fault_labels": [fault_label(f) for f in self.scenario.faults]}

    def plot_success_rate(self):  # type: ignore[no-untyped-def]
        from sim.analysis.figures import plot_success_rate

        return plot_success_rate(self.timeline, **self._labels())

    def plot_recovery_cdf(self, by: str = "strategy"):  # type: ignore[no-untyped-def]
        from sim.analysis.figures import plot_recovery_cdf

        return plot_recovery_cdf(self.clients, scenario=self.scenario.name, by=by, date=self.manifest.get("created"))

    def figures(self) -> dict[str, bytes]:
        from sim.analysis.figures import run_figures

        return run_figures(self.timeline, self.clients, self.summary, **self._labels(), targets=self.targets,
                           planned_at=self.scenario.planned_at)

    def write(self, out_dir: str | Path) -> Path:
        from sim.results.writer import write_run

        return write_run(
            Path(out_dir),
            summary=self.summary,
            clients=self.clients,
            timeline=self.timeline,
            replications=self.replications,
            manifest=self.manifest,
            figures=self.figures(),
            targets=self.targets if len(self.targets.columns) else None,
        )


def runnable_strategies(scenario: Scenario, wanted: Sequence[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The strategies that can run, and the reason for each one the zone rules refuse."""
    violations = zone_violations(scenario)
    if violations:
        raise RunError("the zone breaks the CNAME rules: " + "; ".join(str(v) for v in violations))
    refusals = {k: str(v[0]) for k, v in strategy_refusals(scenario).items() if v}
    if wanted:
        unknown = [s for s in wanted if s not in scenario.strategies]
        if unknown:
            raise RunError(f"strategy {unknown[0]!r} is not in the scenario's strategies {scenario.strategies}")
        refused = [s for s in wanted if s in refusals]
        if refused:
            raise RunError(f"strategy {refused[0]} is refused: {refusals[refused[0]]}")
        return list(wanted), {}
    runnable = [s for s in scenario.strategies if s not in refusals]
    if not runnable:
        raise RunError("every strategy is refused by the zone rules: " + "; ".join(refusals.values()))
    return runnable, refusals


class _Collected:
    """The tables of a run's replications, as they come, tagged with strategy and replication."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.tables: dict[str, list[pd.DataFrame]] = {"clients": [], "timeline": [], "targets": []}

    def add(self, strategy: str, k: int, out: ReplicationOutput) -> None:
        # An engine that does not track targets yet gives no changed_at.
        self.rows.append({"strategy": strategy, "replication": k, "changed_at": math.nan, **out.metrics})
        for name, frame in (("clients", out.clients), ("timeline", out.timeline), ("targets", out.targets)):
            if frame is not None:
                frame = frame.copy()
                frame.insert(0, "replication", k)
                frame.insert(0, "strategy", strategy)
                self.tables[name].append(frame)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        clients = pd.concat(self.tables["clients"], ignore_index=True)
        for column in ADDED["clients"]:
            if column not in clients:
                clients[column] = math.nan  # an engine that does not track targets yet
        targets = self.tables["targets"]
        return (pd.DataFrame(self.rows), clients, pd.concat(self.tables["timeline"], ignore_index=True),
                pd.concat(targets, ignore_index=True) if targets else pd.DataFrame())


def run(
    scenario: Scenario,
    engine: str = "des",
    replications: int | None = None,
    strategies: Sequence[str] | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    lab: object = None,
) -> Results:
    """Run every (runnable) strategy for every replication, on common random numbers.

    Replication k of every strategy gets the same child of
    `SeedSequence(seed)`, so strategies are compared on identical arrivals.
    With engine="lab", `lab` is a sim.lab.world.LabOptions; the scenario that
    runs (and is recorded in the manifest) is the lab's effective scenario.
    """
    check_engine(scenario, engine)
    if engine == "lab":
        scenario, lab = _lab_scenario(scenario, lab)
    from sim.analysis import summarize
    from sim.analysis.planning import add_planning
    from sim.results.manifest import manifest as make_manifest

    # The lab runs in (scaled) real time: one replication unless asked for more.
    reps = replications or (1 if engine == "lab" else scenario.replications)
    if reps > MAX_REPLICATIONS:
        # The scenario's own value is bounded when it loads; an override (--replications) is bounded here.
        raise RunError(f"replications: at most {MAX_REPLICATIONS:,} ({REPLICATIONS_REASON}), got {reps:,}")
    seed = scenario.seed if seed is None else seed
    names, refused = runnable_strategies(scenario, strategies)
    check_engine(scenario, engine, names)
    lab = _lab_takeover(scenario, names, lab) if engine == "lab" else lab
    children = np.random.SeedSequence(seed).spawn(reps)
    collected = _Collected()
    started = time.perf_counter()
    total, done = reps * len(names), 0
    for k, child in enumerate(children):
        # The lab runs in real time: its strategies run side by side, each its own world.
        concurrent = _lab_side_by_side(scenario, names, child, k, lab) if engine == "lab" else {}
        for strategy in names:
            # A fresh copy of the child per strategy: each must draw the same numbers.
            out = concurrent.get(strategy) or replicate(
                scenario, engine, strategy, np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key), k, lab
            )
            collected.add(strategy, k, out)
            done += 1
            if progress:
                progress(done, total, f"{strategy} replication {k + 1}/{reps}")
    wall = time.perf_counter() - started
    replications_df, clients_df, timeline_df, targets_df = collected.frames()
    summary = summarize(
        replications_df,
        clients_df,
        targets=targets_df,
        stale_at=scenario.report.stale_at,
        scenario=scenario.name,
        engine=engine,
        seed=seed,
        version=__version__,
        fault_times=[f.at for f in scenario.faults],
    )
    try:
        summary = add_planning(summary, replications_df, scenario)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if refused:
        summary["refused"] = refused
    doc = scenario.to_document()
    manifest = make_manifest(doc, engine=engine, wall_time_s=wall, seed=seed, replications=reps)
    if engine in ("des", "lab"):
        from sim.replication import DRAWS

        manifest["draws"] = DRAWS  # the lab replays the model's draws (sim.model.trace)
    if engine == "lab":
        manifest["lab"] = {"time_scale": lab.time_scale, "clients_scale": lab.clients_scale,  # type: ignore[attr-defined]
                           "max_resolvers": lab.max_resolvers,  # type: ignore[attr-defined]
                           "takeover": lab.takeover,  # type: ignore[attr-defined]
                           "note": "scenario is the effective scenario that ran; run the model on it to compare"}
    return Results(scenario, engine, seed, summary, replications_df, clients_df, timeline_df, manifest, refused,
                   targets_df)


def _lab_scenario(scenario: Scenario, lab: object) -> tuple[Scenario, object]:
    """The scenario as the lab runs it (scaled time and clients), and the lab's options."""
    from sim.lab.procs import LabError
    from sim.lab.world import LabOptions, effective, time_scale_problems

    lab = lab or LabOptions()
    problems = time_scale_problems(scenario, lab.time_scale)  # type: ignore[attr-defined]
    if problems:
        raise RunError("; ".join(problems))
    try:
        return effective(scenario, lab), lab  # type: ignore[arg-type]
    except (LabError, ScenarioError) as exc:
        raise RunError(str(exc)) from None


def _lab_takeover(scenario: Scenario, names: list[str], lab: object) -> object:
    """The lab's options with the takeover mode decided once, here: a moving address
    (eip_remap, vrrp) in namespaces as root, else on loopback, said once (the
    strategies' worlds, run in forked workers, inherit that it was said)."""
    import dataclasses

    from sim.lab.procs import LabError
    from sim.lab.world import takeover_mode

    if not any(compile_strategy(scenario, s).published.moves_address for s in names):
        return lab
    try:
        return dataclasses.replace(lab, takeover=takeover_mode(lab))  # type: ignore[type-var]
    except LabError as exc:
        raise RunError(str(exc)) from None


def _lab_side_by_side(scenario: Scenario, names: list[str], child: np.random.SeedSequence, k: int, lab: object) -> dict:
    """One lab replication of every strategy at once, a process each (worlds on separate
    loopback blocks); sequential on a one-core machine."""
    import os

    if len(names) < 2 or (os.cpu_count() or 1) < 2:
        return {}
    import signal

    from sim.lifeline import end_pool, pool

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    workers = pool(len(names))
    try:
        futures = {
            s: workers.submit(replicate, scenario, "lab", s, np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key), k, lab)
            for s in names
        }
        return {s: f.result() for s, f in futures.items()}
    except BaseException:
        # Ctrl-C or SIGTERM here: each worker stops its own world (sim.lab.procs) on
        # SIGTERM, then ends; were this process killed outright, the workers would get
        # that SIGTERM from the kernel (sim.lifeline).
        end_pool(workers)
        raise
    finally:
        workers.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)

