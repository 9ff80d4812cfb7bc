"""What a recursive resolver does around its cache: farms, prefetch, serve-expired.

Decisions only; the cache itself is :class:`sim.policy.cache.Cache`. Sources
(docs/references.md, "unbound" and "Resolver farms"):

- :class:`Farm`: one resolver address in front of ``caches`` independent
  caches (public and large ISP resolvers); each query goes to one of them, to
  the client's own cache with probability ``sticky``, otherwise to one drawn
  uniformly (which may be its own).
- :func:`prefetch_from`: unbound's ``prefetch: yes``: a cache hit on an answer
  in the last 10% of its TTL answers from cache and refreshes the answer behind
  it. unbound computes the point as ``ttl - ttl/10`` in whole seconds
  (``PREFETCH_TTL_CALC``, util/data/msgparse.h), so a TTL under 10 s is never
  prefetched.
- :class:`ServeExpired`: unbound's ``serve-expired``. With a client timeout of
  0 an expired answer (expired less than ``ttl`` ago) is answered at once with
  TTL ``reply_ttl`` (capped by the record's own TTL) and refreshed behind it;
  with a positive timeout unbound first tries upstream and answers the expired
  record only when upstream fails or is slower than the timeout.
- :func:`steady_age`: a cache with prefetch, seen at a random moment.

Nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Farm", "ResolverSetup", "ServeExpired", "prefetch_from", "steady_age", "steady_cycles"]


def prefetch_from(lifetime: float) -> float:
    """Seconds after a fetch from which a cache hit triggers a prefetch (``math.inf``: never).

    unbound: ``ttl - ttl/10`` with C integer division (docs/references.md, "unbound");
    a lifetime of 300 s is prefetched from 270 s on, one of 9 s never.
    """
    if not math.isfinite(lifetime):
        return math.inf
    return lifetime - math.floor(lifetime / 10.0)


@dataclass(frozen=True, slots=True)
class Farm:
    """``caches`` independent caches behind one resolver address.

    A query goes to the client's own cache (its ``home``) with probability
    ``sticky`` and otherwise to a cache drawn uniformly among all ``caches``,
    so it reaches its home with probability ``sticky + (1 - sticky) / caches``.
    """

    caches: int = 1
    sticky: float = 0.0

    def __post_init__(self) -> None:
        if self.caches < 1:
            raise ValueError(f"caches must be at least 1, got {self.caches!r}")
        if not 0.0 <= self.sticky <= 1.0:
            raise ValueError(f"sticky must be a share in [0, 1], got {self.sticky!r}")

    def pick(self, home: int, rng: np.random.Generator) -> int:
        """The cache one query goes to; one uniform draw (none for a single cache)."""
        n = self.caches
        if n == 1:
            return 0
        u = rng.random()
        if u < self.sticky:
            return home % n
        # the rest of the same uniform, rescaled, picks the cache
        return min(int((u - self.sticky) / (1.0 - self.sticky) * n), n - 1)

    def cache_seed(self, resolver_seed: int, cache: int) -> int:
        """The seed of one cache's lifetime draws (a stretching policy's extras). A farm's
        picks come from the resolver's own stream, each cache's lifetimes from a stream of
        its own: the lab runs each cache as its own process (sim.lab.dnsserver), which
        cannot share a stream with the front that picks; a single cache uses the
        resolver's seed, as before farms."""
        if self.caches == 1:
            return resolver_seed
        state = np.random.SeedSequence(resolver_seed, spawn_key=(cache,)).generate_state(2, np.uint32)
        return int(state[0]) << 31 | int(state[1]) >> 1

    def same_cache(self) -> float:
        """Probability that two queries of one client reach the same cache."""
        n, s = self.caches, self.sticky
        own = s + (1.0 - s) / n
        other = (1.0 - s) / n
        return own * own + (n - 1) * other * other


@dataclass(frozen=True, slots=True)
class ServeExpired:
    """unbound's serve-expired: how long an expired answer may be served, and how.

    Defaults are unbound's current ones (docs/references.md, "unbound"):
    ``serve-expired-client-timeout`` 1800 ms, ``serve-expired-reply-ttl`` 30 s,
    ``serve-expired-ttl`` 86400 s (``math.inf``: no limit, unbound's 0).
    """

    client_timeout: float = 1.8
    reply_ttl: float = 30.0
    ttl: float = 86400.0

    def __post_init__(self) -> None:
        for name in ("client_timeout", "reply_ttl", "ttl"):
            v = getattr(self, name)
            if not v >= 0:
                raise ValueError(f"{name} must be a non-negative number of seconds, got {v!r}")

    @property
    def immediate(self) -> bool:
        """The expired answer goes out at once, upstream or not (client timeout 0)."""
        return self.client_timeout == 0.0

    def reply(self, record_ttl: float) -> float:
        """The TTL an expired answer carries: ``reply_ttl``, capped by the record's own TTL."""
        return min(self.reply_ttl, record_ttl)


@dataclass(frozen=True, slots=True)
class ResolverSetup:
    """Everything a resolver group does besides its cache policy; the default is one
    plain cache (what every resolver was before these mechanisms)."""

    farm: Farm = field(default_factory=Farm)
    prefetch: bool = False
    serve_expired: ServeExpired | None = None

    @property
    def expired_window(self) -> float:
        """Seconds after expiry an answer stays in the cache to be served expired."""
        return 0.0 if self.serve_expired is None else self.serve_expired.ttl


def steady_age(lifetime: float, rate: float, rng: np.random.Generator) -> float | None:
    """Age of the entry a cache with prefetch holds at a random moment, or None if it holds none.

    With Poisson queries at ``rate`` and a lifetime L prefetched from A =
    :func:`prefetch_from` (L), the fetches form a renewal process of cycle A + X,
    X ~ Exp(rate): the first query from A on either prefetches (X < L - A) or,
    by the memorylessness of X, is the first query after expiry, which fetches.
    The entry is present while its age is under L. A random moment falls in a
    length-biased cycle, uniformly: with probability A / (A + 1/rate) the cycle
    holds a plain X, otherwise a length-biased one (Gamma(2, 1/rate)).
    """
    if not math.isfinite(lifetime):
        return 0.0
    if rate <= 0.0 or lifetime <= 0.0:
        return None
    a = prefetch_from(lifetime)
    mean_x = 1.0 / rate
    plain = rng.random() * (a + mean_x) < a
    x = rng.exponential(mean_x) if plain else rng.gamma(2.0, mean_x)
    age = rng.random() * (a + x)
    return age if age < lifetime else None


def steady_cycles(lifetime: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`steady_age`'s law for many caches at once: per cache, the age of its last
    fetch and the length A + X of the fetch cycle a random moment falls in (the entry
    is held while the age is under its lifetime). A rate of 0 gives an infinite age
    (never fetched); an infinite lifetime an age of 0 and an infinite cycle."""
    life = np.asarray(lifetime, dtype=float)
    rate = np.asarray(rate, dtype=float)
    n = len(life)
    a = np.where(np.isfinite(life), life - np.floor(np.where(np.isfinite(life), life, 0.0) / 10.0), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_x = np.where(rate > 0, 1.0 / rate, np.inf)
        plain = rng.random(n) * (a + mean_x) < a
    x = np.where(plain, rng.exponential(1.0, n), rng.gamma(2.0, 1.0, n)) * np.where(np.isfinite(mean_x), mean_x, 0.0)
    cycle = a + x
    age = rng.random(n) * cycle
    age = np.where(np.isfinite(life), np.where(rate > 0, age, np.inf), 0.0)
    return age, np.where(rate > 0, cycle, np.inf)
