"""Process restarts of a client: when they come, and where a run starts in their cycle.

A restart (a redeploy, a reload, a reboot) clears the client's stub cache and
closes its connections, so even a client that resolves once (``forever``)
looks the name up again at its first request after it. Restarts of one client
are a renewal process: the gaps between them are independent draws of
``every`` (docs/scenario.md, ``clients[].restart``).

A run starts at a random moment of that process, not at a restart. At a
random moment the gap that covers it is length-biased (density x f(x) / m,
the inspection paradox), and the moment is uniform within it: with L that
length-biased gap and U uniform on (0, 1), the time since the last restart
is U L and the time to the next is (1 - U) L. Both have the equilibrium
density S(x) / m, S the survival function of ``every`` and m its mean; for an
exponential gap that is the same exponential (memoryless).
"""

from __future__ import annotations

import math

import numpy as np

from sim.policy.sampling import Sampler, length_biased

__all__ = ["Restarts"]


class Restarts:
    """A client's restarts: gaps between them drawn from ``every``."""

    __slots__ = ("every",)

    def __init__(self, every: Sampler) -> None:
        if not (hasattr(every, "sample") and hasattr(every, "mean")):
            raise ValueError(f"every must be a sampler (sample(rng, n) and mean), got {every!r}")
        mean = float(every.mean)
        if not (mean > 0 and math.isfinite(mean)):
            raise ValueError(f"restart gaps must have a finite mean above 0 s, got {mean!r}")
        self.every = every

    def equilibrium(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """For ``n`` clients seen at a random moment: (seconds since the last restart,
        seconds to the next), from one length-biased gap each."""
        gap = length_biased(self.every, rng, n)
        u = rng.random(n)
        return u * gap, (1.0 - u) * gap

    def gaps(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` gaps from one restart to the next."""
        return np.asarray(self.every.sample(rng, n), dtype=float)

    def after(self, next_at: np.ndarray, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each client's first restart strictly after ``t``, given its next restart
        ``next_at`` (a time not before its previous one): gaps are added until past ``t``."""
        out = np.array(next_at, dtype=float)
        when = np.broadcast_to(np.asarray(t, dtype=float), out.shape)
        late = np.flatnonzero(out <= when)
        while len(late):
            out[late] += self.gaps(rng, len(late))
            late = late[out[late] <= when[late]]
        return out

    def __repr__(self) -> str:
        return f"Restarts({self.every!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Restarts) and other.every == self.every

    def __hash__(self) -> int:
        return hash((Restarts, repr(self.every)))
