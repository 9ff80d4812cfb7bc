"""DNS cache policies of recursive resolvers and client stub caches, and a cache.

A policy answers one question: an answer arrives with TTL ``ttl``; for how many
seconds does this cache treat it as fresh? Sources for the behaviours modelled
(docs/references.md, "Caches above and below the resolver"):

- ``honor``: keep it for its TTL (RFC 1035; about 90% of resolvers, RFC 9199).
- ``none``: keep nothing (glibc, Go, Node have no answer cache).
- ``floor``: max(TTL, min_ttl) (Chrome floors at 60 s; Knot Resolver at 5 s).
- ``cap``: min(TTL, max_ttl) (systemd-resolved 2 h; unbound 86400 s; BIND 604800 s).
- ``fixed``: ``ttl`` whatever the record says (JVM 30 s; Firefox 60 s).
- ``forever``: until the process restarts (nginx ``proxy_pass`` with a literal host,
  JVM with a security manager).
- ``extend``: TTL plus an extra drawn anew for each cached answer (the TTL
  stretchers: 8.74% of 8,524 resolvers, Bhowmick et al., PAM 2023).
- ``serve_stale``: honours the TTL; when the authoritative side does not answer,
  an expired answer may be served up to ``max_stale`` after expiry (RFC 8767).

Nothing here reads a clock: every time-dependent call takes ``now`` in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import numpy as np

from sim.policy.resolver import ResolverSetup, prefetch_from, steady_age
from sim.policy.sampling import Sampler

__all__ = [
    "CACHE_KINDS",
    "Cache",
    "CachePolicy",
    "Cap",
    "Extend",
    "Fixed",
    "Floor",
    "Forever",
    "Honor",
    "NoCache",
    "Sampler",
    "ServeStale",
    "STALE_ANSWER_TTL",
    "WITHIN_TTL",
    "lets_go",
    "Primed",
    "equilibrium_residual",
    "primed_entry",
    "in_grace",
    "make_cache_policy",
]

_INF = math.inf


def _duration(name: str, value: float) -> float:
    v = float(value)
    if not v >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be a non-negative number of seconds, got {value!r}")
    return v


class CachePolicy:
    """Base of the policies: a kind, a lifetime rule and a stale window.

    ``varying`` is True when the lifetime of an answer is random (only ``extend``):
    then a cache seen at a random moment holds a length-biased answer, and
    :func:`equilibrium_residual` must account for it.
    """

    __slots__ = ()

    kind: str = ""
    varying: bool = False

    @property
    def stale_window(self) -> float:
        """Seconds after expiry that an answer may still be served when upstream fails."""
        return 0.0

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        """Seconds an answer with TTL ``ttl`` stays fresh (``math.inf``: forever)."""
        raise NotImplementedError

    def lifetimes(self, ttl: float, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent lifetimes at once, for the vectorised engine."""
        return np.full(n, self.lifetime(ttl, rng))

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One lifetime per TTL in ``ttls``, for the vectorised engine (same rule as ``lifetime``)."""
        return np.array([self.lifetime(float(t), rng) for t in ttls], dtype=float)

    def residuals(self, ttl: float, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent :func:`equilibrium_residual` draws for answers of TTL ``ttl``."""
        if not self.varying:
            return rng.random(n) * self.lifetime(ttl, rng)
        return np.array([equilibrium_residual(self, ttl, rng) for _ in range(n)], dtype=float)

    def length_biased_lifetime(
        self, ttl: float, rng: np.random.Generator, candidates: int = 64
    ) -> float:
        """A lifetime drawn with probability proportional to its length.

        It is what a random observer finds in the cache; for a fixed lifetime it is
        just the lifetime.
        """
        return self.lifetime(ttl, rng)

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s)!r}" for s in _all_slots(type(self)))
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in _all_slots(type(self)))

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, s) for s in _all_slots(type(self)))))


def _all_slots(cls: type) -> tuple[str, ...]:
    out: list[str] = []
    for klass in reversed(cls.__mro__):
        out.extend(klass.__dict__.get("__slots__", ()))
    return tuple(out)


class Honor(CachePolicy):
    """Keep an answer for exactly its TTL."""

    __slots__ = ()
    kind = "honor"

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return ttl

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(ttls, dtype=float).copy()


class NoCache(CachePolicy):
    """Keep nothing: every lookup goes upstream (glibc, Go, Node)."""

    __slots__ = ()
    kind = "none"

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return 0.0

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(len(ttls))


class Floor(CachePolicy):
    """Keep an answer max(TTL, ``min_ttl``); Chrome uses 60 s (docs/references.md)."""

    __slots__ = ("min_ttl",)
    kind = "floor"

    def __init__(self, min_ttl: float = 60.0) -> None:
        self.min_ttl = _duration("min_ttl", min_ttl)

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return ttl if ttl > self.min_ttl else self.min_ttl

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.maximum(np.asarray(ttls, dtype=float), self.min_ttl)


class Cap(CachePolicy):
    """Keep an answer min(TTL, ``max_ttl``); unbound's ``cache-max-ttl`` is 86400 s."""

    __slots__ = ("max_ttl",)
    kind = "cap"

    def __init__(self, max_ttl: float = 86400.0) -> None:
        self.max_ttl = _duration("max_ttl", max_ttl)

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return ttl if ttl < self.max_ttl else self.max_ttl

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.minimum(np.asarray(ttls, dtype=float), self.max_ttl)


class Fixed(CachePolicy):
    """Keep every answer ``ttl`` seconds whatever it says (JVM default: 30 s)."""

    __slots__ = ("ttl",)
    kind = "fixed"

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = _duration("ttl", ttl)

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return self.ttl

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.full(len(ttls), self.ttl)


class Forever(CachePolicy):
    """Keep the first answer until the process restarts (nginx literal ``proxy_pass``)."""

    __slots__ = ()
    kind = "forever"

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return _INF

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.full(len(ttls), _INF)


class Extend(CachePolicy):
    """TTL plus an ``extra`` drawn anew for each cached answer (Bhowmick et al., PAM 2023)."""

    __slots__ = ("extra",)
    kind = "extend"
    varying = True

    def __init__(self, extra: Sampler) -> None:
        if not (hasattr(extra, "sample") and hasattr(extra, "mean")):
            raise ValueError(f"extra must be a sampler (sample(rng, n) and mean), got {extra!r}")
        self.extra = extra

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return ttl + float(self.extra.sample(rng, 1)[0])

    def lifetimes(self, ttl: float, rng: np.random.Generator, n: int) -> np.ndarray:
        return ttl + np.asarray(self.extra.sample(rng, n), dtype=float)

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(ttls, dtype=float) + np.asarray(self.extra.sample(rng, len(ttls)), dtype=float)

    def residuals(self, ttl: float, rng: np.random.Generator, n: int) -> np.ndarray:
        """:func:`equilibrium_residual` ``n`` times at once, by the mixture of
        :meth:`length_biased_lifetime`, when the extra has an exact length-biased
        sampler (the fast engine draws one per resolver: 8,000 scalar calls were a
        quarter of a replication)."""
        exact = getattr(self.extra, "length_biased", None)
        m = float(self.extra.mean)
        if exact is None or m == _INF or ttl + m <= 0.0:
            return super().residuals(ttl, rng, n)
        plain = rng.random(n) * (ttl + m) < ttl
        x = np.where(
            plain,
            np.asarray(self.extra.sample(rng, n), dtype=float),
            np.asarray(exact(rng, n), dtype=float),
        )
        return rng.random(n) * (ttl + x)

    def length_biased_lifetime(
        self, ttl: float, rng: np.random.Generator, candidates: int = 64
    ) -> float:
        """A length-biased draw of ttl + X, X the extra.

        The density of the biased lifetime is (ttl + x) f(x) / (ttl + m) with m the
        extra's mean, a mixture: with probability ttl / (ttl + m) it is ttl plus a
        plain X, otherwise ttl plus a length-biased X. The biased X is exact when
        the extra offers ``length_biased(rng, n)`` (as :class:`~sim.policy.sampling.
        Exponential` and ``Constant`` do); otherwise it is resampled from
        ``candidates`` plain draws with weights proportional to x
        (sampling-importance-resampling: biased low by O(1/candidates); about 1%
        for an exponential at 64).
        """
        m = float(self.extra.mean)
        if m == _INF:
            return _INF
        total = ttl + m
        if total <= 0.0:
            return 0.0
        if rng.random() * total < ttl:
            return self.lifetime(ttl, rng)
        return ttl + _length_biased_draw(self.extra, rng, candidates)


class ServeStale(CachePolicy):
    """Honour the TTL, then serve the expired answer for up to ``max_stale`` when upstream fails.

    RFC 8767. The default of one day is BIND's ``max-stale-ttl`` and unbound's limit
    from 1.23 (docs/references.md); unbound up to 1.22 has no limit (``math.inf``).
    """

    __slots__ = ("max_stale",)
    kind = "serve_stale"

    def __init__(self, max_stale: float = 86400.0) -> None:
        self.max_stale = _duration("max_stale", max_stale)

    @property
    def stale_window(self) -> float:
        return self.max_stale

    def lifetime(self, ttl: float, rng: np.random.Generator) -> float:
        return ttl

    def lifetimes_for(self, ttls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(ttls, dtype=float).copy()


def _length_biased_draw(extra: Sampler, rng: np.random.Generator, candidates: int) -> float:
    exact = getattr(extra, "length_biased", None)
    if exact is not None:
        return float(exact(rng, 1)[0])
    xs = np.asarray(extra.sample(rng, candidates), dtype=float)
    total = float(xs.sum())
    if total == _INF:
        return _INF
    if total <= 0.0:
        return 0.0
    # inverse-CDF pick on cumulative weights: one uniform, no normalised array
    i = int(np.searchsorted(np.cumsum(xs), rng.random() * total, side="right"))
    return float(xs[min(i, candidates - 1)])


_FACTORIES: dict[str, type[CachePolicy]] = {
    "honor": Honor,
    "none": NoCache,
    "floor": Floor,
    "cap": Cap,
    "fixed": Fixed,
    "forever": Forever,
    "extend": Extend,
    "serve_stale": ServeStale,
}
CACHE_KINDS: tuple[str, ...] = tuple(_FACTORIES)


def make_cache_policy(kind: str, **params: Any) -> CachePolicy:
    """Build a policy from the scenario's ``{kind: ..., param: ...}`` mapping.

    Durations are seconds (the scenario layer has already parsed units); ``extend``
    takes a :class:`Sampler` as ``extra``.
    """
    try:
        cls = _FACTORIES[kind]
    except KeyError:
        raise ValueError(
            f"unknown cache policy kind {kind!r}; known: {', '.join(CACHE_KINDS)}"
        ) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for cache policy {kind!r}: {exc}") from None


def equilibrium_residual(
    policy: CachePolicy, ttl: float, rng: np.random.Generator, candidates: int = 64
) -> float:
    """Fresh time left on an answer in a cache observed at a random moment in steady state.

    A cache that refetches on expiry is a renewal process; seen at a random time
    (the inspection paradox) the answer's lifetime is length-biased and the time
    left is uniform on it: U times a length-biased lifetime. For a fixed lifetime
    L that is uniform on [0, L]; ``forever`` gives ``inf``; ``none`` gives 0. For
    ``extend`` see :meth:`Extend.length_biased_lifetime` (``candidates`` is used
    only when the extra's distribution has no exact length-biased sampler).
    """
    life = policy.length_biased_lifetime(ttl, rng, candidates)
    if life == _INF:
        return _INF
    return rng.random() * life


# Stub policies whose lifetime never exceeds the TTL they are given: a stub of these never
# outlives its resolver's answer (it asks the resolver at its first request after that).
WITHIN_TTL = ("none", "honor", "cap", "serve_stale")


def lets_go(stub_kind: str, grace: float, keepalive: float) -> bool:
    """Does a client's stub let go with its resolver's answer: never outliving it (WITHIN_TTL),
    with no grace period and no pooled connection? Such a client asks its resolver at its
    first request after that answer expired, so the engines prime the two together."""
    return stub_kind in WITHIN_TTL and grace <= 0 and keepalive <= 0

# The TTL of an expired answer served while the authoritative servers do not answer
# (serve_stale): RFC 8767's recommended 30 s (docs/references.md, "Serving stale answers").
STALE_ANSWER_TTL = 30.0


class Primed:
    """A cache's entry as a random moment of steady state finds it, relative to that moment:
    fetched at ``at`` and kept ``lifetime`` (with prefetch: its prefetch point follows from
    the lifetime), or, with ``lifetime`` None, kept until ``at`` whatever the policy (fresh
    for the equilibrium residual, or expired already and held by serve-expired)."""

    __slots__ = ("at", "lifetime")

    def __init__(self, at: float, lifetime: float | None = None) -> None:
        self.at = at
        self.lifetime = lifetime


def primed_entry(policy: CachePolicy, setup: ResolverSetup, ttl: float, rate: float,
                 rng: np.random.Generator) -> Primed | None:
    """How one cache's entry of TTL ``ttl`` stands at time 0, queries arriving at ``rate``
    (None: absent). A record is kept for a lifetime L and refetched at the first query after
    it expires, so it is present a fraction E[L] / (E[L] + 1/rate) of the time, with the
    equilibrium residual left; with prefetch the cycle is shorter (`steady_age`). With
    serve-expired an absent entry expired an Exp(rate) time ago (the age of the gap a random
    moment falls in, memoryless), kept if under its limit. Every engine primes with this,
    draw for draw (the model's resolvers, the fast engine's followed caches)."""
    if setup.prefetch:
        life = policy.lifetime(ttl, rng)
        age = steady_age(life, rate, rng)
        if age is not None:
            return Primed(-age, life)
    else:
        mean = float(np.mean(policy.lifetimes(ttl, rng, 64)))
        if math.isinf(mean) or (rate > 0 and mean > 0 and rng.random() < mean / (mean + 1.0 / rate)):
            return Primed(equilibrium_residual(policy, ttl, rng))
    served = setup.serve_expired
    if served is not None and rate > 0:
        since = float(rng.exponential(1.0 / rate))
        if since < served.ttl:
            return Primed(-since)
    return None


def in_grace(now: float, expires: float, grace: float) -> bool:
    """True when an answer that expired at ``expires`` may still be served at ``now``.

    Firefox's host cache serves an entry up to ``network.dnsCacheExpirationGracePeriod``
    (60 s) past its expiry and refreshes it in the background; the request that
    finds it in grace gets the old answer, the ones after it the refreshed one
    (docs/references.md, "Browsers"). Fresh answers (``now < expires``) are not in grace.
    """
    return expires <= now < expires + grace


class Cache:
    """A keyed answer store that follows one :class:`CachePolicy`.

    Entries are ``key -> (value, expires_at, stale_until, refresh_at)``; a lookup
    is one dict get and one comparison. Expired entries are dropped lazily, once
    they are past their stale window and someone looks. ``stale_until`` is the
    expiry plus the longer of the policy's stale window and ``keep_expired`` (a
    resolver's serve-expired limit, sim.policy.resolver.ServeExpired); with
    ``prefetch``, ``refresh_at`` is when a hit starts refreshing the entry
    (sim.policy.resolver.prefetch_from), otherwise never.
    """

    __slots__ = ("_entries", "_window", "policy", "prefetch")

    def __init__(self, policy: CachePolicy, prefetch: bool = False, keep_expired: float = 0.0) -> None:
        self.policy = policy
        self.prefetch = prefetch
        self._window = max(policy.stale_window, _duration("keep_expired", keep_expired))
        self._entries: dict[Hashable, tuple[object, float, float, float]] = {}

    def lookup(self, key: Hashable, now: float) -> object | None:
        """The value if it is fresh at ``now`` (fresh means ``now < expires_at``)."""
        e = self._entries.get(key)
        if e is None:
            return None
        if now < e[1]:
            return e[0]
        if now >= e[2]:
            del self._entries[key]
        return None

    def lookup_stale(self, key: Hashable, now: float) -> object | None:
        """The value if it may be served expired: fresh, or expired by less than the
        stale window. Call it after upstream failed, or for serve-expired at once."""
        e = self._entries.get(key)
        if e is None:
            return None
        if now < e[2]:
            return e[0]
        del self._entries[key]
        return None

    def due(self, key: Hashable, now: float) -> bool:
        """True when a hit on ``key`` at ``now`` should refresh it behind the answer (prefetch)."""
        e = self._entries.get(key)
        return e is not None and now >= e[3]

    def store(
        self, key: Hashable, value: object, ttl: float, now: float, rng: np.random.Generator
    ) -> float:
        """Cache ``value`` received at ``now`` with TTL ``ttl``; returns its expiry time."""
        return self.fetched(key, value, now, self.policy.lifetime(ttl, rng))

    def fetched(self, key: Hashable, value: object, at: float, lifetime: float) -> float:
        """Cache ``value`` fetched at ``at`` and kept ``lifetime`` seconds; returns its expiry."""
        refresh = at + prefetch_from(lifetime) if self.prefetch else _INF
        return self._put(key, value, at + lifetime, refresh)

    def prime(
        self, key: Hashable, value: object, ttl: float, now: float, rng: np.random.Generator
    ) -> float:
        """Like :meth:`store` but with an equilibrium residual lifetime, so a run
        starts in steady state (docs/scenario.md, "Time"); returns the expiry time."""
        return self._put(key, value, now + equilibrium_residual(self.policy, ttl, rng))

    def put_until(self, key: Hashable, value: object, expires: float) -> float:
        """Cache ``value`` until ``expires`` whatever the policy: a cache set to a
        state another engine drew (the lab replaying the model's priming), or an
        entry that expired already (one a serve-expired resolver still holds)."""
        return self._put(key, value, expires)

    def _put(self, key: Hashable, value: object, expires: float, refresh: float = _INF) -> float:
        self._entries[key] = (value, expires, expires + self._window, refresh)
        return expires

    def items(self) -> list[tuple[Hashable, object, float]]:
        """(key, value, expiry) of every entry, fresh or stale."""
        return [(k, e[0], e[1]) for k, e in self._entries.items()]

    def expires_at(self, key: Hashable) -> float | None:
        """When the entry for ``key`` stops being fresh, or None if there is none."""
        e = self._entries.get(key)
        return None if e is None else e[1]

    def invalidate(self, key: Hashable) -> None:
        """Forget ``key`` (a process restart of one name, a flush)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __repr__(self) -> str:
        return f"Cache({self.policy!r}, entries={len(self._entries)})"
