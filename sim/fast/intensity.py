"""Request intensity over time: the traffic faults' factors as a per-second shape.

A cohort's requests are a Poisson process of intensity rate x g(t), with g the
shape (1, or a traffic fault's factor while it lasts). With G the integral of
g, "the first request after x" is G^-1(G(x) + E / rate) for E ~ Exp(1), and the
number of requests in [a, b) is Poisson(rate (G(b) - G(a))): the engine never
draws the requests nobody needs to look at one by one.
"""

from __future__ import annotations

import math

import numpy as np

from sim.scenario import models as m


class Intensity:
    """g(t) constant within each second, its integral G, and draws from it."""

    def __init__(self, scenario: m.Scenario) -> None:
        self.end = scenario.end
        seconds = int(math.ceil(self.end)) + 1
        g = np.ones(seconds)
        for fault in scenario.faults:
            if isinstance(fault, m.Traffic):
                # Overlap of the fault with each second, so fractional edges keep their weight.
                lo, hi = fault.at, min(fault.at + fault.for_, float(seconds))
                edges = np.arange(seconds + 1, dtype=float)
                overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)
                g += (fault.factor - 1.0) * overlap
        self.g = g
        self.grid = np.arange(seconds + 1, dtype=float)
        self.G = np.concatenate([[0.0], np.cumsum(g)])
        self._g_end = float(np.interp(self.end, self.grid, self.G))
        # No traffic fault: G is the identity on [0, seconds], and the interpolations
        # below (a third of a replication's time with a million failed requests) are clips.
        self.flat = bool(np.all(g == 1.0))
        self._top = float(seconds)

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        if self.flat:
            return np.clip(t, 0.0, self._top)
        return np.interp(t, self.grid, self.G)

    def _g_inverse(self, y: np.ndarray) -> np.ndarray:
        if self.flat:
            return np.clip(y, 0.0, self._top)
        return np.interp(y, self.G, self.grid)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """G^-1, with inf past the end of the run (no request happens there)."""
        return np.where(y >= self._g_end, np.inf, self._g_inverse(y))

    def next_after(self, t: np.ndarray, rate: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
        """The first request after `t` of clients with base `rate` (inf if none before the end)."""
        t = np.asarray(t, dtype=float)
        rate = np.broadcast_to(np.asarray(rate, dtype=float), t.shape)
        step = rng.exponential(1.0, t.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = self.cumulative(np.minimum(t, self.end)) + np.where(rate > 0, step / rate, np.inf)
        return np.where(np.isfinite(t), self.inverse(y), np.inf)

    def last_before(self, t: np.ndarray, rate: np.ndarray | float, rng: np.random.Generator) -> np.ndarray:
        """The last request before `t` (-inf if none since time 0; the run starts in steady state,
        so an earlier one is drawn at the base rate)."""
        t = np.asarray(t, dtype=float)
        rate = np.broadcast_to(np.asarray(rate, dtype=float), t.shape)
        with np.errstate(divide="ignore"):  # rate 0 (a session client, sim.fast.sessions): none
            step = rng.exponential(1.0, t.shape) / rate
        y = self.cumulative(np.minimum(t, self.end)) - step
        return np.where(y >= 0, self._g_inverse(y), y)

    def measure(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """G(b) - G(a), zero where b <= a."""
        a = np.minimum(a, self.end)
        b = np.minimum(b, self.end)
        return np.maximum(self.cumulative(b) - self.cumulative(a), 0.0)

    def uniform_between(self, a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Request times in [a, b) given that they happen there: uniform in G-measure."""
        ga = self.cumulative(np.minimum(a, self.end))
        gb = self.cumulative(np.minimum(b, self.end))
        return self._g_inverse(ga + u * (gb - ga))


def window_mass(rate: np.ndarray, lo: np.ndarray, hi: np.ndarray, seconds: int) -> np.ndarray:
    """Per second s, sum over clients of rate x |[lo, hi) overlap [s, s+1)|.

    Windows that start at different times (a DNS outage's) are [l0, hi) less [l0, lo),
    with l0 the earliest start: each of those starts at the same moment.
    """
    if len(lo) == 0:
        return np.zeros(seconds)
    start = float(lo.min())
    if np.any(lo > start):
        common = np.full(len(lo), start)
        return window_mass(rate, common, np.maximum(hi, lo), seconds) - window_mass(rate, common, lo, seconds)
    return _common_start_mass(rate, start, hi, seconds)


def _common_start_mass(rate: np.ndarray, start: float, hi: np.ndarray, seconds: int) -> np.ndarray:
    """window_mass with every window starting at `start`: with A(t) = sum rate
    (clip(t, start, hi) - start), the answer is A(s+1) - A(s), a sum of min(t - start, width)
    evaluated on sorted widths with prefix sums."""
    width = np.sort(hi - start)
    order = np.argsort(hi - start)
    w_rate = rate[order]
    cum_rw = np.concatenate([[0.0], np.cumsum(w_rate * width)])
    cum_r = np.concatenate([[0.0], np.cumsum(w_rate)])
    t = np.arange(seconds + 1, dtype=float)
    a = np.maximum(t - start, 0.0)
    k = np.searchsorted(width, a, side="left")
    area = cum_rw[k] + a * (cum_r[-1] - cum_r[k])
    return np.diff(area)
