"""A 95% interval for ``bench core``'s added latency (issue 22, item 10).

Added latency is a difference of two percentiles, the target's step minus
the direct run's at the same load fraction, each read from its step's
HdrHistogram (kept encoded in results.json). Its interval is a percentile
bootstrap over the recorded latencies: each histogram's counts are redrawn
multinomially over its buckets (the same number of requests), the
percentile read again by HdrHistogram's own rule, and the difference taken
between independent redraws of the two (they are separate runs). With
several repetitions the statistic reported is the median over them of each
repetition's difference, so each bootstrap replicate takes that median
too: the interval is the one of the figure in the table.

What it does not cover: it treats a step's requests as independent draws,
and a stall delays a run of consecutive requests together, so it is the
sampling noise of one run, no more; the run-to-run spread is reported
beside it (each repetition's own difference and interval, and their range
in the table). docs/benchmarks.md, "How the interval is computed".
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

__all__ = ["RESAMPLES", "SEED", "Resampler", "buckets", "interval", "percentile"]

# docs/references.md, "Intervals of added latency": 1000 replicates put about 25 in each 2.5% tail
RESAMPLES = 1000
SEED = 20261202  # fixed: the same results.json always gives the same interval ([choice])
LEVEL = 0.95
_CHUNK = 200  # replicates drawn at once: bounds the (replicates x buckets) array to a few MB


def buckets(encoded: str) -> tuple[np.ndarray, np.ndarray]:
    """The non-empty buckets of an encoded HdrHistogram: each one's value as
    ``get_value_at_percentile`` reports it (the bucket's highest equivalent value) and its count."""
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram.decode(encoded)
    counts = np.array(hist.counts[: hist.counts_len], dtype=np.int64)
    index = np.nonzero(counts)[0]
    values = np.array(
        [hist.get_highest_equivalent_value(hist.get_value_from_index(int(i))) for i in index],
        dtype=np.int64,
    )
    return values, counts[index]


def _rank(total: int, q: float) -> int:
    # HdrHistogram's get_target_count_at_percentile: the value holding the count's nearest rank
    return max(1, int(q * total / 100 + 0.5))


def percentile(values: np.ndarray, counts: np.ndarray, q: float) -> int:
    """The q-th percentile by HdrHistogram's rule (what the step's ``p50_us``/``p99_us`` hold)."""
    below = np.cumsum(counts) < _rank(int(counts.sum()), q)
    return int(values[int(below.sum())])


def resample(
    values: np.ndarray,
    counts: np.ndarray,
    qs: tuple[float, ...],
    resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Percentiles ``qs`` of ``resamples`` multinomial redraws of the histogram: shape (len(qs), resamples)."""
    total = int(counts.sum())
    p = counts / total
    ranks = np.array([_rank(total, q) for q in qs])
    out = np.empty((len(qs), resamples), dtype=np.int64)
    for start in range(0, resamples, _CHUNK):
        n = min(_CHUNK, resamples - start)
        cum = np.cumsum(rng.multinomial(total, p, size=n), axis=1)
        for j, rank in enumerate(ranks):
            out[j, start : start + n] = values[(cum < rank).sum(axis=1)]
    return out


class Resampler:
    """Redraws of each step's histogram, made once per step (the direct run's serve every target)
    and seeded by the step's name, so an interval does not depend on what else was summarized."""

    def __init__(
        self, qs: tuple[float, ...] = (50, 99), resamples: int = RESAMPLES, seed: int = SEED
    ) -> None:
        self.qs = qs
        self.resamples = resamples
        self.seed = seed
        self._cache: dict[str, np.ndarray] = {}

    def draws(self, name: str, encoded: str) -> np.ndarray:
        """(len(qs), resamples) redrawn percentiles of the step called ``name``."""
        if name not in self._cache:
            values, counts = buckets(encoded)
            if counts.sum() == 0:
                raise ValueError(f"{name}: empty histogram")
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
            self._cache[name] = resample(values, counts, self.qs, self.resamples, rng)
        return self._cache[name]


def interval(diffs: np.ndarray, level: float = LEVEL) -> list[float]:
    """The central ``level`` interval of the median over repetitions (axis 0) of replicated differences."""
    med = np.median(diffs, axis=0)
    lo, hi = np.quantile(med, [(1 - level) / 2, (1 + level) / 2])
    return [round(float(lo), 1), round(float(hi), 1)]


def added_intervals(
    resampler: Resampler, pairs: list[tuple[str, dict[str, Any], str, dict[str, Any]]]
) -> tuple[dict[str, list[float] | None], list[dict[str, Any]], str]:
    """Intervals of the added percentiles from (target name, target step, direct name, direct step)
    per repetition: ({"p50": [lo, hi] or None, ...}, per repetition details, "bootstrap" or why not)."""
    keys = [f"p{q:g}" for q in resampler.qs]
    none: dict[str, list[float] | None] = dict.fromkeys(keys)
    missing = [
        i for i, (_, mine, _, base) in enumerate(pairs) if "hdr" not in mine or "hdr" not in base
    ]
    if not pairs:
        return none, [], "unavailable: no sustained repetition"
    if missing:
        return (
            none,
            [],
            "unavailable: no histogram in the results (a folder from before they were kept)",
        )
    try:
        per_rep = [
            resampler.draws(tn, t["hdr"]) - resampler.draws(dn, d["hdr"]) for tn, t, dn, d in pairs
        ]
    except (ValueError, TypeError, KeyError) as e:  # a histogram that does not decode
        return none, [], f"unavailable: {e}"
    reps = [
        {f"{k}_ci95_us": interval(diffs[j][None, :]) for j, k in enumerate(keys)}
        for diffs in per_rep
    ]
    stacked = np.stack(per_rep)  # (repetitions, qs, resamples)
    return {k: interval(stacked[:, j, :]) for j, k in enumerate(keys)}, reps, "bootstrap"
