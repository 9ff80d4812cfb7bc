"""An estimate with its 95% interval, and the few interval rules the fit's estimates share."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z = 1.959964  # the normal 97.5% quantile


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def text(self, fmt: str = "{:.4g}") -> str:
        return f"{fmt.format(self.value)} [95% CI {fmt.format(self.low)}, {fmt.format(self.high)}]"


def quantile_interval(values: np.ndarray, q: float) -> Estimate:
    """A sample quantile with its distribution-free interval: the order statistics whose ranks
    bound the true quantile's rank with 95% (binomial(n, q) by its normal approximation)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan)
    half = Z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(n * q - half) - 1))
    hi = int(min(n - 1, math.ceil(n * q + half)))
    return Estimate(float(np.quantile(x, q)), float(x[lo]), float(x[hi]))


def ratio_share(weights: np.ndarray, member: np.ndarray) -> Estimate:
    """Share of the total weight held by the members, with the cluster (ratio-estimator) interval:
    each unit (a resolver) is one draw, so a few heavy units widen the interval as they should."""
    w = np.asarray(weights, dtype=float)
    z = np.asarray(member, dtype=float)
    n, total = w.size, float(w.sum())
    if n == 0 or total <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    share = float((w * z).sum() / total)
    if n == 1:
        return Estimate(share, 0.0, 1.0)
    residual = w * (z - share)
    se = math.sqrt(n / (n - 1) * float((residual**2).sum())) / total
    return Estimate(share, max(0.0, share - Z * se), min(1.0, share + Z * se))
