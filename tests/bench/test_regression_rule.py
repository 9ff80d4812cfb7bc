"""The regression gate's decision rule and its calibration, on given readings (nothing timed).

The gate compares the mean over pairs of log(ratio) with log(baseline) minus a
threshold T (sim.bench.regression.decide); sim.bench.gate_stats derives T from the
spread of that statistic. Checked against closed forms: a 30% CPU slowdown of the
measured side divides a ratio by 1.3, a shift of -log 1.3; chi-square quantiles
from the tables; the threshold interval [z99 sigma, log 1.3 - z95 sigma].
"""

from __future__ import annotations

import math

import pytest

from sim.bench.gate_stats import chi2_quantile, figure, sigma_upper, threshold
from sim.bench.regression import decide, statistic


def test_a_30_percent_slowdown_of_every_pair_shifts_the_statistic_by_log_1_3() -> None:
    base = 0.85
    pairs = [0.83, 0.85, 0.86, 0.88, 0.84]
    before, failed = decide(pairs, base, 0.15)
    assert before == pytest.approx(math.log(math.prod(pairs) ** (1 / 5) / base)) and not failed
    slowed = [r / 1.3 for r in pairs]
    after, failed = decide(slowed, base, 0.15)
    assert after - before == pytest.approx(-math.log(1.3)) and failed


def test_the_threshold_is_a_log_drop_and_the_boundary_passes() -> None:
    # exactly at the limit is not below it
    assert decide([0.9 * math.exp(-0.1)], 0.9, 0.1 + 1e-12) == (pytest.approx(-0.1), False)
    assert decide([0.9 * math.exp(-0.1)], 0.9, 0.1 - 1e-9)[1]


def test_the_statistic_is_the_log_of_the_geometric_mean_and_weighs_alternated_strategies_alike() -> None:
    # pairs alternate two strategies whose ratios differ (0.71 and 0.79): the statistic is
    # their geometric mean whatever the pair count's parity, where a median of 6 would
    # sit between the groups and move with each run's noise
    pairs = [0.71, 0.79] * 3
    assert statistic(pairs) == pytest.approx(math.log(math.sqrt(0.71 * 0.79)))
    assert statistic([2.0, 8.0]) == pytest.approx(math.log(4.0))


@pytest.mark.parametrize(("p", "dof", "table"), [(0.05, 19, 10.117), (0.05, 29, 17.708), (0.95, 10, 18.307)])
def test_chi_square_quantiles_match_the_tables(p: float, dof: int, table: float) -> None:
    assert chi2_quantile(p, dof) == pytest.approx(table, rel=0.01)


def test_sigma_upper_bound_from_20_runs() -> None:
    # sqrt(19 / 10.117) = 1.370: twenty runs bound sigma at 1.37 times its estimate
    assert sigma_upper(0.05, 20) == pytest.approx(0.05 * 1.370, rel=0.01)


def test_threshold_is_the_middle_of_the_interval_both_aims_allow() -> None:
    shift = math.log(1.3)
    t, ok = threshold(0.03, shift)
    assert ok and t == pytest.approx((2.3263 * 0.03 + shift - 1.6449 * 0.03) / 2, rel=1e-3)
    # sigma above shift / (z99 + z95) = 0.0660: no threshold does both; false alarms first
    t, ok = threshold(0.07, shift)
    assert not ok and t == pytest.approx(2.3263 * 0.07, rel=1e-3)


def test_figure_counts_false_alarms_and_catches_at_its_threshold() -> None:
    # unchanged runs spread +-2% around 1.0; injected runs at 1 / 1.3
    steps = [-0.02, -0.01, 0.0, 0.01, 0.02] * 4
    unchanged = [[math.exp(s)] * 3 for s in steps]
    injected = [[math.exp(s) / 1.3] * 3 for s in steps[:10]]
    f = figure(unchanged, injected, 0.3)
    assert f["baseline"] == pytest.approx(1.0)
    assert f["false_alarms"] == 0 and f["caught"] == 10 and f["both_aims_hold"]
    assert f["injected_change"] == pytest.approx(1 / 1.3 - 1)
    assert 0.0 < f["allowed_drop"] < 1 - 1 / 1.3
