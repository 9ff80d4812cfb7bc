"""The traffic's shape over the day: requests in each hour of the day against the day's mean.

Hours are those of the log's own timestamps (UTC for AWS and Route 53, the
server's zone offset applied for nginx, HAProxy's local time as written).
An hour of the day seen on several days is averaged over them; the first
and last hours of the log count for the part of them it covers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from sim.fit.estimate import Estimate, Z


class ShapeTally:
    def __init__(self) -> None:
        self.by_hour: Counter[int] = Counter()  # hours since the epoch -> requests

    def add(self, t: float) -> None:
        self.by_hour[int(t // 3600)] += 1


@dataclass(frozen=True)
class Shape:
    factors: list[Estimate | None]  # per hour of the day: its rate / the mean rate (None: never seen)
    hours_covered: np.ndarray  # hours of log behind each hour of the day


def fit_shape(tally: ShapeTally, t_min: float, t_max: float) -> Shape:
    counts, covered = np.zeros(24), np.zeros(24)
    for hour, n in tally.by_hour.items():
        start, end = max(hour * 3600.0, t_min), min((hour + 1) * 3600.0, t_max)
        counts[hour % 24] += n
        covered[hour % 24] += max(end - start, 0.0) / 3600.0
    total_hours = float(covered.sum())
    if total_hours <= 0:
        return Shape([None] * 24, covered)
    mean_rate = counts.sum() / total_hours
    factors: list[Estimate | None] = []
    for h in range(24):
        if covered[h] < 1e-6:
            factors.append(None)
            continue
        rate, half = counts[h] / covered[h], Z * math.sqrt(max(counts[h], 1.0)) / covered[h]
        factors.append(Estimate(rate / mean_rate, max(0.0, rate - half) / mean_rate, (rate + half) / mean_rate))
    return Shape(factors, covered)
