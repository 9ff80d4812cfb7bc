"""Statistics across replications: 95% intervals that respect their quantity, the summary.

Replications are independent runs (seeds from SeedSequence.spawn), so a metric's
per-replication values are i.i.d.; the interval is built on them, with the
method chosen by what the quantity is (docs/references.md, "Intervals"):

- a share (availability, stragglers, never recovered): :func:`share_ci95`, a
  Wilson score interval (Wilson 1927) with the effective sample size read from
  the spread across replications (Korn and Graubard 1998). A share's trials
  (requests, clients) are not independent within a replication (they all meet
  the same fault), so a Wilson interval over the pooled trials would be far too
  narrow; the spread of the replications' shares measures that clustering.
  Stays inside [0, 1] and is not zero-width at 0 % or 100 %.
- a non-negative quantity (a time, a count): :func:`positive_ci95`, the
  Student-t interval of the log of the mean (delta method): always positive,
  skewed up as these quantities are, and it covers better than the plain
  t interval on skewed data with few replications (tests/analysis/test_intervals.py).
- a difference (`compare`'s paired B - A), which may be negative:
  :func:`mean_ci95`, the Student-t interval.

scipy is not a dependency, so the t quantiles are tabulated (exact to 1e-8)
and extended with a Cornish-Fisher expansion beyond the table.

A recovery percentile counts clients that never recovered within the run as
infinitely slow (:func:`recovery_percentile`): when its rank falls among them it
is unbounded, shown as "> run" (:data:`UNBOUNDED`) and stored as that string in
summary.json. `check`, the table, the report, `compare` and the sweeps share it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Re-exported: the tables read a summary, the stats make one; callers import both here.
from sim.analysis.drain import (
    DRAIN_PERCENTILES,
    drain_times,
    pooled_percentile,
    replication_drain,
    stale_trials,
)
from sim.analysis.table import UNBOUNDED, format_table, recovery_percentile, summary_table
from sim.results.schema import affected_clients

__all__ = [
    "RECOVERY_PERCENTILES",
    "UNBOUNDED",
    "format_table",
    "mean_ci95",
    "positive_ci95",
    "recovery_percentile",
    "share_ci95",
    "stragglers_share",
    "summarize",
    "summary_table",
    "t_quantile_975",
    "wilson_interval",
]


# t(0.975, df) for df = 1..30.
_T975: tuple[float, ...] = (
    12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184,
    2.44691185, 2.36462425, 2.30600414, 2.26215716, 2.22813885,
    2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955,
    2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345,
    2.07961384, 2.07387307, 2.06865761, 2.06389856, 2.05953855,
    2.05552944, 2.05183052, 2.04840714, 2.04522964, 2.04227246,
)  # fmt: skip
_Z975 = 1.959963984540054

# The percentiles of recovery_s in summary.json, name -> q (see recovery_percentile).
RECOVERY_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0}

# stragglers_5m: not recovered this long after the fault.
_STRAGGLER_S = 300.0


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    # Cornish-Fisher expansion in 1/df; error < 1e-6 for df > 30, and it joins the
    # table without the jump a flat 1.96 would cause.
    z, v = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def mean_ci95(values: Iterable[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its two-sided 95% Student-t interval.

    NaN values are dropped (a replication in which a metric is undefined, e.g. no
    client was affected, says nothing about it). With no values all three are NaN;
    with one value the bounds are NaN, because one replication gives no estimate
    of the spread and a zero-width interval would claim certainty.
    """
    data = np.asarray(list(values), dtype=float)
    data = data[~np.isnan(data)]
    n = data.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if n == 1:
        return mean, math.nan, math.nan
    half = t_quantile_975(n - 1) * float(data.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half



def positive_ci95(values: Iterable[float]) -> tuple[float, float, float]:
    """(mean, low, high) for a quantity that cannot be negative (a time, a count).

    The t interval of log(mean) by the delta method: mean / f to mean * f with
    f = exp(t(n-1) * s / (sqrt(n) * mean)). Never below zero, and wider above
    than below, as the spread of a skewed positive quantity is. All zeros give
    [0, 0]. NaN values are dropped; an infinite value (an unbounded percentile)
    makes the upper bound infinite, the lower the smallest finite value's bound.
    One value: NaN bounds, as for :func:`mean_ci95`.
    """
    data = np.asarray(list(values), dtype=float)
    data = data[~np.isnan(data)]
    if np.any(data < 0):
        raise ValueError("positive_ci95: a value is negative; use mean_ci95 for a signed quantity")
    n = data.size
    if n == 0:
        return math.nan, math.nan, math.nan
    if np.isinf(data).any():
        finite = data[np.isfinite(data)]
        return math.inf, float(finite.min()) if finite.size else math.inf, math.inf
    mean = float(data.mean())
    if n == 1:
        return mean, math.nan, math.nan
    if mean == 0.0:
        return 0.0, 0.0, 0.0
    factor = math.exp(t_quantile_975(n - 1) * float(data.std(ddof=1)) / (math.sqrt(n) * mean))
    return mean, mean / factor, mean * factor


def wilson_interval(share: float, trials: float, z: float = _Z975) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927) of a share observed over `trials` independent trials.

    Inside [0, 1] always, and not zero-width at 0 or 1 (where the Wald interval
    claims certainty). `trials` may be fractional (an effective sample size);
    `z` the quantile (1.96 for 95 %, or a t quantile).
    """
    if trials <= 0 or math.isnan(share):
        return math.nan, math.nan
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (share + z2 / (2.0 * trials)) / denominator
    half = z / denominator * math.sqrt(share * (1.0 - share) / trials + z2 / (4.0 * trials * trials))
    # at 0 or 1 the bound is exactly there (centre - half is 0 only up to rounding)
    low = 0.0 if share <= 0.0 else max(0.0, centre - half)
    high = 1.0 if share >= 1.0 else min(1.0, centre + half)
    return low, high


def share_ci95(
    shares: Iterable[float], trials: Iterable[float], estimate: float | None = None
) -> tuple[float, float, float]:
    """(share, low, high): a share from replications, with its 95% Wilson interval.

    ``shares`` are the replications' shares and ``trials`` how many trials each
    was taken over (requests, affected clients). The estimate is the mean of the
    shares unless ``estimate`` (a pooled share, say) is given. Trials within a
    replication are clustered (one fault hits them all), so the Wilson interval
    uses the effective sample size p(1-p) / var, with var the variance of the
    mean from the spread of the replications' shares, capped at the trials
    counted, and the t(n-1) quantile for z (Korn and Graubard 1998). When the
    shares do not vary (all 0 or all 1), the trials counted are the sample size.
    One replication: NaN bounds (no spread to measure the clustering with).
    """
    pairs = [(float(p), float(n)) for p, n in zip(shares, trials, strict=True) if not math.isnan(float(p))]
    if not pairs:
        return math.nan, math.nan, math.nan
    data = np.array([p for p, _ in pairs])
    total = float(sum(n for _, n in pairs))
    share = float(data.mean()) if estimate is None else float(estimate)
    if len(pairs) == 1 or total <= 0:
        return share, math.nan, math.nan
    variance = float(data.var(ddof=1)) / len(pairs)
    effective = min(total, share * (1 - share) / variance) if variance > 0 and 0 < share < 1 else total
    return share, *wilson_interval(share, effective, t_quantile_975(len(pairs) - 1))


def _recovery(rec: pd.DataFrame) -> dict[str, float]:
    values = rec["recovery_s"].to_numpy(dtype=float)
    recovered = values[~np.isnan(values)]
    # the mean is over recovered clients (an unrecovered one has no time to add);
    # the percentiles and the max count the others as unbounded
    out: dict[str, float] = {"mean": float(recovered.mean()) if recovered.size else math.nan}
    for name, q in RECOVERY_PERCENTILES.items():
        out[name] = recovery_percentile(values, q)
    out["max"] = recovery_percentile(values, 100.0)
    out["unrecovered"] = float(np.isnan(values).mean()) if values.size else math.nan
    return out


# Which interval each per-replication series takes: shares with their trials' column, the rest positive.
_SHARES = {"availability": "requests", "stragglers_5m": "clients_affected"}


def _drain_summary(
    reps: pd.DataFrame, clients: pd.DataFrame, targets: pd.DataFrame, stale_at: Sequence[float]
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The drain metrics (sim.analysis.drain) of one strategy, and their intervals:
    `drain_s` pooled over the replications in which a change was made, the stale
    shares as means over those replications."""
    if targets.empty or "changed_at" not in reps:
        return {}, {}
    per_rep, pooled, trials = [], [], []
    for k, changed_at in zip(reps["replication"], reps["changed_at"].to_numpy(dtype=float), strict=True):
        if math.isnan(changed_at):
            continue
        here = clients[clients["replication"] == k]
        per_rep.append(replication_drain(here, targets[targets["replication"] == k], changed_at, stale_at))
        trials.append(stale_trials(here, targets[targets["replication"] == k], changed_at, stale_at))
        pooled.append(drain_times(here, changed_at))
    if not per_rep:
        return {}, {}
    drains = np.concatenate(pooled)
    drain: dict[str, float] = {"mean": float(drains.mean()) if drains.size else math.nan}
    drain.update({name: pooled_percentile(drains, q) for name, q in DRAIN_PERCENTILES.items()})
    drain["never"] = float(np.mean(np.isinf(drains))) if drains.size else math.nan
    out: dict[str, Any] = {"drain_s": drain}
    ci: dict[str, list[float]] = {}
    never = [(float(np.mean(np.isinf(d))), float(d.size)) for d in pooled if d.size]
    if never:
        _, low, high = share_ci95([v for v, _ in never], [n for _, n in never], estimate=drain["never"])
        ci["drain_s.never"] = [low, high]
    means = [r["drain_s.mean"] for r in per_rep]
    if all(math.isfinite(v) for v in means):
        _, low, high = positive_ci95(means)
        ci["drain_s.mean"] = [low, high]
    for name in per_rep[0]:
        if name != "drain_s.mean":
            value, low, high = share_ci95([r[name] for r in per_rep], [n[name] for n in trials])
            out[name] = value
            ci[name] = [low, high]
    return out, ci


def _strategy_summary(reps: pd.DataFrame, clients: pd.DataFrame) -> dict[str, Any]:
    requests = reps["requests"].to_numpy(dtype=float)
    failed = reps["failed"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        availability = np.where(requests > 0, 1.0 - failed / requests, np.nan)

    # Per-replication series behind each reported mean; their CIs go in ci95.
    per_rep: dict[str, np.ndarray] = {
        "requests": requests,
        "failed": failed,
        "availability": availability,
        "clients_affected": reps["clients_affected"].to_numpy(dtype=float),
        "stragglers_5m": reps["stragglers_5m"].to_numpy(dtype=float),
        "latency_ms.p50": reps["latency_ms_p50"].to_numpy(dtype=float),
        "latency_ms.p99": reps["latency_ms_p99"].to_numpy(dtype=float),
        "dns_queries": reps["dns_queries"].to_numpy(dtype=float),
        "dropped": reps["dropped"].to_numpy(dtype=float),
    }
    means = {
        name: share_ci95(series, per_rep[_SHARES[name]]) if name in _SHARES else positive_ci95(series)
        for name, series in per_rep.items()
    }
    rep_ids = reps["replication"].to_numpy()
    by_rep = clients.groupby("replication")["recovery_s"]
    rec_means = by_rep.mean().reindex(rep_ids).to_numpy(dtype=float)
    ci95 = {name: [low, high] for name, (_, low, high) in means.items()}
    _, low, high = positive_ci95(rec_means)
    ci95["recovery_s.mean"] = [low, high]
    recovery = _recovery(clients)
    never = by_rep.apply(lambda r: float(r.isna().mean())).reindex(rep_ids).to_numpy(dtype=float)
    counted = by_rep.size().reindex(rep_ids).fillna(0).to_numpy(dtype=float)
    _, low, high = share_ci95(never, counted, recovery["unrecovered"])
    ci95["recovery_s.unrecovered"] = [low, high]

    return {
        "requests": means["requests"][0],
        "failed": means["failed"][0],
        "availability": means["availability"][0],
        "clients_affected": means["clients_affected"][0],
        "recovery_s": recovery,
        "stragglers_5m": means["stragglers_5m"][0],
        "latency_ms": {"p50": means["latency_ms.p50"][0], "p99": means["latency_ms.p99"][0]},
        "dns_queries": means["dns_queries"][0],
        "dropped": means["dropped"][0],
        "ci95": ci95,
    }


def _clean(obj: Any) -> Any:
    # NaN is not JSON; None (null) is what summary.json holds for undefined values,
    # and "> run" an unbounded one (a recovery percentile beyond the run).
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return UNBOUNDED if obj == math.inf else None
    return obj


def stragglers_share(clients: pd.DataFrame, horizon_s: float = _STRAGGLER_S) -> float:
    """Share of affected clients not recovered ``horizon_s`` after the fault.

    For engines filling replications.stragglers_5m from their clients table:
    an unrecovered client (NaN) is a straggler; NaN when no client was affected.
    """
    values = clients["recovery_s"].to_numpy(dtype=float)
    if values.size == 0:
        return math.nan
    return float(np.mean(np.isnan(values) | (values > horizon_s)))


def summarize(
    replications: pd.DataFrame,
    clients: pd.DataFrame,
    *,
    scenario: str,
    engine: str,
    seed: int,
    version: str,
    fault_times: Sequence[float] = (),
    targets: pd.DataFrame | None = None,
    stale_at: Sequence[float] = (),
) -> dict[str, Any]:
    """The summary.json dict (docs/scenario.md, "Results") from a run's tables.

    ``replications`` and ``clients`` are the REPLICATIONS and CLIENTS tables.
    Per strategy, every scalar is the mean over replications, and ``ci95`` holds
    its 95% interval, with dotted names for nested metrics (``latency_ms.p99``):
    Wilson for the shares (:func:`share_ci95`: availability, stragglers_5m,
    recovery_s.unrecovered), the log-scale interval for everything else
    (:func:`positive_ci95`), so no bound is negative.

    ``availability`` is the mean of the per-replication ``1 - failed/requests``
    (not the ratio of the means), so its CI is over the same quantity.

    ``recovery_s`` pools the affected clients of all replications. Clients never
    recovered by the end (NaN) have no recovery time: ``mean`` is over recovered
    clients only, while ``p50``, ``p90``, ``p99`` and ``max`` count them as
    unbounded (:func:`recovery_percentile`, as `check` does), so a percentile
    whose rank falls among them is "> run". ``recovery_s.unrecovered`` is the
    share of affected clients that never recovered (pooled, with its Wilson
    interval). ``recovery_s.mean`` has its interval from the per-replication
    means; the pooled percentiles have none here (`check` and `compare` build
    theirs from each replication's percentile: sim.analysis.intervals).

    Undefined values (a CI from one replication, percentiles with no affected
    client) are None and unbounded ones "> run", so the dict is valid JSON as
    it stands. ``fault_times``
    (seconds from 0) is recorded as ``fault_times`` for the figures and reports.

    With ``targets`` (the TARGETS table), each strategy also gets its drain
    metrics (sim.analysis.drain): ``drain_s`` and, for each of ``stale_at``,
    ``stale_requests@<t>`` and ``stale_clients@<t>``.
    """
    strategies: dict[str, Any] = {}
    if targets is None or "strategy" not in targets:
        targets = pd.DataFrame(columns=["strategy"])  # no engine here tracked targets
    # Keep the order the engine ran the strategies in (the scenario's order).
    for name in pd.unique(replications["strategy"]):
        reps = replications[replications["strategy"] == name].sort_values("replication")
        everyone = clients[clients["strategy"] == name]
        summary = _strategy_summary(reps, affected_clients(everyone))
        drain, ci = _drain_summary(reps, everyone, targets[targets["strategy"] == name], stale_at)
        summary.update(drain)
        summary["ci95"].update(ci)
        strategies[str(name)] = summary
    summary = {
        "scenario": scenario,
        "engine": engine,
        "seed": int(seed),
        "replications": int(replications["replication"].nunique()),
        "version": version,
        "fault_times": [float(t) for t in fault_times],
        "strategies": strategies,
    }
    return _clean(summary)
