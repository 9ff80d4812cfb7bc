"""Figures of a run: success rate over time, and the CDF of per-client recovery.

Okabe-Ito colours (safe for the common colour-vision deficiencies), labelled
axes with units, the scenario name and the date in every title.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.results.schema import affected_clients  # noqa: E402

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
STYLES = ("-", "--", "-.", ":")


def _title(what: str, scenario: str, date: str | None = None) -> str:
    # The run's date (manifest.json "created"), not the day the figure is drawn again.
    day = (date or dt.date.today().isoformat())[:10]
    return f"{what}: {scenario} ({day})"


def fault_label(fault: object) -> str:
    """A short label for a scenario fault: 'blue down (refuse)', 'traffic x3', 'DNS down'."""
    kind = getattr(fault, "kind", "fault")
    if kind == "balancer_down":
        return f"{getattr(fault, 'target', '?')} down ({getattr(fault, 'mode', 'refuse')})"
    if kind == "instance_down":
        return f"{getattr(fault, 'count', 1)} instance(s) down ({getattr(fault, 'mode', 'refuse')})"
    if kind == "traffic":
        return f"traffic x{getattr(fault, 'factor', 1):g}"
    if kind == "dns_down":
        return "DNS down"
    return str(kind)


def _style(ax: plt.Axes) -> None:
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def plot_success_rate(
    timeline: pd.DataFrame,
    *,
    scenario: str,
    fault_times: Sequence[float] = (),
    window: tuple[float, float] | None = None,
    bin_s: int = 10,
    fault_labels: Sequence[str] | None = None,
    date: str | None = None,
) -> Figure:
    """Share of requests that succeeded, per strategy, in bins of `bin_s` seconds
    (pooled over replications); dotted lines mark the faults, each labelled by
    its kind when `fault_labels` is given; `date` (the run's) goes in the title."""
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    for i, (strategy, frame) in enumerate(timeline.groupby("strategy", sort=False)):
        bins = (frame["t"] // bin_s) * bin_s
        grouped = frame.groupby(bins)[["ok", "requests"]].sum()
        rate = grouped["ok"] / grouped["requests"].where(grouped["requests"] > 0)
        minutes = grouped.index.to_numpy() / 60.0
        ax.step(minutes, 100 * rate.to_numpy(), where="post", color=OKABE_ITO[i % 8], ls=STYLES[i % 4], lw=2, label=strategy)
    for k, t in enumerate(fault_times):
        ax.axvline(t / 60.0, color="0.3", ls=":", lw=1.2, label="fault" if k == 0 and not fault_labels else None)
        if fault_labels and k < len(fault_labels):
            ax.annotate(fault_labels[k], (t / 60.0, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize=8, color="0.3")
    if window:
        ax.set_xlim(window[0] / 60.0, window[1] / 60.0)
    ax.set_xlabel("time since start (min)")
    ax.set_ylabel(f"requests that succeeded (%, per {bin_s} s)")
    ax.set_ylim(-2, 102)
    ax.set_title(_title("Success rate over time", scenario, date))
    ax.legend(loc="lower right", frameon=False)
    _style(ax)
    return fig


def _ecdf(values: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    # Unrecovered clients (NaN) keep the curve below 1: the gap is the share
    # that never came back within the run.
    x = np.sort(values[~np.isnan(values)])
    y = np.arange(1, x.size + 1) / max(1, total)
    return x, y


def plot_recovery_cdf(clients: pd.DataFrame, *, scenario: str, by: str = "strategy", date: str | None = None) -> Figure:
    """Empirical CDF of per-client recovery (from the fault to the first success).

    by="strategy": one line per strategy. by="cohort": one panel per strategy,
    one line per cohort. A curve that stays below 100% shows clients that never
    recovered within the run.
    """
    if by not in ("strategy", "cohort"):
        raise ValueError(f"by must be 'strategy' or 'cohort', got {by!r}")
    clients = affected_clients(clients)
    strategies = list(pd.unique(clients["strategy"]))
    panels = strategies if by == "cohort" else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 1.5, 4.8), layout="constrained", squeeze=False, sharex=True, sharey=True)
    positive = clients["recovery_s"].dropna()
    # Log time once recoveries span more than a decade: a 30 s cohort and a
    # 10 min cohort both stay readable.
    log = bool(len(positive)) and positive.max() / max(positive.min(), 1e-3) > 10
    cohorts = list(pd.unique(clients["cohort"]))
    for ax, strategy in zip(axes[0], panels, strict=True):
        if by == "strategy":
            groups = [(s, clients[clients["strategy"] == s]) for s in strategies]
        else:
            here = clients[clients["strategy"] == strategy]
            groups = [(c, here[here["cohort"] == c]) for c in cohorts]
        for i, (name, frame) in enumerate(groups):
            if frame.empty:
                continue
            x, y = _ecdf(frame["recovery_s"].to_numpy(dtype=float), len(frame))
            colour = OKABE_ITO[(strategies.index(name) if by == "strategy" else cohorts.index(name)) % 8]
            never = 1 - (y[-1] if y.size else 0.0)
            label = f"{name} (n={len(frame)}" + (f", {100 * never:.0f}% never)" if never > 0.005 else ")")
            ax.step(x, 100 * y, where="post", color=colour, ls=STYLES[i % 4], lw=2, label=label)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel("recovery after the fault (s" + (", log scale)" if log else ")"))
        ax.set_ylim(-2, 102)
        if strategy is not None:
            ax.set_title(strategy)
        ax.legend(loc="lower right", frameon=False, fontsize=9)
        _style(ax)
    axes[0][0].set_ylabel("affected clients recovered (%)")
    what = "Recovery per client" + (" by cohort" if by == "cohort" else "")
    fig.suptitle(_title(what, scenario, date))
    return fig


def plot_availability_vs_dns(summary: dict, *, scenario: str, date: str | None = None) -> Figure:
    """Each strategy's availability against the queries our authoritative servers answered
    (what a DNS provider bills), means with their 95% intervals as error bars."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    for i, (strategy, m) in enumerate(summary.get("strategies", {}).items()):
        ci = m.get("ci95", {})
        x, y = float(m["dns_queries"]), 100 * float(m["availability"])
        xerr = _err(x, ci.get("dns_queries"))
        yerr = _err(y, [100 * v if v is not None else None for v in ci.get("availability", [None, None])])
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color=OKABE_ITO[i % 8], ms=8, capsize=3, label=strategy)
    ax.set_xlabel("DNS queries to the authoritative servers (per run)")
    ax.set_ylabel("requests that succeeded (%)")
    ax.set_title(_title("Availability against DNS query cost", scenario, date))
    ax.legend(loc="best", frameon=False, fontsize=9)
    _style(ax)
    return fig


def _err(value: float, interval: Sequence[float | None] | None) -> list[list[float]] | None:
    if not interval or interval[0] is None or interval[1] is None:
        return None
    return [[max(0.0, value - interval[0])], [max(0.0, interval[1] - value)]]


def plot_drain(
    targets: pd.DataFrame, *, scenario: str, changed_at: float | None = None, bin_s: int = 30, date: str | None = None
) -> Figure:
    """The drain curve: the share of first attempts sent to the previous target over
    time, one panel per strategy, one line per cohort, in bins of `bin_s` seconds
    pooled over replications; a dotted line at the change (`changed_at`)."""
    strategies = list(pd.unique(targets["strategy"]))
    cohorts = list(pd.unique(targets["cohort"]))
    fig, axes = plt.subplots(1, len(strategies), figsize=(5.2 * len(strategies) + 1.5, 4.8), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, strategy in zip(axes[0], strategies, strict=True):
        here = targets[targets["strategy"] == strategy]
        for i, cohort in enumerate(cohorts):
            frame = here[here["cohort"] == cohort]
            grouped = frame.groupby((frame["t"] // bin_s) * bin_s)[["to_previous", "to_current"]].sum()
            total = (grouped["to_previous"] + grouped["to_current"]).where(lambda n: n > 0)
            minutes = grouped.index.to_numpy() / 60.0
            ax.step(minutes, 100 * (grouped["to_previous"] / total).to_numpy(), where="post",
                    color=OKABE_ITO[i % 8], ls=STYLES[i % 4], lw=2, label=cohort)
        if changed_at is not None:
            ax.axvline(changed_at / 60.0, color="0.3", ls=":", lw=1.2, label="change")
        ax.set_title(strategy)
        ax.set_xlabel("time since start (min)")
        ax.set_ylim(-2, 102)
        ax.legend(loc="upper right", frameon=False, fontsize=9)
        _style(ax)
    axes[0][0].set_ylabel(f"first attempts to the previous target (%, per {bin_s} s)")
    fig.suptitle(_title("Drain: traffic still reaching the old target", scenario, date))
    return fig


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def run_figures(
    timeline: pd.DataFrame,
    clients: pd.DataFrame,
    summary: dict,
    *,
    scenario: str,
    fault_times: Sequence[float] = (),
    fault_labels: Sequence[str] | None = None,
    date: str | None = None,
    targets: pd.DataFrame | None = None,
    planned_at: float | None = None,
) -> dict[str, bytes]:
    """Every figure of a run as PNG bytes, by file name: what a results folder holds
    (written by a run, drawn again from a stored folder). With a planned change
    (`planned_at`, its time) and the run's targets table, also the drain curve."""
    out = {"success_rate": figure_png(plot_success_rate(
        timeline, scenario=scenario, fault_times=fault_times, fault_labels=fault_labels, date=date))}
    if len(affected_clients(clients)):
        out["recovery_cdf"] = figure_png(plot_recovery_cdf(clients, scenario=scenario, date=date))
        out["recovery_cdf_by_cohort"] = figure_png(plot_recovery_cdf(clients, scenario=scenario, by="cohort", date=date))
    out["availability_vs_dns"] = figure_png(plot_availability_vs_dns(summary, scenario=scenario, date=date))
    if planned_at is not None and targets is not None and len(targets) and targets["to_previous"].any():
        out["drain"] = figure_png(plot_drain(targets, scenario=scenario, changed_at=planned_at, date=date))
    return out
