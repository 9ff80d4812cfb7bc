"""Units and distributions of the scenario language."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.scenario.units import (
    Constant,
    Empirical,
    Exponential,
    LogNormal,
    Uniform,
    format_duration,
    parse_distribution,
    parse_duration,
    parse_rate,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("150ms", 0.15), ("30s", 30), ("5m", 300), ("5min", 300), ("2h", 7200), ("1d", 86400),
     (45, 45), (2.5, 2.5), ("10", 10), ("1.5h", 5400), (" 3 s ", 3), ("0s", 0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "s", "", "1x", "--1s", [1], {"a": 1}, True, None, float("nan"), "1e999s"])
def test_duration_errors_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "rate"),
    [("20/s", 20), ("60/min", 1), ("1000/h", 1000 / 3600), (3, 3), ("0.2/s", 0.2), ("86400/d", 1), ("7", 7)],
)
def test_rates(text: object, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("bad", ["20/week", "fast", "/s", "20 per s", [20], True])
def test_rate_errors(bad: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(bad)


# Up to 1e4 days: within the 1e9 s bound on any duration (sim.scenario.limits).
@given(st.floats(min_value=0, max_value=1e4, allow_nan=False), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_duration_unit_scaling(value: float, unit: str) -> None:
    scale = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{value!r}{unit}") == pytest.approx(value * scale, rel=1e-12)


@pytest.mark.parametrize("huge", ["1e300d", "11575d", 1e10, "2e12ms"])
def test_durations_beyond_the_bound_are_refused_with_the_reason(huge: object) -> None:
    with pytest.raises(ValueError, match="at most 1e[+]?0?9s .*acts as forever"):
        parse_duration(huge)


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_bare_number_is_seconds_and_format_round_trips(value: float) -> None:
    assert parse_duration(value) == value
    assert parse_duration(format_duration(value)) == pytest.approx(value, rel=1e-6, abs=1e-9)


@given(st.text(max_size=12))
def test_parser_never_crashes_on_text(text: str) -> None:
    # Any string either parses to a finite number or raises a ValueError, never anything else.
    for parse in (parse_duration, parse_rate):
        with contextlib.suppress(ValueError):
            assert math.isfinite(parse(text))


@given(st.floats(min_value=0.001, max_value=1e5), st.sampled_from(["s", "min", "h"]))
def test_rate_unit_scaling(value: float, unit: str) -> None:
    per = {"s": 1, "min": 60, "h": 3600}[unit]
    assert parse_rate(f"{value!r}/{unit}") == pytest.approx(value / per, rel=1e-12)


RNG = np.random.default_rng(1)


@pytest.mark.parametrize(
    ("spec", "kind", "mean"),
    [
        ("30s", Constant, 30),
        ({"constant": "2m"}, Constant, 120),
        ({"exp": "20ms"}, Exponential, 0.02),
        ({"uniform": ["5s", "6s"]}, Uniform, 5.5),
        ({"lognormal": {"median": "5m", "sigma": 1.0}}, LogNormal, 300 * math.exp(0.5)),
        ({"empirical": [["0s", 0.0], ["10s", 0.5], ["30s", 1.0]]}, Empirical, 0.5 * 5 + 0.5 * 20),
    ],
)
def test_distribution_forms_sample_to_their_mean(spec: object, kind: type, mean: float) -> None:
    dist = parse_distribution(spec)
    assert isinstance(dist, kind)
    assert dist.mean == pytest.approx(mean)
    draws = dist.sample(RNG, 200_000)
    assert draws.shape == (200_000,)
    assert (draws >= 0).all()
    # 5 standard errors of the sample mean: a false failure has odds below 1e-6.
    se = draws.std() / math.sqrt(draws.size)
    assert abs(draws.mean() - mean) <= 5 * se + 1e-12


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"exp": "0s"}, "mean must be > 0"),
        ({"uniform": ["6s", "5s"]}, "HIGH must be >= LOW"),
        ({"uniform": ["5s"]}, r"\[LOW, HIGH\]"),
        ({"lognormal": {"median": "5m"}}, "median"),
        ({"lognormal": {"median": "5m", "sigma": -1}}, "sigma"),
        ({"empirical": [["1s", 0.5]]}, "at least two"),
        ({"empirical": [["1s", 0.5], ["2s", 0.9]]}, "last CDF value must be 1"),
        ({"empirical": [["2s", 0.5], ["1s", 1.0]]}, "non-decreasing"),
        ({"empirical": [["1s", 1.5], ["2s", 1.0]]}, r"in \[0, 1\]"),
        ({"gamma": "1s"}, "unknown distribution"),
        ({"exp": "1s", "uniform": [1, 2]}, "mapping with keys"),
        ("-3s", "must be >="),
    ],
)
def test_distribution_errors(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_distribution(spec)


def test_exponential_length_biased_is_gamma_two() -> None:
    draws = Exponential(10.0).length_biased(np.random.default_rng(2), 100_000)
    assert draws.mean() == pytest.approx(20.0, rel=0.02)
