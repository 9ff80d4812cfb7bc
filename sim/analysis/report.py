"""A report of a results folder or a sweep: what it says, rendered as HTML and Markdown.

The computing part of `failover-sim report` (`sim.write_report` reads the
folder and writes the files). The HTML page is self-contained (figures
embedded as base64 PNG, no external CSS or scripts), so it can be mailed or
attached to a CI run. The Markdown summary links its figures, written beside
it under `report-figures/`. The figures are the ones the notebooks and the
Python API draw (`sim.analysis.figures`).

A sweep (written by `sim.batch`: sweep.parquet, summary.parquet) gets its
summary table and, per swept value, the mean of the main metrics per
strategy.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.table import UNBOUNDED, cohort_table, summary_table

__all__ = [
    "FIGURE_DIR", "Report", "render_html", "render_markdown", "run_report", "sweep_columns", "sweep_report",
]

FIGURE_DIR = "report-figures"
FIGURE_TITLES = {
    "success_rate": "Success rate over time",
    "recovery_cdf": "Recovery per client, by strategy",
    "recovery_cdf_by_cohort": "Recovery per client, by cohort",
    "availability_vs_dns": "Availability against DNS query cost",
    "sweep": "Sweep: main metrics against the swept value",
}
# Columns of a sweep table that are not swept values.
_SWEEP_META = {"strategy", "replication", "cell", "seed", "engine", "scenario", "wall_s", "wall_time_s"}
_SWEEP_METRICS = (
    ("availability", "availability (%)", 100.0),
    ("recovery_p99", "recovery p99 (s)", 1.0),
    ("recovery_s.p99", "recovery p99 (s)", 1.0),
    ("recovery_s_p99", "recovery p99 (s)", 1.0),
    ("dns_queries", "authoritative DNS queries (per run)", 1.0),
    ("latency_ms_p99", "latency p99 (ms)", 1.0),
    ("latency_ms.p99", "latency p99 (ms)", 1.0),
    ("monthly_availability", "monthly availability (%)", 100.0),
    ("cost_total", "cost, total ($/month)", 1.0),
)


@dataclass
class Report:
    """What a report says, before it is rendered to HTML and Markdown."""

    title: str
    facts: list[tuple[str, str]]
    description: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)


# --- building ------------------------------------------------------------------------


def run_report(
    summary: dict[str, Any],
    manifest: dict[str, Any],
    clients: pd.DataFrame,
    figures: dict[str, bytes],
    *,
    name: str,
    engine: str,
    folder: str | Path,
) -> Report:
    """The report of one run from its tables: summary.json, manifest.json, the clients table,
    and its figures as PNG bytes (as `sim.open_results(folder)` reads them)."""
    scenario = manifest.get("scenario", {})
    facts = [
        ("scenario", name),
        ("engine", engine),
        ("replications", str(summary.get("replications", "?"))),
        ("seed", str(summary.get("seed", "?"))),
        ("strategies", ", ".join(summary.get("strategies", {}))),
        ("package version", str(summary.get("version", "?"))),
        ("git commit", str(manifest.get("git_commit") or "-")),
        # The folder's name, not the path given: the page is shared, and a path says
        # where it was made (a home folder, a CI workspace), not what it is.
        ("results folder", Path(folder).name),
        ("report written", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    notes = [f"strategy {strategy} refused: {why}" for strategy, why in summary.get("refused", {}).items()]
    # Which planning input a "-" in the planning rows lacks (docs/scenario.md, "Planning metrics").
    notes += [f"planning: {note}" for note in summary.get("planning", {}).get("notes", [])]
    notes.append(
        "Values are means over replications with 95% confidence intervals in brackets (Wilson for shares, "
        "log scale for times and counts: docs/scenario.md, \"Metrics\"); recovery is per affected client, from "
        "the start of the fault to its first success, pooled over replications; a percentile shown as "
        f"\"{UNBOUNDED}\" falls among clients that had not recovered when the run ended."
    )
    tables = [("Summary", summary_table(summary).reset_index().rename(columns={"index": "metric"}))]
    if len(clients):
        tables.append(("Who is down, for how long (per cohort)", cohort_table(clients)))
    return Report(
        title=f"{name}: failover results",
        facts=facts,
        description=str(scenario.get("description", "")) if isinstance(scenario, dict) else "",
        tables=tables,
        notes=notes,
        figures=figures,
    )


def sweep_report(
    sweep: pd.DataFrame | None, summary: pd.DataFrame | None, manifest: dict[str, Any], *, folder: str | Path
) -> Report:
    """The report of a sweep from its tables: sweep.parquet, summary.parquet (either may be
    missing, not both) and manifest.json ({} when there is none)."""
    frame = sweep if sweep is not None else summary
    if frame is None:
        raise ValueError(f"{folder}: a sweep report needs sweep.parquet or summary.parquet")
    name = str(manifest.get("scenario", {}).get("name") if isinstance(manifest.get("scenario"), dict) else "")
    if not name and "scenario" in frame.columns:
        name = str(frame["scenario"].iloc[0])
    name = name or Path(folder).name
    swept = sweep_columns(frame)
    facts = [
        ("scenario", name),
        ("swept", ", ".join(swept) or "-"),
        ("cells", str(len(frame[swept].drop_duplicates())) if swept else "?"),
        ("rows", str(len(frame))),
        ("sweep folder", Path(folder).name),
        ("report written", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    tables = []
    if summary is not None:
        tables.append(("Sweep summary: means over replications, 95% intervals in brackets", sweep_summary_table(summary)))
    elif swept:
        means = frame.groupby([*swept, "strategy"], sort=True).mean(numeric_only=True).reset_index()
        tables.append(("Sweep: means over replications", means.drop(columns=["replication"], errors="ignore")))
    figures = {}
    if swept:
        from sim.analysis.figures import figure_png

        fig = plot_sweep(frame, swept[0], scenario=name)
        if fig is not None:
            figures["sweep"] = figure_png(fig)
    over = ", ".join(swept) or "its grid"
    return Report(title=f"{name}: sweep over {over}" if name != Path(folder).name else f"Sweep over {over}",
                  facts=facts, tables=tables, figures=figures)


# summary.parquet's metrics (sim.batch.summarize_sweep), as the report shows them: shares in %.
_SUMMARY_SHOWN = (("availability", "availability (%)", 100.0), ("recovery_mean", "recovery mean (s)", 1.0),
                  ("recovery_p50", "recovery p50 (s)", 1.0), ("recovery_p99", "recovery p99 (s)", 1.0),
                  ("never_recovered", "never recovered (%)", 100.0), ("latency_ms_p50", "latency p50 (ms)", 1.0),
                  ("latency_ms_p99", "latency p99 (ms)", 1.0),
                  ("monthly_availability", "monthly availability (%)", 100.0),
                  ("monthly_downtime_s", "monthly downtime (s)", 1.0), ("monthly_budget_burn", "budget burn a month", 1.0),
                  ("incident_downtime_s", "downtime an incident (s)", 1.0),
                  ("incident_budget_burn", "budget burn an incident", 1.0), ("cost_infrastructure", "infrastructure ($/month)", 1.0),
                  ("cost_dns", "DNS ($/month)", 1.0), ("cost_outage", "outage ($/month)", 1.0),
                  ("cost_total", "total ($/month)", 1.0))


def sweep_summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """summary.parquet made readable: each metric in one column, `value [low, high]`, shares as
    percentages; the cell number dropped (the swept values say which cell)."""
    out = summary.drop(columns=["cell"], errors="ignore")
    for column, label, scale in _SUMMARY_SHOWN:
        if column not in out.columns:
            continue
        if out[column].isna().all():  # a planning metric the scenario has no inputs for
            out = out.drop(columns=[c for c in (column, f"{column}_low", f"{column}_high") if c in out.columns])
            continue
        bounds = [f"{column}_low", f"{column}_high"]
        value = out[column].astype(float) * scale
        if all(b in out.columns for b in bounds):
            low, high = (out[b].astype(float) * scale for b in bounds)
            shown = [_with_interval(v, lo, hi) for v, lo, hi in zip(value, low, high, strict=True)]
        else:
            shown = [_with_interval(v, math.nan, math.nan) for v in value]
        at = out.columns.get_loc(column)
        out = out.drop(columns=[column, *[b for b in bounds if b in out.columns]])
        out.insert(at, label, shown)
    return out


def _with_interval(value: float, low: float, high: float) -> str:
    if math.isnan(value):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return f"{value:.4g}"
    return f"{value:.4g} [{low:.4g}, {high:.4g}]"


def sweep_columns(frame: pd.DataFrame) -> list[str]:
    """The swept values' columns of a sweep table: named by their scenario paths (with a dot or [i])."""
    metrics = {m for m, _, _ in _SWEEP_METRICS}
    return [
        c
        for c in frame.columns
        if c not in _SWEEP_META and c not in metrics and ("." in c or "[" in c) and not c.startswith(("ci", "recovery_s."))
    ]


def sweep_points(part: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per swept value (`_x`): the metric's mean and 95% interval over the replications in `part`.

    The intervals are the summary's (sim.analysis.stats): Wilson for availability
    (over the requests, when the table has them), the log-scale interval for
    times and counts. A recovery percentile beyond the run in a replication is
    infinite: the upper bound is, and the mean too when every replication's is.
    """
    from sim.analysis.planning import planning_ci95
    from sim.analysis.stats import positive_ci95, share_ci95

    rows = []
    for x, group in part.groupby("_x", sort=True):
        values = group[metric].to_numpy(dtype=float)
        if metric == "availability" and "requests" in group.columns:
            mean, low, high = share_ci95(values, group["requests"].to_numpy(dtype=float))
        elif metric.endswith("availability"):
            mean, low, high = planning_ci95(metric, values)  # never above 1
        else:
            mean, low, high = positive_ci95(values)
        rows.append({"x": x, "mean": mean, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["x", "mean", "low", "high"])


def _draw_points(ax, points: pd.DataFrame, scale: float, colour: str, style: str, label: str) -> None:  # type: ignore[no-untyped-def]
    finite = points[np.isfinite(points["mean"])]
    mean = finite["mean"].to_numpy() * scale
    low = np.where(np.isnan(finite["low"]), mean / scale, finite["low"]) * scale
    high = np.where(np.isnan(finite["high"]), mean / scale, finite["high"]) * scale
    open_top = np.isinf(high)
    # an upper bound beyond the run: the bar stops at the mean and an arrow says "no bound"
    high = np.where(open_top, mean, high)
    ax.errorbar(finite["x"], mean, yerr=[mean - low, high - mean], marker="o", color=colour, ls=style, lw=2,
                capsize=3, label=label)
    if open_top.any():
        ax.plot(finite["x"][open_top], mean[open_top], marker="^", ms=10, ls="none", color=colour)
    beyond = points[np.isinf(points["mean"])]
    if len(beyond):
        # the whole estimate is beyond the run: a caret at the top of the panel
        ax.plot(beyond["x"], np.ones(len(beyond)), marker="^", ms=10, ls="none", color=colour,
                transform=ax.get_xaxis_transform(), label=f"{label}: {UNBOUNDED}")


def plot_sweep(frame: pd.DataFrame, x: str, *, scenario: str):  # type: ignore[no-untyped-def]
    """Each main metric (one panel each) against the swept column `x`, one line per strategy,
    with 95% intervals over the replications when the table has one row per replication."""
    import matplotlib.pyplot as plt

    from sim.analysis.figures import OKABE_ITO, STYLES

    metrics = [(m, label, k) for m, label, k in _SWEEP_METRICS if m in frame.columns and frame[m].notna().any()]
    seen, panels = set(), []
    for m, label, k in metrics:
        if label not in seen:
            seen.add(label)
            panels.append((m, label, k))
    if not panels:
        return None
    xs = frame[x]
    numeric = pd.to_numeric(xs, errors="coerce")
    if numeric.isna().any():
        from sim.scenario.units import parse_duration

        try:
            numeric = xs.map(parse_duration)
        except (ValueError, TypeError):
            numeric = pd.Series(pd.factorize(xs)[0], index=xs.index)
    data = frame.assign(_x=numeric.astype(float))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 0.8, 4.4), layout="constrained", squeeze=False)
    for ax, (metric, label, scale) in zip(axes[0], panels, strict=True):
        for i, (strategy, part) in enumerate(data.groupby("strategy", sort=False)):
            _draw_points(ax, sweep_points(part, metric), scale, OKABE_ITO[i % 8], STYLES[i % 4], str(strategy))
        ax.set_xlabel(f"{x} (s)" if _is_duration(x) else x)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle(f"Sweep of {x}: {scenario} ({dt.date.today().isoformat()}); bars: 95% intervals, "
                 f"^: no upper bound within the run")
    return fig


_DURATION_FIELDS = {"duration", "warmup", "rtt", "propagation", "keepalive", "max_connection_age", "interval",
                    "timeout", "drain", "churn", "period", "at", "for", "mtbf", "delay", "min_ttl", "max_ttl"}


def _is_duration(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last in _DURATION_FIELDS or last.endswith(("_ttl", "_delay")) or last == "ttl"


# --- rendering -----------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    if isinstance(value, float):
        text = "-" if math.isnan(value) else UNBOUNDED if value == math.inf else f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no tabulate needed)."""
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def render_markdown(report: Report, figure_dir: str = FIGURE_DIR) -> str:
    lines = [f"# {report.title}", ""]
    if report.description:
        lines += [report.description, ""]
    lines += [f"- **{k}**: {v}" for k, v in report.facts] + [""]
    for title, frame in report.tables:
        lines += [f"## {title}", "", markdown_table(frame), ""]
    for note in report.notes:
        lines += [f"> {note}", ""]
    if report.figures:
        lines += ["## Figures", ""]
        for name in report.figures:
            lines += [f"![{FIGURE_TITLES.get(name, name)}]({figure_dir}/{name}.png)", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
.wide { overflow-x: auto; max-width: 100%; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
.note { color: #444; border-left: 3px solid #0072B2; padding-left: 0.7em; }
"""


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_md_cell(v).replace(chr(92) + '|', '|'))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    # Scrolls sideways in its own box when wider than the page, rather than being cut off.
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_html(report: Report) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    if report.description:
        parts.append(f"<p>{esc(report.description)}</p>")
    parts.append('<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in report.facts) + "</dl>")
    for title, frame in report.tables:
        parts += [f"<h2>{esc(title)}</h2>", _html_table(frame)]
    parts += [f'<p class="note">{esc(note)}</p>' for note in report.notes]
    if report.figures:
        parts.append("<h2>Figures</h2>")
        for name, png in report.figures.items():
            alt = esc(FIGURE_TITLES.get(name, name))
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts)
