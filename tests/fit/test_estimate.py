"""sim.fit.estimate: the quantile and share intervals against closed forms and coverage."""

from __future__ import annotations

import numpy as np

from sim.fit.estimate import quantile_interval, ratio_share


def test_quantile_interval_covers_the_true_quantile_about_95_percent() -> None:
    rng = np.random.default_rng(1)
    trials = 400
    hits = 0
    for _ in range(trials):
        e = quantile_interval(rng.exponential(1.0, 300), 0.9)
        hits += e.low <= np.log(10) <= e.high  # the exponential's 90th percentile is ln 10
    share = hits / trials
    se = np.sqrt(0.95 * 0.05 / trials)
    assert abs(share - 0.95) <= 3 * se + 0.01


def test_ratio_share_equal_weights_is_the_plain_share_and_stays_in_0_1() -> None:
    e = ratio_share(np.ones(10), np.array([1] * 3 + [0] * 7))
    assert e.value == 0.3 and 0.0 <= e.low < 0.3 < e.high <= 1.0
    all_in = ratio_share(np.array([5.0, 1.0]), np.array([1, 1]))
    assert (all_in.value, all_in.low, all_in.high) == (1.0, 1.0, 1.0)


def test_ratio_share_is_weighted() -> None:
    assert ratio_share(np.array([9.0, 1.0]), np.array([1, 0])).value == 0.9
