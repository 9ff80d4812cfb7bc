"""Two runs side by side (a lab run and the model, say): the computing part of `failover-sim compare`.

Per strategy and metric: both values with their 95% intervals, the
difference, its resolution (how finely these replications know it), and
whether the two agree (each value inside the other's interval, or the
intervals overlapping); overlay figures of success rate over time and the
recovery CDF; and which `--max-diff` bounds a comparison breaks. A bound
finer than the resolution is reported as such, with the replications that
would resolve it.

Paired: when both runs are of the same scenario with the same seed, their
replication k drew the same random inputs where both engines draw them alike
(common random numbers; the lab replays the model's, sim.model.trace). Then
the differences are also taken replication by replication: the mean of
B_k - A_k over the replications both have, with its own Student-t interval.
That estimates the same B - A, with far less noise when the pairs move
together, and is what --max-diff judges when it is there. For the recovery
mean it is the difference of each replication's mean over its recovered
clients (a replication with none on either side drops out), where the
plain columns pool the clients of all replications.

A run is anything with the tables of `sim.analysis.intervals.RunTables`
(`sim.run`'s results, or a folder read with `sim.open_results`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from sim.analysis.intervals import Interval, RunTables, metric_interval
from sim.analysis.stats import UNBOUNDED, t_quantile_975
from sim.results.schema import affected_clients

Z975 = 1.959963984540054  # the standard normal's 0.975 quantile

COMPARED = ("availability", "recovery_s.mean", "recovery_s.p50", "recovery_s.p90", "clients_affected", "requests",
            "failed", "dns_queries", "latency_ms.p50", "latency_ms.p99")


def agree(a: Interval, b: Interval) -> str:
    """'yes' if the intervals overlap (or a value lies in the other's), 'no', or '?' without intervals."""
    def inside(x: float, iv: Interval) -> bool:
        return iv.known and iv.low <= x <= iv.high

    if a.known and b.known:
        return "yes" if a.low <= b.high and b.low <= a.high else "no"
    if inside(a.value, b) or inside(b.value, a):
        return "yes"
    if a.known or b.known:
        return "no"
    return "?"


def half_width(iv: Interval) -> float:
    """Half the width of a 95% interval (NaN without one, or when it is unbounded)."""
    width = iv.high - iv.low if iv.known else math.nan
    return width / 2 if math.isfinite(width) else math.nan


def replications(results: RunTables, strategy: str) -> int:
    reps = results.replications
    return int((reps["strategy"] == strategy).sum())


def replications_needed(half_a: float, n_a: int, half_b: float, n_b: int, bound: float) -> float:
    """Replications of each run for the 95% half-width of B - A to come down to ``bound``.

    Each run's per-replication standard deviation is read back from its
    interval's half-width as if it were Student-t's (half = t(n-1) s / sqrt(n)):
    the log-scale and Wilson intervals the metrics carry are close to that
    when they are narrow, which is when this estimate matters; with n
    replications of each the difference's half-width is about
    1.96 sqrt((s_a^2 + s_b^2) / n).
    NaN when a run has no interval to read a spread from.
    """
    if n_a < 2 or n_b < 2 or not (math.isfinite(half_a) and math.isfinite(half_b)) or bound <= 0:
        return math.nan
    var = sum((h * math.sqrt(n) / t_quantile_975(n - 1)) ** 2 for h, n in ((half_a, n_a), (half_b, n_b)))
    return float(math.ceil(Z975**2 * var / bound**2))


PER_REPLICATION = {"requests": "requests", "failed": "failed", "clients_affected": "clients_affected",
                   "dns_queries": "dns_queries", "latency_ms.p50": "latency_ms_p50", "latency_ms.p99": "latency_ms_p99"}


def pairable(a: RunTables, b: RunTables) -> str | None:
    """Why replication k of A and of B did not draw the same inputs, or None if they did."""
    ma, mb = a.manifest, b.manifest
    if ma.get("seed") is None or ma.get("seed") != mb.get("seed"):
        return f"different seeds ({ma.get('seed')} and {mb.get('seed')})"
    if not ma.get("scenario_sha256") or ma.get("scenario_sha256") != mb.get("scenario_sha256"):
        return "different scenarios (run the model on the lab's folder: failover-sim run LAB_DIR)"
    if ma.get("draws") is None or ma.get("draws") != mb.get("draws"):
        return (f"the engines do not draw alike (draws {ma.get('draws')} and {mb.get('draws')}: "
                "the model and the lab of one version do; older runs and the fast engine do not)")
    return None


def scenario_differences(a: RunTables, b: RunTables) -> list[str] | None:
    """The fields (dotted paths, with both values) in which the scenarios A and B ran
    differ; [] when they are the same scenario, None when a run does not record its
    scenario (an older results folder) and nobody can tell."""
    ma, mb = a.manifest, b.manifest
    if ma.get("scenario_sha256") and ma.get("scenario_sha256") == mb.get("scenario_sha256"):
        return []
    da, db = ma.get("scenario"), mb.get("scenario")
    if not isinstance(da, Mapping) or not isinstance(db, Mapping):
        return None
    flat_a, flat_b = _flatten(da), _flatten(db)
    return [f"{key} ({_shown(flat_a.get(key))} and {_shown(flat_b.get(key))})"
            for key in sorted(flat_a.keys() | flat_b.keys())
            if key.partition(".")[0] not in RUN_SETTINGS and flat_a.get(key, _ABSENT) != flat_b.get(key, _ABSENT)]


# Fields that say how a scenario is run or judged, not what is simulated: runs that
# differ only in them are of one scenario (two seeds are the usual comparison).
RUN_SETTINGS = frozenset({"name", "description", "seed", "replications", "expect"})
_ABSENT = object()


def _flatten(doc: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _shown(value: object) -> str:
    text = "absent" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def per_replication(results: RunTables, strategy: str, metric: str) -> pd.Series:
    """The metric replication by replication (index: replication), NaN where undefined."""
    reps = results.replications[results.replications["strategy"] == strategy].set_index("replication")
    if metric == "availability":
        requests = reps["requests"].astype(float)
        return (1.0 - reps["failed"].astype(float) / requests).where(requests > 0)
    if metric == "recovery_s.mean":
        clients = affected_clients(results.clients[results.clients["strategy"] == strategy])
        return clients.groupby("replication")["recovery_s"].mean().reindex(reps.index).astype(float)
    if metric in PER_REPLICATION:
        return reps[PER_REPLICATION[metric]].astype(float)
    return pd.Series(dtype=float)


def paired_difference(a: RunTables, b: RunTables, strategy: str, metric: str) -> tuple[float, float, int, float]:
    """(mean of B_k - A_k, its 95% half-width, pairs, sd of B_k - A_k) over the replications both have."""
    d = (per_replication(b, strategy, metric) - per_replication(a, strategy, metric)).dropna()
    n = len(d)
    if n == 0:
        return math.nan, math.nan, 0, math.nan
    if n == 1:
        return float(d.iloc[0]), math.nan, 1, math.nan
    sd = float(d.std(ddof=1))
    return float(d.mean()), t_quantile_975(n - 1) * sd / math.sqrt(n), n, sd


def comparison(a: RunTables, b: RunTables) -> pd.DataFrame:
    """One row per strategy and metric: both values, B - A, and how well B - A is known.

    ``resolution`` is the 95% half-width of the difference (the two half-widths
    in quadrature): a difference smaller than it cannot be told from noise
    with these replications, and a --max-diff bound smaller than it cannot be
    checked by them.
    """
    paired = pairable(a, b) is None
    rows = []
    for strategy in [s for s in a.summary["strategies"] if s in b.summary["strategies"]]:
        n_a, n_b = replications(a, strategy), replications(b, strategy)
        for metric in COMPARED:
            ia, ib = metric_interval(a, strategy, metric), metric_interval(b, strategy, metric)
            # a percentile beyond the run ("> run") on either side leaves the difference undefined
            diff = ib.value - ia.value if math.isfinite(ia.value) and math.isfinite(ib.value) else math.nan
            rel = diff / abs(ia.value) if ia.value not in (0.0,) and math.isfinite(diff) else math.nan
            ha, hb = half_width(ia), half_width(ib)
            pd_, ph, pn, psd = paired_difference(a, b, strategy, metric) if paired else (math.nan, math.nan, 0, math.nan)
            rows.append({"strategy": strategy, "metric": metric, "a": str(ia), "b": str(ib), "difference": diff,
                         "resolution": math.hypot(ha, hb), "relative": rel, "within_ci": agree(ia, ib),
                         "paired": pd_, "paired_resolution": ph, "pairs": pn,
                         "value_a": ia.value, "value_b": ib.value, "half_a": ha, "half_b": hb, "n_a": n_a, "n_b": n_b, "paired_sd": psd})
    return pd.DataFrame(rows)


def is_paired(a: RunTables, b: RunTables, table: pd.DataFrame) -> bool:
    """Whether the comparison's paired columns mean anything: pairable runs with a replication in common."""
    return pairable(a, b) is None and bool((table["pairs"] >= 1).any())


def shown_table(table: pd.DataFrame, paired: bool, label_a: str, label_b: str) -> str:
    """The comparison as the command prints it: formatted differences, the runs' labels as headings."""
    shown = table.drop(columns=["value_a", "value_b", "half_a", "half_b", "n_a", "n_b", "paired_sd"])
    if not paired:
        shown = shown.drop(columns=["paired", "paired_resolution", "pairs"])
    else:
        shown["paired"] = shown["paired"].map(lambda x: "" if math.isnan(x) else f"{x:+.4g}")
        shown["paired_resolution"] = shown["paired_resolution"].map(lambda x: "" if math.isnan(x) else f"±{x:.3g}")
    shown["difference"] = shown["difference"].map(lambda x: "" if math.isnan(x) else f"{x:+.4g}")
    shown["resolution"] = shown["resolution"].map(lambda x: "" if math.isnan(x) else f"±{x:.3g}")
    shown["relative"] = shown["relative"].map(lambda x: "" if math.isnan(x) else f"{x:+.1%}")
    return shown.rename(columns={"a": label_a, "b": label_b, "paired_resolution": "paired ±"}).to_string(index=False)


def broken_bounds(table: pd.DataFrame, bounds: Mapping[str, float], paired: bool) -> list[str]:
    """Each `--max-diff` bound the comparison breaks, said in words (empty: none).

    A bound is relative (to A's value) for every metric but availability,
    where it is in points. With pairs, the paired difference is judged. A
    broken bound finer than the difference's resolution says so, with the
    replications (or pairs) of each run that would resolve it.
    """
    broken = []
    for metric, bound in bounds.items():
        for _, row in table[table["metric"] == metric].iterrows():
            relative = metric != "availability"
            # one pair already estimates B - A without the run-to-run spread (no interval, though)
            use_pairs = paired and row["pairs"] >= 1
            diff = row["paired"] if use_pairs else row["difference"]
            if math.isinf(row["value_a"]) != math.isinf(row["value_b"]):
                # one run's percentile is beyond its end, the other's is not: no bound holds that
                broken.append(f"{row['strategy']} {metric}: one run's value is beyond its end ({UNBOUNDED}), the other's is not")
                continue
            if math.isnan(diff):
                continue
            if relative:
                size = abs(diff / row["value_a"]) if row["value_a"] != 0 else (0.0 if diff == 0 else math.inf)
            else:
                size = abs(diff)
            if size <= bound:
                continue
            text = f"{row['strategy']} {metric}: {size:.4g} > {bound:g}" + (" (paired)" if use_pairs else "")
            # the bound in the metric's own units, to set against the resolution
            absolute = bound * abs(row["value_a"]) if relative else bound
            broken.append(text + _unresolved(row, bound, absolute, use_pairs))
    return broken


def _unresolved(row: pd.Series, bound: float, absolute: float, use_pairs: bool) -> str:
    """What to add when the bound is finer than these runs know the difference ("" when it is not)."""
    resolution = row["paired_resolution"] if use_pairs else row["resolution"]
    if not absolute < resolution:
        return ""
    if use_pairs:
        need = float(math.ceil((Z975 * row["paired_sd"] / absolute) ** 2))
        count = f"{row['pairs']} pairs"
    else:
        need = replications_needed(row["half_a"], row["n_a"], row["half_b"], row["n_b"], absolute)
        count = f"{row['n_a']} and {row['n_b']} replications"
    return (f" (but these runs know the difference only to ±{resolution:.3g} with {count}"
            + (f"; about {need:.0f} of each would resolve {bound:g})" if math.isfinite(need) else ")"))


def overlay_figures(a, b, label_a: str, label_b: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Success rate over time and the recovery CDF of both runs on one figure each, as PNG bytes.

    `a` and `b` also need `.timeline`, `.name` and `.fault_times` (as `sim.open_results` gives).
    """
    from sim.analysis.figures import figure_png, plot_recovery_cdf, plot_success_rate

    def tagged(frame: pd.DataFrame, label: str) -> pd.DataFrame:
        frame = frame.copy()
        frame["strategy"] = label + ": " + frame["strategy"].astype(str)
        return frame

    timeline = pd.concat([tagged(a.timeline, label_a), tagged(b.timeline, label_b)], ignore_index=True)
    clients = pd.concat([tagged(a.clients, label_a), tagged(b.clients, label_b)], ignore_index=True)
    name = f"{a.name} ({label_a} vs {label_b})"
    return {
        "compare_success_rate": figure_png(plot_success_rate(timeline, scenario=name, fault_times=a.fault_times)),
        "compare_recovery_cdf": figure_png(plot_recovery_cdf(clients, scenario=name)),
    }
