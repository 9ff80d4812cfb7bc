"""The intervals against known coverage, and never a negative bound on a quantity that cannot be negative.

Coverage is estimated by simulation with a seeded generator: M intervals, the
share that contain the true value. That estimate has the binomial standard
error sqrt(c (1 - c) / M), so a correct method lands within 3 standard errors
of its known coverage (a false alarm 3 times in 1000); the tolerances below
are that, not chosen numbers.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.analysis.intervals import interval_frame, metric_interval
from sim.analysis.stats import (
    format_table,
    mean_ci95,
    positive_ci95,
    recovery_percentile,
    share_ci95,
    summarize,
    wilson_interval,
)

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


def _tolerance(coverage: float, draws: int) -> float:
    return 3.0 * math.sqrt(coverage * (1.0 - coverage) / draws)


def _exact_wilson_coverage(p: float, n: int) -> float:
    """Wilson's coverage at p and n, summed over every outcome of the binomial: the known value."""
    total = 0.0
    for k in range(n + 1):
        low, high = wilson_interval(k / n, n)
        if low <= p <= high:
            total += math.comb(n, k) * p**k * (1 - p) ** (n - k)
    return total


@pytest.mark.parametrize(("p", "n"), [(0.01, 50), (0.3, 50), (0.97, 200)])
def test_wilson_coverage_of_a_binomial_share_matches_the_binomial(p: float, n: int) -> None:
    rng = np.random.default_rng(20260521)
    draws = 20_000
    counts = rng.binomial(n, p, size=draws)
    covered = 0
    for k in counts:
        low, high = wilson_interval(k / n, n)
        covered += low <= p <= high
    known = _exact_wilson_coverage(p, n)
    assert abs(covered / draws - known) <= _tolerance(known, draws)


def test_wilson_at_p_001_n_50_covers_what_it_should_and_wald_does_not() -> None:
    # At p = 0.01, n = 50 Wilson covers exactly when 0 or 1 of the 50 succeed (2 of 50
    # puts its lower bound at 1.1%): P(X <= 1) = 91.06%, one of the dips near p = 0
    # Brown, Cai and DasGupta (2001) describe. The Wald (normal) interval, what a
    # Student-t interval amounts to here, is [0, 0] at X = 0 and covers 39%.
    n, p = 50, 0.01
    assert _exact_wilson_coverage(p, n) == pytest.approx((1 - p) ** n + n * p * (1 - p) ** (n - 1))
    assert wilson_interval(2 / n, n)[0] > p > wilson_interval(1 / n, n)[0]
    wald = sum(
        math.comb(n, k) * p**k * (1 - p) ** (n - k)
        for k in range(n + 1)
        if abs(k / n - p) <= 1.959964 * math.sqrt(k / n * (1 - k / n) / n)
    )
    assert wald < 0.5 < _exact_wilson_coverage(p, n)
    assert wilson_interval(0.0, n) == (0.0, pytest.approx(1.959964**2 / (n + 1.959964**2)))


@pytest.mark.parametrize(("mu", "concentration"), [(0.3, 10.0), (0.05, 50.0)])
def test_share_interval_covers_a_clustered_share(mu: float, concentration: float) -> None:
    # Ten replications of 200 trials whose success share itself varies from replication to
    # replication (beta-distributed: one fault hits all of a replication's clients). The
    # interval is for the mean share mu; a Wilson over the 2000 pooled trials would ignore
    # the clustering and cover far less.
    rng = np.random.default_rng(7)
    draws, reps, n = 2_000, 10, 200
    covered = pooled = 0
    for _ in range(draws):
        shares = rng.binomial(n, rng.beta(mu * concentration, (1 - mu) * concentration, reps)) / n
        _, low, high = share_ci95(shares, np.full(reps, n))
        assert 0.0 <= low <= high <= 1.0
        covered += low <= mu <= high
        p_low, p_high = wilson_interval(float(shares.mean()), reps * n)
        pooled += p_low <= mu <= p_high
    assert abs(covered / draws - 0.95) <= _tolerance(0.95, draws)
    assert pooled / draws < 0.95 - _tolerance(0.95, draws)


def test_share_interval_of_a_share_that_never_moves_is_not_zero_width() -> None:
    share, low, high = share_ci95([0.0, 0.0, 0.0], [100, 100, 100])
    assert share == low == 0.0 < high < 1.0
    share, low, high = share_ci95([1.0, 1.0], [50, 50])
    assert share == high == 1.0 and 0.0 < low < 1.0
    assert all(math.isnan(x) for x in share_ci95([0.2], [10])[1:])


def test_positive_interval_covers_the_mean_of_a_near_normal_positive_quantity() -> None:
    rng = np.random.default_rng(11)
    draws, n, mean = 4_000, 5, 20.0
    covered = sum(lo <= mean <= hi for _, lo, hi in (positive_ci95(rng.gamma(20.0, 1.0, n)) for _ in range(draws)))
    assert abs(covered / draws - 0.95) <= _tolerance(0.95, draws)


def test_positive_interval_on_skewed_times_is_never_negative_and_covers_more_than_student_t() -> None:
    # Exponential recovery times, five replications: the Student-t interval often goes below 0
    # and undercovers; the log-scale one stays positive and covers more, on the same samples.
    rng = np.random.default_rng(3)
    draws, n, mean = 4_000, 5, 10.0
    log_covered = t_covered = t_negative = 0
    for _ in range(draws):
        x = rng.exponential(mean, n)
        _, lo, hi = positive_ci95(x)
        _, t_lo, t_hi = mean_ci95(x)
        assert lo > 0
        log_covered += lo <= mean <= hi
        t_covered += t_lo <= mean <= t_hi
        t_negative += t_lo < 0
    assert t_negative > 0
    # the two proportions are paired, so their difference's standard error is at most the sum of theirs
    gap = _tolerance(log_covered / draws, draws) + _tolerance(t_covered / draws, draws)
    assert log_covered / draws - t_covered / draws > gap


def test_positive_interval_edges() -> None:
    assert positive_ci95([0.0, 0.0, 0.0]) == (0.0, 0.0, 0.0)
    assert math.isnan(positive_ci95([3.0])[1])
    assert positive_ci95([5.0, math.inf, 7.0]) == (math.inf, 5.0, math.inf)
    with pytest.raises(ValueError):
        positive_ci95([1.0, -1.0])


def test_a_percentile_among_the_never_recovered_is_unbounded() -> None:
    # 97 recovered, 3 never: p90 is observed, p99 falls among the three
    values = np.r_[np.arange(1.0, 98.0), [np.nan] * 3]
    assert recovery_percentile(values, 90) == 91.0
    assert recovery_percentile(values, 99) == math.inf
    assert math.isnan(recovery_percentile(np.array([]), 50))


def _tables(summary: dict, clients: pd.DataFrame, reps: pd.DataFrame):  # type: ignore[no-untyped-def]
    class Tables:
        pass

    t = Tables()
    t.summary, t.clients, t.replications, t.manifest = summary, clients, reps, {}  # type: ignore[attr-defined]
    return t


def test_summary_table_and_check_say_the_same_unbounded_p99() -> None:
    reps = pd.DataFrame(
        {"strategy": "a", "replication": [0, 1], "requests": [100, 100], "failed": [5, 7], "clients_affected": [50, 50],
         "stragglers_5m": [0.04, 0.02], "latency_ms_p50": [10.0, 12.0], "latency_ms_p99": [50.0, 70.0],
         "dns_queries": [5, 7], "dropped": [0, 0]}
    )  # fmt: skip
    recovery = [np.r_[np.arange(1.0, 49.0), np.nan, np.nan], np.r_[np.arange(1.0, 50.0), np.nan]]
    clients = pd.DataFrame(
        {"strategy": "a", "replication": np.repeat([0, 1], 50), "client": np.arange(100), "cohort": "c",
         "resolver_group": "g", "recovery_s": np.concatenate(recovery), "failed": 1, "fault_at": 0.0}
    )  # fmt: skip
    summary = summarize(reps, clients, scenario="t", engine="des", seed=1, version="0")
    s = summary["strategies"]["a"]
    # pooled: 1..48 and 1..49 recovered, three never; p50 is the 51st of 100 (numpy "higher"): 26 s
    assert s["recovery_s"]["p99"] == "> run" and s["recovery_s"]["p50"] == 26.0
    assert math.isinf(metric_interval(_tables(summary, clients, reps), "a", "recovery_s.p99").value)
    row = next(line for line in format_table(summary).splitlines() if line.startswith("recovery p99"))
    assert row.endswith("> run")
    low, high = s["ci95"]["recovery_s.unrecovered"]
    assert 0.0 <= low <= s["recovery_s"]["unrecovered"] <= high <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_no_interval_printed_for_a_shipped_scenario_has_a_negative_bound(path: Path) -> None:
    from sim.fast.refusals import unsupported

    scenario = sim.load(path)
    # the fast engine where it runs the scenario (every shipped one, browsing sessions
    # included); the model where it names what it cannot
    results = sim.run(scenario, "des" if unsupported(scenario) else "fast", replications=3)
    bracket = re.compile(r"\[([^\],]+), ([^\]]+)\]")
    for low, high in bracket.findall(format_table(results.summary)):
        assert not low.strip().startswith("-") and not high.strip().startswith("-"), (low, high)
    frame = interval_frame(results)
    known = frame.dropna(subset=["low"])
    assert len(known) and (known["low"] >= 0).all(), known[known["low"] < 0]
    for metrics in results.summary["strategies"].values():
        for name, (low, high) in metrics["ci95"].items():
            assert low is None or low >= 0, name
            share = name in ("availability", "stragglers_5m", "recovery_s.unrecovered") or name.startswith("stale_")
            if share and high is not None:
                assert high <= 1.0, name
