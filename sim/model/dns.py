"""The DNS side: the zone's authoritative servers and recursive resolvers.

Resolvers keep one shared cache each and follow the CNAME chain with each
record's own TTL; what reaches the zone's authoritative servers is counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sim.policy.cache import STALE_ANSWER_TTL, Cache, CachePolicy, primed_entry
from sim.policy.resolver import ResolverSetup

SERVICE = "service"
PLAIN = ResolverSetup()


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

    __slots__ = ("balancers", "balancer_ttl", "count", "outages", "service_ttl", "value")

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
        self.outages = 0  # dns_down faults on now (they may overlap)
        self.count = count

    @property
    def down(self) -> bool:
        return self.outages > 0

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
    """A recursive resolver: one cache shared by all its clients, or a farm of
    independent caches behind one address (sim.policy.resolver.Farm), with
    unbound's prefetch and serve-expired when its group sets them."""

    __slots__ = ("auth", "cache", "cache_rngs", "caches", "group", "homes", "rng", "setup")

    def __init__(
        self,
        group: str,
        policy: CachePolicy,
        auth: Authoritative,
        rng: np.random.Generator,
        setup: ResolverSetup = PLAIN,
        cache_rngs: list[np.random.Generator] | None = None,
    ) -> None:
        """`rng` draws a farm's picks, and a single cache's lifetimes; `cache_rngs`, one
        per cache of a farm, each cache's lifetimes (sim.policy.resolver.Farm.cache_seed)."""
        self.group = group
        self.setup = setup
        self.caches = [
            Cache(policy, prefetch=setup.prefetch, keep_expired=setup.expired_window)
            for _ in range(setup.farm.caches)
        ]
        self.cache = self.caches[0]
        self.homes: dict[int, int] = {}  # client id -> its own cache in a farm
        self.auth = auth
        self.rng = rng
        self.cache_rngs = {id(c): r for c, r in zip(self.caches, cache_rngs or [rng] * len(self.caches), strict=True)}

    def attach(self, client_id: int) -> None:
        """Give a client its own cache, in turn, so a farm's clients are spread evenly."""
        if len(self.caches) > 1:
            self.homes[client_id] = len(self.homes) % len(self.caches)

    def resolve(self, now: float, client_id: int) -> tuple[tuple, float] | None:
        """(addresses, seconds the answer stays valid) or None (SERVFAIL) for the client
        `client_id`. No default id: a farm's sticky pick needs the client's own cache, and a
        default once sent every client's grace refresh to cache 0 (sim.model.requests)."""
        cache = self.cache
        if len(self.caches) > 1:
            # the farm's draws come from the resolver's stream, as the lab's front draws them (sim.lab.dnsserver.Front);
            # a client not attached has no cache of its own: KeyError rather than cache 0
            cache = self.caches[self.setup.farm.pick(self.homes[client_id], self.rng)]
        # A fresh hit without prefetch is most lookups: answered inline, the rest by _answer.
        value = cache.lookup(SERVICE, now)
        if value is not None and not cache.prefetch:
            expires: float = cache.expires_at(SERVICE)  # type: ignore[assignment]
        else:
            got = self._answer(cache, SERVICE, True, now)
            if got is None:
                return None
            value, expires = got
        if isinstance(value, tuple):
            return value, expires - now
        addresses = cache.lookup(value, now)
        if addresses is not None and not cache.prefetch:
            chain: float = cache.expires_at(value)  # type: ignore[assignment]
        else:
            got = self._answer(cache, value, False, now)  # type: ignore[arg-type]
            if got is None:
                return None
            addresses, chain = got
        # A CNAME answer is as fresh as the shortest-lived record of its chain.
        return addresses, min(expires, chain) - now  # type: ignore[return-value]

    def _answer(self, cache: Cache, key: str, service: bool, now: float) -> tuple[object, float] | None:
        """One record (the service's, or a balancer's name) from `cache` or upstream, with
        prefetch and serve-expired: (value, when it stops being valid) or None."""
        auth = self.auth
        ttl = auth.service_ttl if service else auth.balancer_ttl
        value = cache.lookup(key, now)
        if value is not None:
            expires: float = cache.expires_at(key)  # type: ignore[assignment]
            if cache.prefetch and cache.due(key, now):
                # prefetch: answer from cache, refresh behind it (unbound's reply_and_prefetch)
                fresh = auth.query_service(now) if service else auth.query_balancer(key)
                if fresh is not None:
                    cache.store(key, fresh, ttl, now, self.cache_rngs[id(cache)])
            return value, expires
        served = self.setup.serve_expired
        stale = cache.lookup_stale(key, now) if served is not None and served.immediate else None
        fresh = auth.query_service(now) if service else auth.query_balancer(key)
        if fresh is not None:
            expires = cache.store(key, fresh, ttl, now, self.cache_rngs[id(cache)])
            if stale is None:
                return fresh, expires
            # serve-expired, client timeout 0: the expired answer goes out at once
            return stale, now + served.reply(ttl)  # type: ignore[union-attr]
        if stale is None:
            stale = cache.lookup_stale(key, now)
            if stale is None:
                return None
        return stale, now + (STALE_ANSWER_TTL if served is None else served.reply(ttl))

    def held_until(self) -> float:
        """When the answer the (first) cache holds for the service stops being fresh, the
        shortest-lived record of its chain (-inf: no answer held)."""
        cache = self.cache
        value = cache.lookup(SERVICE, -math.inf)
        expires = cache.expires_at(SERVICE)
        if value is None or expires is None:
            return -math.inf
        if not isinstance(value, tuple):
            chain = cache.expires_at(value)
            expires = -math.inf if chain is None else min(expires, chain)
        return expires

    def prime(self, now: float, query_rate: float, rng: np.random.Generator) -> None:
        """Fill the caches as a random moment of steady state would find them, each
        entry as sim.policy.cache.primed_entry draws it. A farm's caches share the
        queries: each is primed with q / caches (exact for random picks, and for
        sticky ones when its clients are alike)."""
        rate = query_rate / len(self.caches)
        value = self.auth.current()
        for cache in self.caches:
            self._prime_entry(cache, SERVICE, value, self.auth.service_ttl, now, rate, rng)
            if not isinstance(value, tuple):
                self._prime_entry(cache, value, self.auth.balancers[value], self.auth.balancer_ttl, now, rate, rng)

    def _prime_entry(
        self, cache: Cache, key: object, value: object, ttl: float, now: float, rate: float, rng: np.random.Generator
    ) -> None:
        primed = primed_entry(cache.policy, self.setup, ttl, rate, rng)
        if primed is None:
            return
        if primed.lifetime is not None:
            cache.fetched(key, value, now + primed.at, primed.lifetime)
        else:
            cache.put_until(key, value, now + primed.at)
