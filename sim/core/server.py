"""One balancer process: listener, pool, health checks, admin API, takeover."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from functools import partial
from typing import Any

from sim.core import vaddr
from sim.core.config import Config, TakeoverConfig
from sim.core.events import AccessLog, EventLog, HttpLog, open_access_log, process_figures
from sim.core.l4 import TcpProxy
from sim.core.l7 import HttpProxy
from sim.core.metrics import Metrics, family
from sim.core.pool import BackendPool
from sim.core.private import read_key
from sim.core.resolve import Resolver
from sim.core.takeover import Takeover
from sim.core.vip import listen_socket

__all__ = ["Balancer", "ReloadError"]

_FLUSH_EVERY = 1.0  # seconds an access log line may wait in the buffer
# what the process holds (its sockets, its peer, its token) cannot change under it
_RESTART_ONLY = ("name", "mode", "listen", "workers", "loop", "admin", "takeover")


class ReloadError(ValueError):
    """A new configuration that the running process cannot take without a restart."""


class Balancer:
    def __init__(self, config: Config, worker: int = 0, admin: bool = True) -> None:
        self.config = config
        self.worker = worker
        self.loop = asyncio.get_running_loop()
        self.metrics = Metrics()
        self.events = EventLog()
        self.access_log: AccessLog | None = None
        self.pool, self.proxy = self._build(config)
        self.events.watch(self.pool)
        self.server: asyncio.Server | None = None
        self.listen_port: int | None = None
        self.takeover: Takeover | None = None
        self.admin: Any = None
        self.want_admin = admin and config.admin is not None
        self.started_at = time.time()
        self.stopped = asyncio.Event()
        self._flush_timer = self.loop.call_later(_FLUSH_EVERY, self._flush_access_log)
        self._retiring: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()
        self.resolver = Resolver(config.resolver.nameserver, self.events)
        self._announcing: asyncio.Future[None] | None = None  # address mode's gratuitous ARPs

    def _build(self, config: Config) -> tuple[BackendPool, HttpProxy | TcpProxy]:
        """A pool and a listener protocol for ``config``, sharing this process's metrics."""
        pool = BackendPool(config, self.loop, self.metrics)
        proxy: HttpProxy | TcpProxy
        if config.mode == "http":
            proxy = HttpProxy(config, pool, self.metrics, self.loop, self.loop)
            path, fmt = config.log.access, config.log.access_format
            if path is not None:
                log = self.access_log
                if log is None or log.path != path or log.format != fmt:
                    self.access_log = open_access_log(path, fmt, config.name, config.log.capture_user_agent)
                elif isinstance(log, HttpLog):
                    log.capture_user_agent = config.log.capture_user_agent  # a reload may change it
                proxy.access_log = self.access_log
        else:
            proxy = TcpProxy(config, pool, self.metrics, self.loop, self.loop)
        return pool, proxy

    def _accept(self) -> Any:
        # through self.proxy at each accept, so a reload's new proxy takes new connections
        return self.proxy()

    def _flush_access_log(self) -> None:
        if self.access_log is not None:
            self.access_log.flush()
        self._flush_timer = self.loop.call_later(_FLUSH_EVERY, self._flush_access_log)

    # -- reload (SIGHUP) ----------------------------------------------------------------

    async def reload(self, config: Config) -> None:
        """Serve ``config`` from now on (one reload at a time: a second SIGHUP during a
        reload's name lookups waits for it, so no pool is left running unretired)."""
        async with self._reloading:
            await self._reload(config)

    async def _reload(self, config: Config) -> None:
        """Serve ``config`` from now on, on the same listening socket.

        New connections get the new pool and settings; connections open now
        finish the exchange in flight on the old ones and are then closed
        (HTTP: with ``Connection: close``), so nothing in flight fails.
        Backends keep their health and draining state across a reload when
        their name and address stay the same.
        """
        old = self.config
        for field in _RESTART_ONLY:
            if getattr(old, field) != getattr(config, field):
                raise ReloadError(f"{field}: cannot change on reload; restart to change it")
        old_pool, old_proxy, old_log = self.pool, self.proxy, self.access_log
        pool, proxy = self._build(config)
        resolver = Resolver(config.resolver.nameserver, self.events)
        try:
            await resolver.prepare(pool)  # a name that does not resolve refuses the reload
        except BaseException:
            if self.access_log is not old_log and self.access_log is not None:
                self.access_log.close()  # _build opened the new file: the old one stays
            self.access_log = old_log
            raise
        old_resolver, self.resolver = self.resolver, resolver
        await old_resolver.stop()
        for b in pool.backends:
            before = old_pool.get(b.name)
            if before is not None and (before.host, before.port) == (b.host, b.port):
                b.health, b.draining = before.health, before.draining
        pool.changed()
        self.config, self.pool, self.proxy = config, pool, proxy
        old_pool.on_change.clear()
        self.events.watch(pool)
        pool.start()
        task = self.loop.create_task(self._retire(old_pool, old_proxy, old_log))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(
        self, pool: BackendPool, proxy: HttpProxy | TcpProxy, log: AccessLog | None
    ) -> None:
        await pool.stop()  # its health checks: the new pool probes now
        if isinstance(proxy, HttpProxy):
            for conn in list(proxy.connections):
                conn.close_after = True
        try:
            # bounded by the client idle timeout, which closes a connection nobody uses
            while proxy.connections:
                await asyncio.sleep(0.1)
        finally:
            proxy.close_all()  # the balancer stops before they finished: as at stop()
            await pool.stop()  # upstream connections the last exchanges put back
        if log is not None and log is not self.access_log:
            log.close()

    async def bind(self, steal: bool = False) -> None:
        """Bind the listening address (for takeover: take the virtual address; ``steal``:
        even from a holder that went silent, sim.core.vip)."""
        if self.server is not None:
            return
        c = self.config
        if c.takeover is not None and c.takeover.mode == "address":
            await self._hold_address(c.takeover, steal)
            return
        if c.takeover is not None:
            sock = listen_socket(c.listen, steal=steal)
            self.server = await self.loop.create_server(self._accept, sock=sock, backlog=4096)
            self.listen_port = c.listen.port
            return
        self.server = await self.loop.create_server(
            self._accept,
            c.listen.host,
            c.listen.port,
            reuse_address=True,
            # N workers share one port; the kernel spreads connections among them
            reuse_port=c.workers > 1,
            backlog=4096,
        )
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def _hold_address(self, t: TakeoverConfig, steal: bool) -> None:
        """Address mode: probe for a holder (unless taking over from a silent one), put the
        address on the interface, listen, announce it (sim.core.vaddr)."""
        assert t.interface is not None
        host = self.config.listen.host
        if not steal and await self.loop.run_in_executor(None, vaddr.held_elsewhere, t.interface, host):
            raise OSError(errno.EADDRINUSE, f"{host} answers ARP on {t.interface}: held by another node")
        await self.loop.run_in_executor(None, vaddr.add, t.interface, host, t.prefix)
        try:
            self.server = await self.loop.create_server(
                self._accept, host, self.config.listen.port, reuse_address=True, backlog=4096
            )
        except OSError:
            vaddr.delete(t.interface, host, t.prefix)
            raise
        self.listen_port = self.config.listen.port
        # The first frame goes now, before this returns: the caller (a planned move,
        # Takeover.reassociate) tells the old holder to let go next, and the neighbours
        # must already send here by then. Sent from a worker thread, it left 6 ms after
        # the release in the lab (2026-12-03, tcpdump): SYNs sent in between reached
        # the old holder, which reset them as it stopped listening. The repeats go on a
        # worker thread.
        vaddr.announce(t.interface, host, repeat=1)
        self._announcing = self.loop.run_in_executor(None, partial(vaddr.announce, t.interface, host, first=1))

    def release(self) -> None:
        """Stop listening (address mode: and take the address off the interface).
        Connections already open carry on (a clean stop lets them finish);
        `address_left` resets them when the address moved away."""
        if self.server is None:
            return
        self.server.close()
        self.server = None
        t = self.config.takeover
        if t is not None and t.mode == "address" and t.interface is not None:
            vaddr.delete(t.interface, self.config.listen.host, t.prefix)

    def address_left(self) -> None:
        """The virtual address moved to the other node: stop listening and reset the
        connections clients opened to it (sim.core.connect.Listener.reset_all), as a
        moved address does; the lab's model resets each one once, at its next use."""
        self.release()
        reset = self.proxy.reset_all()
        if reset:
            self.events.emit("address_left", node=self.config.name, connections_reset=reset)

    async def start(self) -> None:
        await self.resolver.prepare(self.pool)
        self.pool.start()
        if self.config.takeover is not None:
            cfg = self.config.takeover
            if cfg.mode == "address" and cfg.interface is not None:
                # left on the interface by a predecessor killed outright: it is not held
                # by this process, so it goes before anything answers ARP for it
                await self.loop.run_in_executor(
                    None, vaddr.delete, cfg.interface, self.config.listen.host, cfg.prefix
                )
            self.takeover = Takeover(
                cfg,
                self.config.name,
                self.bind,
                self.address_left,
                steal=lambda: self.bind(steal=True),
                log=lambda msg: self.events.emit("takeover_note", message=msg),
                key=read_key(cfg.key_file),
                on_state=lambda state, why: self.events.emit(
                    "takeover", node=self.config.name, state=state, why=why
                ),
            )
            await self.takeover.start()
        else:
            await self.bind()
        if self.want_admin:
            from sim.core.admin import AdminServer

            self.admin = AdminServer(self)
            await self.admin.start()

    async def stop(self) -> None:
        if self.takeover is not None:
            self.takeover.stop()
        self.release()
        if self.admin is not None:
            await self.admin.stop()
        self.proxy.close_all()
        await self.pool.stop()
        await self.resolver.stop()
        for task in list(self._retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._flush_timer.cancel()
        if self.access_log is not None:
            self.access_log.close()
            self.access_log = None
        self.stopped.set()

    def ready_info(self) -> dict[str, Any]:
        c = self.config
        info: dict[str, Any] = {
            "event": "ready",
            "name": c.name,
            "mode": c.mode,
            "worker": self.worker,
            "listen": f"{c.listen.host}:{self.listen_port or c.listen.port}",
            "listening": self.server is not None,
        }
        if self.admin is not None:
            info["admin"] = self.admin.address
            info["token_file"] = self.admin.token_file
        if self.takeover is not None:
            info["state"] = self.takeover.state
        return info

    def status(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "name": self.config.name,
            # the address holder is "active"; without takeover a balancer always is
            "state": self.takeover.state if self.takeover is not None else "active",
            "mode": self.config.mode,
            "listen": str(self.config.listen),
            "listening": self.server is not None,
            "uptime": round(time.time() - self.started_at, 3),
            "active_connections": m.active_connections,
            "requests": dict(m.outcomes),
            "retries": m.retries,
            "backends": [b.as_dict() for b in self.pool.backends],
            "takeover": self.takeover.status() if self.takeover is not None else None,
            "loop": type(self.loop).__module__,
        }

    def metrics_text(self) -> str:
        extra: dict[str, float] = {"failover_listening": 1.0 if self.server is not None else 0.0}
        families: list[str] = []
        now = time.time()
        extra.update(process_figures())
        extra["process_start_time_seconds"] = round(self.started_at, 3)
        extra["failover_uptime_seconds"] = round(now - self.started_at, 3)
        if self.takeover is not None:
            extra["failover_takeover_active"] = 1.0 if self.takeover.state == "active" else 0.0
            families += family(
                "failover_takeover_dropped_total",
                "counter",
                "Takeover datagrams dropped: forged, malformed, replayed, stale.",
                [({"reason": r}, n) for r, n in sorted(self.takeover.dropped.items())],
            )
        return self.metrics.render(self.pool, extra, families)
