"""sim.fit.shape: hourly factors against the day's mean, partial hours weighted by coverage."""

from __future__ import annotations

import pytest

from sim.fit.shape import ShapeTally, fit_shape


def test_a_busier_hour_has_its_factor() -> None:
    tally = ShapeTally()
    # a day: hour 12 gets 3x the requests of every other hour
    for h in range(24):
        for _ in range(300 if h == 12 else 100):
            tally.add(h * 3600.0 + 1800.0)
    shape = fit_shape(tally, 0.0, 24 * 3600.0)
    mean = (23 * 100 + 300) / 24
    assert shape.factors[12].value == pytest.approx(300 / mean)
    assert shape.factors[0].value == pytest.approx(100 / mean)
    assert shape.factors[12].low < 300 / mean < shape.factors[12].high


def test_a_half_covered_hour_counts_for_half_and_unseen_hours_are_none() -> None:
    tally = ShapeTally()
    for _ in range(100):
        tally.add(1800.0 + 1)  # hour 0, log from 1800 s
        tally.add(3600.0 + 1)  # hour 1 whole
        tally.add(3600.0 + 2)
    shape = fit_shape(tally, 1800.0, 7200.0)
    assert shape.factors[0].value == pytest.approx(shape.factors[1].value)  # 100 in half an hour = 200 in a whole
    assert shape.factors[5] is None
