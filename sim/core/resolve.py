"""Backends given by host name: resolved before serving, re-resolved at the record's TTL.

The data path never waits for DNS: a backend's ``host`` always holds an
address, and a task per named backend asks again when the answer expires
(the TTL it came with, floored at ``MIN_REFRESH``). A new address is used for
new connections at once; idle pooled connections to the old one are closed.
A failed lookup keeps the last good address (a choice: a DNS outage should
not empty the pool) and asks again after ``RETRY_AFTER`` (HAProxy's
resolvers: ``timeout retry 1s``, docs/references.md "HAProxy"). Only the
first A record is used: several addresses are several backends in the
configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import dns.asyncresolver
import dns.exception
import dns.resolver

from sim.core.config import Address
from sim.core.events import EventLog
from sim.core.pool import Backend, BackendPool

__all__ = ["MIN_REFRESH", "RETRY_AFTER", "ResolveError", "Resolver"]

# a TTL of 0 must not turn into a query loop; one second is the DNS's own unit
MIN_REFRESH = 1.0
RETRY_AFTER = 1.0  # HAProxy resolvers' `timeout retry` default
_LOOKUP_TIMEOUT = 2.0  # one lookup, all tries included


class ResolveError(ValueError):
    """A backend's name did not resolve when the balancer started or reloaded."""


def is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


class Resolver:
    """Resolves the named backends of one pool and keeps them current."""

    def __init__(self, nameserver: Address | None, events: EventLog) -> None:
        self._dns = dns.asyncresolver.Resolver(configure=nameserver is None)
        if nameserver is not None:
            self._dns.nameservers = [nameserver.host]
            self._dns.port = nameserver.port
        self._dns.lifetime = _LOOKUP_TIMEOUT
        self.events = events
        self.hostnames: dict[str, str] = {}  # backend name -> the host name it was given as
        self._tasks: list[asyncio.Task[None]] = []

    async def lookup(self, hostname: str) -> tuple[str, float]:
        """The first address of ``hostname`` and how long it may be kept."""
        answer = await self._dns.resolve(hostname, "A", search=False)
        ttl = answer.rrset.ttl if answer.rrset is not None else 0
        return answer[0].address, float(ttl)

    async def prepare(self, pool: BackendPool) -> None:
        """Resolve every named backend of ``pool`` (raises ResolveError), then keep them fresh."""
        named = [b for b in pool.backends if is_name(b.host)]
        found: list[tuple[Backend, str, str, float]] = []
        for b in named:
            try:
                address, ttl = await self.lookup(b.host)
            except (dns.exception.DNSException, OSError) as e:
                raise ResolveError(f"{b.name}: cannot resolve {b.host!r} ({e})") from None
            found.append((b, b.host, address, ttl))
        for b, hostname, address, ttl in found:
            self.hostnames[b.name] = hostname
            b.host = address
            self._tasks.append(asyncio.get_running_loop().create_task(self._keep(b, hostname, ttl)))

    async def _keep(self, b: Backend, hostname: str, ttl: float) -> None:
        wait = max(ttl, MIN_REFRESH)
        while not b.removed:
            await asyncio.sleep(wait)
            try:
                address, ttl = await self.lookup(hostname)
            except (dns.exception.DNSException, OSError) as e:
                self.events.emit("resolve_failed", backend=b.name, hostname=hostname, error=str(e))
                wait = RETRY_AFTER
                continue
            wait = max(ttl, MIN_REFRESH)
            if address != b.host:
                self.events.emit(
                    "backend_address", backend=b.name, hostname=hostname,
                    ttl=ttl, **{"from": b.host, "to": address},
                )  # fmt: skip
                b.host = address
                b.close_idle()  # pooled connections go to the old address

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
