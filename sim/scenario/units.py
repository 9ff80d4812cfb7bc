"""Units of the scenario language: durations, rates and distributions.

Every value is converted to seconds (durations) or events per second (rates)
at load time, so the engines never see a unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenario.limits import DURATION_REASON, MAX_DURATION

# exp(2.326 x 10): at sigma 10 the 99th percentile is 10^10 times the median.
MAX_SIGMA = 10.0

_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "min": 1 / 60.0, "m": 1 / 60.0, "h": 1 / 3600.0, "d": 1 / 86400.0}
# Planning periods (incident rates such as 2/year): a year of 8760 h and its
# twelfth, the 730 h month the prices are quoted for (sim.analysis.strategies).
HOURS_PER_YEAR = 8760.0
_PERIOD_UNITS = {"week": 1 / (7 * 86400.0), "w": 1 / (7 * 86400.0), "month": 12 / (HOURS_PER_YEAR * 3600),
                 "mo": 12 / (HOURS_PER_YEAR * 3600), "year": 1 / (HOURS_PER_YEAR * 3600),
                 "y": 1 / (HOURS_PER_YEAR * 3600)}
_INCIDENT_UNITS = {**_RATE_UNITS, **_PERIOD_UNITS}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*(ms|s|min|m|h|d)?\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*(s|sec|min|m|h|d))?\s*$")
_INCIDENT_RE = re.compile(rf"^\s*({_NUMBER})\s*/\s*(s|sec|min|month|mo|m|h|d|week|w|year|y)\s*$")
_FRACTION_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")


def _number(value: Any, what: str) -> float | None:
    if isinstance(value, bool):
        raise ValueError(f"expected a {what}, got a boolean ({value!r})")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite {what}, got {value!r}")
        return float(value)
    return None


def parse_duration(value: Any) -> float:
    """Seconds from `150ms`, `30s`, `5m`, `2h`, `1d` or a bare number (seconds)."""
    number = _number(value, "duration")
    if number is not None:
        return _bounded(number, value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 5m or 150ms, got {value!r}")
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(
            f"expected a duration such as 30s, 5m, 2h, 1d or 150ms, got {value!r}"
        )
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds):
        raise ValueError(f"duration {value!r} is not finite")
    return _bounded(seconds, value)


def _bounded(seconds: float, given: Any) -> float:
    if abs(seconds) > MAX_DURATION:
        raise ValueError(f"a duration must be at most {MAX_DURATION:g}s ({DURATION_REASON}), got {given!r}")
    return seconds


def parse_rate(value: Any) -> float:
    """Events per second from `20/s`, `60/min`, `1000/h` or a bare number (per second)."""
    number = _number(value, "rate")
    if number is not None:
        return number
    if not isinstance(value, str):
        raise ValueError(f"expected a rate such as 20/s, 60/min or 1000/h, got {value!r}")
    match = _RATE_RE.match(value)
    if not match:
        raise ValueError(f"expected a rate such as 20/s, 60/min or 1000/h, got {value!r}")
    rate = float(match.group(1)) * _RATE_UNITS[match.group(2) or "s"]
    if not math.isfinite(rate):
        raise ValueError(f"rate {value!r} is not finite")
    return rate


def parse_incident_rate(value: Any) -> float:
    """Incidents per second from `2/year`, `1/month`, `3/week`, `1/d` (any rate unit), or a bare number
    (per second, as every rate: how an edited scenario carries it back)."""
    number = _number(value, "rate")
    if number is not None:
        return number
    match = _INCIDENT_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a rate per period such as 2/year, 1/month or 3/week, got {value!r}")
    return float(match.group(1)) * _INCIDENT_UNITS[match.group(2)]


def format_period_rate(rate: float) -> str:
    """An incident rate in the largest period that gives a whole count or at least one: `2/year`."""
    for unit in ("year", "month", "week", "d", "h"):
        count = rate / _INCIDENT_UNITS[unit]
        if abs(count - round(count)) < 1e-9 and round(count) >= 1:
            return f"{round(count)}/{unit}"
    return f"{rate / _INCIDENT_UNITS['year']:.15g}/year"


def parse_fraction(value: Any) -> float:
    """A share in (0, 1] from `99.95%` or a bare number (0.9995)."""
    number = _number(value, "share")
    if number is None:
        match = _FRACTION_RE.match(value) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"expected a percentage such as 99.95% or a share such as 0.9995, got {value!r}")
        number = float(match.group(1)) / 100
    if not 0 < number < 1:
        raise ValueError(f"expected a share strictly between 0 and 1 (0% and 100%), got {value!r}")
    return number


def format_duration(seconds: float) -> str:
    """The shortest exact unit form, so `validate --show` reads like the input."""
    if math.isinf(seconds):
        return "inf"
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        count = seconds / size
        if seconds >= size and abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    if seconds < 1 and abs(seconds * 1000 - round(seconds * 1000)) < 1e-9:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:.15g}s"


# --- distributions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Constant:
    value: float
    kind: str = "constant"

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def length_biased(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def describe(self) -> Any:
        return format_duration(self.value)


@dataclass(frozen=True, slots=True)
class Exponential:
    mean_value: float
    kind: str = "exp"

    @property
    def mean(self) -> float:
        return self.mean_value

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_value, n)

    def length_biased(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # x f(x) / m for an exponential of mean m is Gamma(2, m): the interval
        # that covers a random instant is twice as long on average.
        return rng.gamma(2.0, self.mean_value, n)

    def describe(self) -> Any:
        return {"exp": format_duration(self.mean_value)}


@dataclass(frozen=True, slots=True)
class Uniform:
    low: float
    high: float
    kind: str = "uniform"

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def describe(self) -> Any:
        return {"uniform": [format_duration(self.low), format_duration(self.high)]}


@dataclass(frozen=True, slots=True)
class LogNormal:
    median: float
    sigma: float
    kind: str = "lognormal"

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.lognormal(math.log(self.median), self.sigma, n)

    def describe(self) -> Any:
        return {"lognormal": {"median": format_duration(self.median), "sigma": self.sigma}}


@dataclass(frozen=True, slots=True)
class Empirical:
    """Piecewise-linear inverse CDF through the given (value, cdf) points."""

    values: tuple[float, ...]
    cdf: tuple[float, ...]
    kind: str = "empirical"

    @property
    def mean(self) -> float:
        # Mean of a piecewise-linear CDF: each segment contributes its midpoint
        # times its probability mass; a jump at the first point carries cdf[0].
        total = self.values[0] * self.cdf[0]
        for i in range(1, len(self.values)):
            mass = self.cdf[i] - self.cdf[i - 1]
            total += mass * (self.values[i] + self.values[i - 1]) / 2
        return total

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        return np.interp(u, np.array(self.cdf), np.array(self.values))

    def describe(self) -> Any:
        return {"empirical": [[format_duration(v), c] for v, c in zip(self.values, self.cdf, strict=True)]}


Distribution = Constant | Exponential | Uniform | LogNormal | Empirical

_DIST_FORMS = "a duration (constant), {exp: MEAN}, {uniform: [LOW, HIGH]}, {lognormal: {median: M, sigma: S}} or {empirical: [[VALUE, CDF], ...]}"


def parse_distribution(value: Any, *, minimum: float = 0.0) -> Distribution:
    """A distribution of durations in one of the five forms of docs/scenario.md."""
    if isinstance(value, Constant | Exponential | Uniform | LogNormal | Empirical):
        return value
    if not isinstance(value, dict):
        seconds = parse_duration(value)
        _at_least(seconds, minimum, "value")
        return Constant(seconds)
    if len(value) != 1:
        raise ValueError(f"expected {_DIST_FORMS}, got a mapping with keys {sorted(value)}")
    ((form, arg),) = value.items()
    if form == "constant":
        seconds = parse_duration(arg)
        _at_least(seconds, minimum, "constant")
        return Constant(seconds)
    if form == "exp":
        mean = parse_duration(arg)
        if mean <= 0:
            raise ValueError(f"exp: the mean must be > 0, got {arg!r}")
        return Exponential(mean)
    if form == "uniform":
        if not isinstance(arg, list | tuple) or len(arg) != 2:
            raise ValueError(f"uniform: expected [LOW, HIGH], got {arg!r}")
        low, high = parse_duration(arg[0]), parse_duration(arg[1])
        _at_least(low, minimum, "uniform low")
        if high < low:
            raise ValueError(f"uniform: HIGH must be >= LOW, got {arg!r}")
        return Uniform(low, high)
    if form == "lognormal":
        if not isinstance(arg, dict) or set(arg) != {"median", "sigma"}:
            raise ValueError(f"lognormal: expected {{median: DURATION, sigma: NUMBER}}, got {arg!r}")
        median = parse_duration(arg["median"])
        sigma = _number(arg["sigma"], "sigma")
        if median <= 0 or sigma is None or sigma < 0:
            raise ValueError(f"lognormal: median must be > 0 and sigma a number >= 0, got {arg!r}")
        if sigma > MAX_SIGMA:
            raise ValueError(f"lognormal: sigma must be at most {MAX_SIGMA:g} (its p99 is already 10^10 times the median), got {sigma:g}")
        return LogNormal(median, sigma)
    if form == "empirical":
        return _parse_empirical(arg, minimum)
    raise ValueError(f"unknown distribution {form!r}: expected {_DIST_FORMS}")


def _parse_empirical(arg: Any, minimum: float) -> Empirical:
    if not isinstance(arg, list) or len(arg) < 2:
        raise ValueError(f"empirical: expected at least two [VALUE, CDF] pairs, got {arg!r}")
    values: list[float] = []
    cdf: list[float] = []
    for point in arg:
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise ValueError(f"empirical: each point must be [VALUE, CDF], got {point!r}")
        p = _number(point[1], "probability")
        if p is None or not 0 <= p <= 1:
            raise ValueError(f"empirical: a CDF value must be in [0, 1], got {point[1]!r}")
        values.append(parse_duration(point[0]))
        cdf.append(p)
    _at_least(values[0], minimum, "empirical value")
    if any(b < a for a, b in zip(values, values[1:], strict=False)) or any(
        b < a for a, b in zip(cdf, cdf[1:], strict=False)
    ):
        raise ValueError("empirical: values and CDF must both be non-decreasing")
    if abs(cdf[-1] - 1.0) > 1e-9:
        raise ValueError(f"empirical: the last CDF value must be 1, got {cdf[-1]}")
    return Empirical(tuple(values), tuple(cdf))


def _at_least(value: float, minimum: float, what: str) -> None:
    if value < minimum:
        raise ValueError(f"{what} must be >= {format_duration(minimum)}, got {value:g}s")
