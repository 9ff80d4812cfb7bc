"""The cheapest design that meets an objective (`failover-sim advise`).

The search runs every strategy over every combination of the given ranges
on the fast engine (`sim.batch.sweep`: local processes or Dask), ranks the
designs that meet the objective by monthly cost, then confirms the cheapest
few on the model with `check`'s rule (the 95% interval must meet the
bound; one that straddles it is undecided). A grid, not a search library:
7 strategies x 8 TTLs x 3 detection settings is 168 designs, and the fast
engine runs them within the benchmark's minutes (docs/benchmarks.md), so
every design is seen and the Pareto front is exact for the grid.

Limits are said, not hidden: a latency target below what the service time
alone allows is refused with the bound computed, before any search.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.intervals import number
from sim.scenario import Scenario
from sim.scenario.models import STRATEGIES, Expectation
from sim.scenario.units import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Uniform,
    format_duration,
)

__all__ = [
    "Advice", "AdviceError", "Target", "advise", "expand_over", "pareto_front", "parse_budget", "parse_target",
    "service_time_quantile", "target_limits",
]  # fmt: skip

# Objectives the search can decide: the metric's name (docs/scenario.md) -> its sweep column.
SEARCHABLE = {
    "monthly.availability": "monthly_availability",
    "monthly.budget_burn": "monthly_budget_burn",
    "incident.budget_burn": "incident_budget_burn",
    "incident.downtime_s": "incident_downtime_s",
    "availability": "availability",
    "latency_ms.p99": "latency_ms_p99",
    "recovery_s.mean": "recovery_mean",
}
# `availability>=99.95%` is an SLO: the month's availability, not one incident's window.
_ALIASES = {"availability": "monthly.availability"}
_TARGET_RE = re.compile(r"^\s*([a-z0-9_.]+)\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*(%?)\s*$")


class AdviceError(ValueError):
    """An option advise cannot use (the message names it and what was expected)."""


@dataclass(frozen=True)
class Target:
    metric: str
    op: str
    value: float

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")

    def met(self, x: float) -> bool:
        if math.isnan(x):
            return False
        return {">=": x >= self.value, ">": x > self.value, "<=": x <= self.value, "<": x < self.value}[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {show(self.metric, self.value)}"


def show(metric: str, x: float) -> str:
    """A value of the target's metric for people: availability and burn as percentages."""
    if math.isnan(x):
        return "-"
    if "availability" in metric:
        return f"{100 * x:.7g}%"  # 99.99999% stays itself, not 100.0000%
    if "burn" in metric:
        return f"{100 * x:.1f}%"
    return number(x)


def parse_target(text: str) -> Target:
    """`availability>=99.95%` (the monthly availability), `latency_ms.p99<=200`, `monthly.budget_burn<=0.5`."""
    match = _TARGET_RE.match(text)
    if not match:
        raise AdviceError(f"--slo {text}: expected METRIC>=VALUE or METRIC<=VALUE, such as availability>=99.95%")
    metric, op, raw, pct = match.groups()
    metric = _ALIASES.get(metric, metric)
    if metric not in SEARCHABLE:
        raise AdviceError(f"--slo {text}: unknown metric {metric!r}; expected one of {', '.join(SEARCHABLE)}")
    try:
        value = float(raw) / (100.0 if pct else 1.0)
    except ValueError:
        raise AdviceError(f"--slo {text}: {raw!r} is not a number") from None
    return Target(metric, op, value)


def parse_budget(text: str) -> float:
    """USD a month from `20`, `$20` or `$20/month`."""
    cleaned = text.strip().removeprefix("$").removesuffix("/month").removesuffix("/mo").strip()
    try:
        usd = float(cleaned)
    except ValueError:
        raise AdviceError(f"--budget {text}: expected USD a month such as 20 or $20/month") from None
    if usd < 0:
        raise AdviceError(f"--budget {text}: expected USD >= 0")
    return usd


def expand_over(option: str, steps: int) -> tuple[str, list[Any]]:
    """`PATH=LOW..HIGH` -> `steps` values spaced evenly on a log scale (durations kept as durations);
    `PATH=V1,V2,...` -> those values."""
    from sim.batch import parse_set
    from sim.scenario.units import parse_duration

    path, sep, spec = option.partition("=")
    if ".." not in spec:
        return parse_set(option)
    low_text, _, high_text = spec.partition("..")
    try:
        low, high = parse_duration(low_text), parse_duration(high_text)
    except ValueError:
        raise AdviceError(f"--over {option}: expected PATH=LOW..HIGH such as dns.service_ttl=5s..600s") from None
    if not sep or not path.strip() or not 0 < low <= high or steps < 1:
        raise AdviceError(f"--over {option}: expected PATH=LOW..HIGH with 0 < LOW <= HIGH")
    points = np.geomspace(low, high, steps) if steps > 1 else np.array([low])
    durations = any(c.isalpha() for c in low_text + high_text)
    whole = not durations and float(low).is_integer() and float(high).is_integer()
    values: list[Any] = []
    for x in points:
        # Whole seconds above one second: a TTL of 303s, not 302.779s.
        seconds = float(round(x)) if x >= 1 else round(float(x), 3)
        value: Any = format_duration(seconds) if durations else (round(float(x)) if whole else float(x))
        if value not in values:
            values.append(value)
    return path.strip(), values


def service_time_quantile(dist: Distribution, q: float) -> float:
    """The q-quantile of a service-time distribution, in seconds (exponential of mean m: -m ln(1 - q))."""
    if isinstance(dist, Constant):
        return dist.value
    if isinstance(dist, Exponential):
        return -dist.mean_value * math.log(1.0 - q)
    if isinstance(dist, Uniform):
        return dist.low + q * (dist.high - dist.low)
    if isinstance(dist, LogNormal):
        return dist.median * math.exp(dist.sigma * statistics.NormalDist().inv_cdf(q))
    if isinstance(dist, Empirical):
        return float(np.interp(q, np.array(dist.cdf), np.array(dist.values)))
    raise TypeError(f"unknown distribution {dist!r}")


def target_limits(scenario: Scenario, target: Target) -> list[str]:
    """Why no design can meet the target, with the bound computed; empty when nothing rules it out."""
    out = []
    if target.metric == "latency_ms.p99" and not target.higher_is_better:
        # A response is at least its service time plus a round trip, whatever the design or the
        # instance count: the p99 of latency is at least the p99 of the service time.
        floor = (service_time_quantile(scenario.backends.service_time, 0.99) + scenario.rtt) * 1000.0
        if not target.met(floor):
            dist = scenario.backends.service_time
            how = f" = {format_duration(dist.mean_value)} x ln 100" if isinstance(dist, Exponential) else ""
            out.append(
                f"{target} cannot be met by any design: the service time alone ({dist.describe()}) has a p99 of "
                f"{floor:.1f} ms{how} (plus rtt {format_duration(scenario.rtt)}); no number of instances or "
                "failover design goes below it"
            )
    if target.metric.startswith("monthly.") and not scenario.incidents:
        out.append(f"{target} needs incidents: in the scenario (how often the fault happens; docs/scenario.md, Planning)")
    if "budget_burn" in target.metric and scenario.slo is None:
        out.append(f"{target} needs slo: {{availability: ...}} in the scenario")
    return out


def pareto_front(cost: Sequence[float], value: Sequence[float], higher_is_better: bool = True) -> np.ndarray:
    """A mask of the designs no other design beats: none is as cheap and as good, and cheaper or better."""
    c = np.asarray(cost, dtype=float)
    v = np.asarray(value, dtype=float) * (1.0 if higher_is_better else -1.0)
    front = np.zeros(c.size, dtype=bool)
    for i in range(c.size):
        if math.isnan(c[i]) or math.isnan(v[i]):
            continue
        dominated = (c <= c[i]) & (v >= v[i]) & ((c < c[i]) | (v > v[i]))
        front[i] = not dominated.any()
    return front


@dataclass
class Advice:
    """What advise found: the ranked designs, the dropped ones and why, the confirmations, the winner."""

    target: Target
    budget: float | None
    ranked: pd.DataFrame  # one row per design: paths, strategy, metrics with _low/_high, meets, reason, front
    dropped: list[tuple[str, str]]  # (strategy or design, why)
    confirmed: list[dict[str, Any]] = field(default_factory=list)  # design, status, measured
    winner: dict[str, Any] | None = None  # a row of `ranked` with its scenario
    closest: dict[str, Any] | None = None  # when no design meets the target
    limits: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    winner_scenario: Scenario | None = None

    @property
    def column(self) -> str:
        return SEARCHABLE[self.target.metric]


Say = Callable[[str], None]


def _design(row: Any, paths: Sequence[str]) -> str:
    values = " ".join(f"{p}={row[p]}" for p in paths)
    return f"{row['strategy']} {values}".strip()


def candidate_strategies(scenario: Scenario, wanted: Sequence[str] | None) -> tuple[list[str], list[tuple[str, str]]]:
    """The strategies to search (all by default) and, for each one left out, why."""
    from sim.runner import RunError, check_engine, runnable_strategies

    names = list(wanted) if wanted else list(STRATEGIES)
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        raise AdviceError(f"--strategy {unknown[0]}: unknown; expected one of {', '.join(STRATEGIES)}")
    # The scenario's own expect: may name a strategy left out here; advise decides on its target only.
    wide = scenario.replace(strategies=names, expect=[])
    kept, refused = runnable_strategies(wide)
    dropped = [(s, f"refused by the zone rules: {why}") for s, why in refused.items()]
    for s in list(kept):
        try:
            check_engine(wide, "fast", [s])
        except RunError as exc:
            kept.remove(s)
            dropped.append((s, f"the fast engine cannot search it: {exc}"))
    return kept, dropped


def rank(summary: pd.DataFrame, paths: list[str], target: Target, budget: float | None) -> pd.DataFrame:
    """The designs in order: those that meet the target (on the search's mean) and the budget, then
    the others; each group by monthly cost. Adds `design`, `meets`, `reason`, `front`."""
    column = SEARCHABLE[target.metric]
    frame = summary.copy()
    frame["design"] = [_design(r, paths) for _, r in frame.iterrows()]
    reasons = []
    for _, r in frame.iterrows():
        why = []
        if not target.met(float(r[column])):
            why.append(f"misses {target}: {show(target.metric, float(r[column]))}")
        if budget is not None and float(r["cost_total"]) > budget:
            why.append(f"over budget: ${float(r['cost_total']):.2f} > ${budget:.2f} a month")
        reasons.append("; ".join(why))
    frame["reason"] = reasons
    frame["meets"] = frame["reason"] == ""
    frame["front"] = pareto_front(frame["cost_total"], frame[column], target.higher_is_better)
    # Among equals in cost the better design first; among those that miss, the nearest first.
    better = -frame[column] if target.higher_is_better else frame[column]
    frame = frame.assign(_worse=better).sort_values(["meets", "cost_total", "_worse"], ascending=[False, True, True],
                                                    kind="stable")
    return frame.drop(columns="_worse").reset_index(drop=True)


def confirm(cell_scenario: Scenario, strategy: str, target: Target, replications: int | None) -> dict[str, Any]:
    """One design on the model, decided as `check` decides: pass, fail or undecided."""
    from sim.analysis.expect import verdicts
    from sim.runner import run

    expectation = Expectation(strategy=strategy, metric=target.metric, op=target.op, value=target.value)  # type: ignore[arg-type]
    design = cell_scenario.replace(strategies=[strategy], expect=[expectation.model_dump()])
    results = run(design, "des", replications, [strategy])
    (verdict,) = verdicts(design.name, design.expect, results)
    return {"status": verdict.status, "measured": verdict.measured, "scenario": design}


def advise(
    scenario: Scenario,
    target: Target,
    over: dict[str, list[Any]],
    *,
    budget: float | None = None,
    strategies: Sequence[str] | None = None,
    replications: int = 3,
    confirm_top: int = 3,
    confirm_replications: int | None = None,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    say: Say = lambda text: None,
) -> Advice:
    """Search `strategies` x `over` on the fast engine, rank, confirm the cheapest few on the model.

    Raises AdviceError for options it cannot use; a target no design can meet (a latency
    below the service-time floor) returns an Advice with `limits` said and no search run.
    """
    from sim.batch import summarize_sweep, sweep

    limits = target_limits(scenario, target)
    if limits:
        return Advice(target, budget, pd.DataFrame(), [], limits=limits, paths=list(over))
    kept, dropped = candidate_strategies(scenario, strategies)
    if not kept:
        raise AdviceError("no strategy can be searched: " + "; ".join(f"{s}: {why}" for s, why in dropped))
    searched = scenario.replace(strategies=kept, expect=[])
    say(f"searching {len(kept)} strategies x {_count(over)} settings x {replications} replications on the fast engine")
    table = sweep(searched, over, replications=replications, engine="fast", executor=executor, workers=workers,
                  scheduler=scheduler, out=None if out is None else Path(out) / "search", progress=progress)
    paths = list(over)
    ranked = rank(summarize_sweep(table, paths), paths, target, budget)
    dropped += [(str(r["design"]), str(r["reason"])) for _, r in ranked.iterrows() if not r["meets"]]
    advice = Advice(target, budget, ranked, dropped, paths=paths)
    _confirm(advice, searched, over, confirm_top, confirm_replications, say)
    if advice.winner is None and not ranked["meets"].any():
        best = ranked.sort_values(advice.column, ascending=not target.higher_is_better, kind="stable").iloc[0]
        advice.closest = best.to_dict()
    return advice


def _count(over: dict[str, list[Any]]) -> int:
    return int(np.prod([len(v) for v in over.values()])) if over else 1


def _confirm(advice: Advice, searched: Scenario, over: dict[str, list[Any]], top: int, replications: int | None,
             say: Say) -> None:
    """Confirm the cheapest `top` designs that met the target in the search; the first that passes wins."""
    from sim.batch.grid import cells

    grid = cells(searched, over)
    # The cheapest design of each of the cheapest strategies: settings a strategy does not use
    # (a detection interval under vrrp) would otherwise fill the few with one design thrice.
    chosen = advice.ranked[advice.ranked["meets"]].drop_duplicates("strategy").head(top)
    for i, (_, row) in enumerate(chosen.iterrows(), start=1):
        say(f"confirming {i}/{len(chosen)} on the model: {row['design']}")
        found = confirm(grid[int(row["cell"])].scenario, str(row["strategy"]), advice.target, replications)
        advice.confirmed.append({"design": row["design"], "status": found["status"], "measured": found["measured"]})
        if found["status"] == "pass" and advice.winner is None:
            advice.winner, advice.winner_scenario = row.to_dict(), found["scenario"]


def summary_lines(advice: Advice) -> list[str]:
    """What advise says, after its table: the winner or why none, what was dropped, the limits."""
    t = advice.target
    lines = [f"limit: {text}" for text in advice.limits]
    if advice.limits:
        return lines
    for c in advice.confirmed:
        note = " (the interval straddles the bound: raise --confirm-replications)" if c["status"] == "undecided" else ""
        iv = c["measured"]
        measured = f"{show(t.metric, iv.value)} [{show(t.metric, iv.low)}, {show(t.metric, iv.high)}]"
        lines.append(f"model check of {c['design']}: {t.metric} {measured} -> {c['status'].upper()}{note}")
    if advice.winner is not None:
        w = advice.winner
        lines.append(f"winner: {w['design']}: {t.metric} {show(t.metric, float(w[advice.column]))}, "
                     f"${float(w['cost_total']):.2f} a month (confirmed on the model)")
    elif advice.closest is not None:
        c = advice.closest
        within = f" within ${advice.budget:.2f} a month" if advice.budget is not None else ""
        lines.append(f"no design meets {t}{within}; the closest is {c['design']}: "
                     f"{t.metric} {show(t.metric, float(c[advice.column]))}"
                     f" (${float(c['cost_total']):.2f} a month)")
    elif advice.confirmed:
        lines.append(f"no design was confirmed on the model: the search's candidates for {t} failed or were undecided")
    lines.append(f"dropped (every design's reason is in ranked.csv): {len(advice.dropped)} designs or strategies")
    lines += [f"  {what}: {why}" for what, why in advice.dropped if what in STRATEGIES]
    if not advice.ranked.empty:
        out = advice.ranked[~advice.ranked["meets"]]
        for strategy, part in out.groupby("strategy", sort=False):
            total = int((advice.ranked["strategy"] == strategy).sum())
            best = part.sort_values(advice.column, ascending=not t.higher_is_better, kind="stable").iloc[0]
            lines.append(f"  {strategy}: {len(part)} of {total} designs; its best, {best['design']}: {best['reason']}")
    return lines


def plot_front(advice: Advice, *, scenario: str):  # type: ignore[no-untyped-def]
    """Monthly cost against the target's metric, every design with its 95% intervals, the
    Pareto front joined, the bound drawn and the winner ringed."""
    import matplotlib.pyplot as plt

    from sim.analysis.figures import OKABE_ITO

    frame, column, t = advice.ranked, advice.column, advice.target
    scale = 100.0 if "availability" in column or "burn" in column else 1.0
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for i, (strategy, part) in enumerate(frame.groupby("strategy", sort=False)):
        y = part[column].to_numpy(dtype=float) * scale
        yerr = _spread(part, column, scale)
        xerr = _spread(part, "cost_total", 1.0)
        ax.errorbar(part["cost_total"], y, xerr=xerr, yerr=yerr, fmt="o", ms=5, capsize=2, alpha=0.8,
                    color=OKABE_ITO[i % 8], label=strategy)
    front = frame[frame["front"]].sort_values("cost_total")
    ax.plot(front["cost_total"], front[column] * scale, "-", color="black", lw=1, label="Pareto front")
    ax.axhline(t.value * scale, color="grey", ls="--", lw=1, label=f"target {t}")
    if advice.winner is not None:
        w = advice.winner
        ax.plot([w["cost_total"]], [float(w[column]) * scale], "o", ms=14, mfc="none", mec="black", label="winner")
    ax.set_xscale("log")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")  # 99.999, not 1e2 - 0.001
    ax.set_xlabel("monthly cost, USD (infrastructure + DNS + expected outage; log scale)")
    ax.set_ylabel(f"{t.metric}{' (%)' if scale == 100.0 else ''}")
    ax.set_title(f"{scenario}: cost and {t.metric} per design (search: fast engine, 95% intervals)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return fig


def _spread(part: pd.DataFrame, column: str, scale: float) -> np.ndarray | None:
    low, high = f"{column}_low", f"{column}_high"
    if low not in part or part[low].isna().all():
        return None
    mid = part[column].to_numpy(dtype=float)
    return np.abs(np.vstack([mid - part[low].to_numpy(dtype=float), part[high].to_numpy(dtype=float) - mid])) * scale


def write_advice(advice: Advice, out: str | Path, *, scenario: str) -> dict[str, Path]:
    """ranked.csv, pareto.png and, with a winner, winner.yaml (its scenario, the target as its expect:)."""
    import yaml

    from sim.analysis.figures import figure_png
    from sim.results.writer import write_bytes_atomic

    folder = Path(out)
    written: dict[str, Path] = {}
    if advice.ranked.empty:
        return written
    written["table"] = folder / "ranked.csv"
    write_bytes_atomic(written["table"], advice.ranked.to_csv(index=False).encode())
    written["figure"] = folder / "pareto.png"
    write_bytes_atomic(written["figure"], figure_png(plot_front(advice, scenario=scenario)))
    if advice.winner_scenario is not None:
        written["scenario"] = folder / "winner.yaml"
        text = f"# failover-sim advise: {advice.winner['design']} (check it: failover-sim check winner.yaml)\n"  # type: ignore[index]
        text += yaml.safe_dump(advice.winner_scenario.to_document(), sort_keys=False)
        write_bytes_atomic(written["scenario"], text.encode())
    return written


def table_text(advice: Advice, rows: int = 15) -> str:
    """The ranked designs for a terminal: cost, the target's metric with its interval, what kept it out."""
    column = advice.column
    head = ["rank", "design", f"{advice.target.metric} [95% CI]", "$/month", "front", "result"]
    lines = [head]
    for i, (_, r) in enumerate(advice.ranked.head(rows).iterrows(), start=1):
        m = advice.target.metric
        value = f"{show(m, float(r[column]))} [{show(m, float(r[column + '_low']))}, {show(m, float(r[column + '_high']))}]"
        lines.append([str(i), str(r["design"]), value, f"{float(r['cost_total']):.2f}", "*" if r["front"] else "",
                      "meets" if r["meets"] else str(r["reason"])])
    widths = [max(len(row[k]) for row in lines) for k in range(len(head))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    if len(advice.ranked) > rows:
        text.append(f"... {len(advice.ranked) - rows} more in ranked.csv")
    return "\n".join(text)
