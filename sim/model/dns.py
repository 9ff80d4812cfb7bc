"""The DNS side: the zone's authoritative servers and recursive resolvers.

Resolvers keep one shared cache each and follow the CNAME chain with each
record's own TTL; what reaches the zone's authoritative servers is counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.policy.cache import Cache, CachePolicy

SERVICE = "service"
# RFC 8767 recommends 30 s as the TTL of a stale answer.
STALE_ANSWER_TTL = 30.0


class Alias:
    """An alias record (Route 53 alias, ANAME, CNAME flattening) to a balancer.

    The authoritative side answers it with the balancer's own A records, looked
    up when asked, so the answer follows the balancer's node changes and the
    resolver sees A records, not a chain.
    """

    __slots__ = ("target",)

    def __init__(self, target: str) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"Alias({self.target})"


class Authoritative:
    """The zone's authoritative servers, as one view after propagation.

    The service record's value is a balancer name (cname_repoint: a CNAME to
    the balancer's DNS name), an Alias (answered as A records) or a tuple of
    addresses (A records). `service_ttl` is the TTL its answers carry. A change
    is answered once it has propagated; while `down`, nothing answers.
    """

    __slots__ = ("balancers", "balancer_ttl", "count", "down", "service_ttl", "value")

    def __init__(
        self,
        value: object,
        service_ttl: float,
        balancer_ttl: float,
        balancers: dict[str, tuple],
        count: Callable[[float], None],
    ) -> None:
        self.value = value
        self.service_ttl = service_ttl
        self.balancer_ttl = balancer_ttl
        self.balancers = balancers  # balancer name -> its published node addresses
        self.down = False
        self.count = count

    def query_service(self, now: float) -> object | None:
        if self.down:
            return None
        self.count(now)
        return self.current()

    def current(self) -> object:
        """The service data as answered now: an alias is answered with its target's addresses."""
        value = self.value
        if isinstance(value, Alias):
            return self.balancers[value.target]
        return value

    def query_balancer(self, name: str) -> tuple:
        # The balancer's own name lives in the provider's zone (elb.amazonaws.com),
        # which neither counts toward our zone's queries nor goes down with it.
        return self.balancers[name]


class Resolver:
    """A recursive resolver with one cache shared by all its clients."""

    __slots__ = ("auth", "cache", "group", "rng")

    def __init__(self, group: str, policy: CachePolicy, auth: Authoritative, rng: np.random.Generator) -> None:
        self.group = group
        self.cache = Cache(policy)
        self.auth = auth
        self.rng = rng

    def resolve(self, now: float) -> tuple[tuple, float] | None:
        """(addresses, seconds the answer stays valid) or None (SERVFAIL)."""
        cache = self.cache
        value = cache.lookup(SERVICE, now)
        if value is None:
            value = self.auth.query_service(now)
            if value is None:
                value = cache.lookup_stale(SERVICE, now)
                if value is None:
                    return None
                expires = now + STALE_ANSWER_TTL
            else:
                expires = cache.store(SERVICE, value, self.auth.service_ttl, now, self.rng)
        else:
            expires = cache.expires_at(SERVICE)  # type: ignore[assignment]
        if isinstance(value, tuple):
            return value, expires - now
        addresses = cache.lookup(value, now)
        if addresses is None:
            addresses = self.auth.query_balancer(value)  # type: ignore[arg-type]
            chain = cache.store(value, addresses, self.auth.balancer_ttl, now, self.rng)
        else:
            chain = cache.expires_at(value)  # type: ignore[assignment]
        # A CNAME answer is as fresh as the shortest-lived record of its chain.
        return addresses, min(expires, chain) - now  # type: ignore[return-value]

    def prime(self, now: float, query_rate: float, rng: np.random.Generator) -> None:
        """Fill the cache as a random moment of steady state would find it.

        A record is cached for a lifetime L and refetched at the first query
        after it expires, so with queries at rate q the entry is present a
        fraction E[L] / (E[L] + 1/q) of the time; when present, its time left is
        the equilibrium residual (sim.policy.cache.equilibrium_residual).
        """
        value = self.auth.current()
        mean_life = _mean_lifetime(self.cache.policy, self.auth.service_ttl, rng)
        if _present(mean_life, query_rate, rng):
            self.cache.prime(SERVICE, value, self.auth.service_ttl, now, rng)
        if not isinstance(value, tuple):
            mean_life = _mean_lifetime(self.cache.policy, self.auth.balancer_ttl, rng)
            if _present(mean_life, query_rate, rng):
                self.cache.prime(value, self.auth.balancers[value], self.auth.balancer_ttl, now, rng)


def _mean_lifetime(policy: CachePolicy, ttl: float, rng: np.random.Generator) -> float:
    lives = policy.lifetimes(ttl, rng, 64)
    return float(np.mean(lives))


def _present(mean_life: float, rate: float, rng: np.random.Generator) -> bool:
    if math.isinf(mean_life):
        return True
    if rate <= 0 or mean_life <= 0:
        return False
    return bool(rng.random() < mean_life / (mean_life + 1.0 / rate))
