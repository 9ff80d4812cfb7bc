"""The backend pool: who may take a request, health, ejection, draining and
the idle upstream connections kept for reuse.

The decisions come from :mod:`sim.policy` (the same objects the model uses):
:func:`~sim.policy.balancing.eligible` filters, the balancing policy picks,
:func:`~sim.policy.health.on_probe` runs the health-check state machine. This
module adds only the I/O (probes) and the clock (ejection times).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from sim.core.config import Config, HealthCheckConfig, PassiveConfig
from sim.core.metrics import Metrics
from sim.policy.balancing import eligible, make_balancing_policy
from sim.policy.health import HealthCheckSpec, HealthState, on_probe

__all__ = ["Backend", "BackendPool", "Clock", "IdleConnection"]

# Envoy's max_ejection_time default: the ejection time grows with each
# ejection (base x times ejected) up to this (docs/references.md, Envoy outlier detection).
MAX_EJECTION_TIME = 300.0


class Clock(Protocol):
    """What the pool and the protocols need of an event loop (a fake in tests)."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any: ...


class IdleConnection(Protocol):
    idle_since: float

    @property
    def usable(self) -> bool: ...

    def close(self) -> None: ...


class Backend:
    """One backend server as the balancer sees it; a ``sim.policy`` host."""

    __slots__ = (
        "name",
        "host",
        "port",
        "healthy",
        "draining",
        "outstanding",
        "health",
        "ejected",
        "times_ejected",
        "consecutive_failures",
        "idle",
        "removed",
        "requests",
        "failures",
        "_eject_handle",
    )

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.healthy = True  # HAProxy starts servers up (no init-state)
        self.draining = False
        self.outstanding = 0
        self.health = HealthState()
        self.ejected = False
        self.times_ejected = 0
        self.consecutive_failures = 0
        self.idle: list[IdleConnection] = []
        self.removed = False
        self.requests = 0
        self.failures = 0
        self._eject_handle: Any = None

    @property
    def state(self) -> str:
        if self.removed:
            return "removed"
        if self.draining:
            return "draining"
        if self.ejected:
            return "ejected"
        return "up" if self.health.healthy else "down"

    def _refresh(self) -> None:
        self.healthy = self.health.healthy and not self.ejected and not self.removed

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for c in idle:
            c.close()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": f"{self.host}:{self.port}",
            "state": self.state,
            "healthy": self.healthy,
            "draining": self.draining,
            "outstanding": self.outstanding,
            "requests": self.requests,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "times_ejected": self.times_ejected,
            "idle_connections": len(self.idle),
        }


class BackendPool:
    __slots__ = (
        "backends",
        "policy",
        "rng",
        "clock",
        "metrics",
        "passive",
        "hc",
        "spec",
        "max_idle",
        "upstream_idle",
        "_checkers",
        "_sweep",
        "probe",
        "_eligible",
        "on_change",
    )

    def __init__(self, config: Config, clock: Clock, metrics: Metrics | None = None) -> None:
        self.backends: list[Backend] = [
            Backend(b.name, b.address.host, b.address.port) for b in config.backends
        ]
        self.policy = make_balancing_policy(config.balancing)
        self.rng = np.random.default_rng(config.seed)
        self.clock = clock
        self.metrics = metrics if metrics is not None else Metrics()
        self.passive: PassiveConfig = config.passive
        self.hc: HealthCheckConfig = config.health_check
        self.spec: HealthCheckSpec = config.health_check.spec()
        self.max_idle = config.upstream_pool.max_idle_per_backend
        self.upstream_idle = config.timeouts.upstream_idle
        self._checkers: dict[str, asyncio.Task[None]] = {}
        self._sweep: Any = None
        # the probe is replaceable so tests can drive the checker without sockets
        self.probe: Callable[[Backend], Any] = self._probe
        # sim.policy's eligible(), recomputed when a backend changes state
        # rather than on every request
        self._eligible: list[Backend] = eligible(self.backends)
        self.on_change: list[Callable[[], None]] = []  # issue 22: the event lines

    def changed(self) -> None:
        """A backend's health, ejection, draining or membership changed."""
        for b in self.backends:
            b._refresh()
        self._eligible = eligible(self.backends)
        for hook in self.on_change:
            hook()

    # -- picking ----------------------------------------------------------------

    def pick(self, exclude: tuple[Backend, ...] = ()) -> Backend | None:
        candidates = self._eligible
        if exclude:
            candidates = [b for b in candidates if b not in exclude]
        if not candidates:
            return None
        return self.policy.pick(candidates, self.rng)

    def get(self, name: str) -> Backend | None:
        for b in self.backends:
            if b.name == name:
                return b
        return None

    # -- idle upstream connections ---------------------------------------------

    def take_idle(self, backend: Backend) -> Any:
        idle = backend.idle
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
            # closed, or the backend spoke out of turn on it: never reused
            conn.close()
        return None

    def put_idle(self, backend: Backend, conn: IdleConnection, now: float | None = None) -> bool:
        """Keep ``conn`` for reuse; False (and the caller closes it) when not wanted.
        ``now``: the clock's time, when the caller has read it already."""
        if (
            backend.draining
            or backend.removed
            or backend.ejected
            or len(backend.idle) >= self.max_idle
        ):
            return False
        conn.idle_since = self.clock.time() if now is None else now
        backend.idle.append(conn)
        return True

    def forget_idle(self, backend: Backend, conn: IdleConnection) -> None:
        with contextlib.suppress(ValueError):
            backend.idle.remove(conn)

    def _sweep_idle(self) -> None:
        limit = self.clock.time() - self.upstream_idle
        for b in self.backends:
            if b.idle and b.idle[0].idle_since < limit:
                keep = [c for c in b.idle if c.idle_since >= limit]
                for c in b.idle:
                    if c.idle_since < limit:
                        c.close()
                b.idle = keep
        self._sweep = self.clock.call_later(max(0.5, self.upstream_idle / 2), self._sweep_idle)

    # -- passive ejection (outlier detection) ---------------------------------

    def report_success(self, backend: Backend) -> None:
        backend.consecutive_failures = 0

    def report_failure(self, backend: Backend) -> None:
        backend.failures += 1
        backend.consecutive_failures += 1
        p = self.passive
        if (
            not p.enabled
            or backend.ejected
            or backend.consecutive_failures < p.consecutive_failures
        ):
            return
        ejected = sum(1 for b in self.backends if b.ejected)
        # Envoy ejects at least one host whatever the percentage says
        allowed = max(1, math.floor(p.max_ejection_percent / 100 * len(self.backends)))
        if ejected >= allowed:
            return
        backend.times_ejected += 1
        backend.ejected = True
        self.changed()
        backend.close_idle()
        self.metrics.ejections += 1
        duration = min(
            p.base_ejection_time * backend.times_ejected,
            max(MAX_EJECTION_TIME, p.base_ejection_time),
        )
        backend._eject_handle = self.clock.call_later(duration, self._uneject, backend)

    def _uneject(self, backend: Backend) -> None:
        backend.ejected = False
        backend.consecutive_failures = 0
        backend._eject_handle = None
        self.changed()

    # -- administration ----------------------------------------------------------

    def add(self, name: str, host: str, port: int) -> Backend:
        if self.get(name) is not None:
            raise ValueError(f"backend {name!r} exists")
        b = Backend(name, host, port)
        self.backends.append(b)
        self.changed()
        if self._checkers or self._sweep is not None:
            self._start_checker(b)
        return b

    def remove(self, name: str) -> Backend:
        b = self.get(name)
        if b is None:
            raise KeyError(name)
        # requests in flight keep their reference and finish; nothing new goes there
        b.removed = True
        b.draining = True
        b.close_idle()
        self.backends.remove(b)
        self.changed()
        task = self._checkers.pop(b.name, None)
        if task is not None:
            task.cancel()
        if b._eject_handle is not None:
            b._eject_handle.cancel()
        return b

    def drain(self, name: str, on: bool = True) -> Backend:
        b = self.get(name)
        if b is None:
            raise KeyError(name)
        b.draining = on
        if on:
            b.close_idle()
        self.changed()
        return b

    # -- active health checks ------------------------------------------------------

    def start(self) -> None:
        self._sweep = self.clock.call_later(max(0.5, self.upstream_idle / 2), self._sweep_idle)
        if self.hc.enabled:
            for b in self.backends:
                self._start_checker(b)

    def _start_checker(self, b: Backend) -> None:
        if self.hc.enabled:
            self._checkers[b.name] = asyncio.get_running_loop().create_task(self._check_loop(b))

    async def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
        tasks = list(self._checkers.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._checkers.clear()
        for b in self.backends:
            b.close_idle()
            if b._eject_handle is not None:
                b._eject_handle.cancel()

    def record_probe(self, b: Backend, ok: bool) -> None:
        before = b.health.healthy
        b.health = on_probe(b.health, ok, self.spec)
        if b.health.healthy != before:
            self.changed()
        if not b.health.healthy:
            b.close_idle()

    async def _check_loop(self, b: Backend) -> None:
        spec = self.spec
        # spread the first probes over one interval so checks of many
        # backends do not fire together
        await asyncio.sleep(float(self.rng.random()) * spec.interval)
        while not b.removed:
            ok = await self.probe(b)
            if ok is not None:  # None: this process could not probe (no descriptor)
                self.record_probe(b, ok)
            # the next probe starts `interval` after this one ended (sim.policy.health)
            await asyncio.sleep(spec.interval)

    async def _probe(self, b: Backend) -> bool | None:
        timeout = self.spec.timeout or self.spec.interval
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(b.host, b.port)
                if self.hc.kind == "tcp":
                    return True
                writer.write(
                    f"GET {self.hc.path} HTTP/1.1\r\nHost: {b.host}:{b.port}\r\n"
                    "User-Agent: failover-sim-check\r\nConnection: close\r\n\r\n".encode()
                )
                line = await reader.readline()
                parts = line.split(b" ", 2)
                return (
                    len(parts) >= 2
                    and parts[0].startswith(b"HTTP/1.")
                    and parts[1][:1] in (b"2", b"3")
                )
        except OSError as e:
            # out of descriptors here says nothing of the backend
            return None if e.errno in (errno.EMFILE, errno.ENFILE) else False
        except (TimeoutError, ValueError):
            return False
        finally:
            if writer is not None:
                writer.close()
