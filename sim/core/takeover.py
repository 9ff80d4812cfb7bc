"""Static-address takeover: the VRRP / Elastic IP behaviour.

Two ``serve`` processes share one virtual address (``listen``). In loopback
mode (127.0.0.0/8, any user) holding the address means having the listening
socket bound, and a node binds only when a probe bind finds the address free
(sim.core.vip); in address mode (root) it means having the address on an
interface, taken with ``ip addr`` and gratuitous ARP after an ARP probe finds
nobody holding it (sim.core.vaddr). Either way there is one holder at a time
while both nodes run; this module does not know which mode it drives.

- The holder (state ``active``) sends a heartbeat over UDP to its peer every
  ``interval``.
- The other (``standby``) declares it dead after Master_Down_Interval =
  3 x interval + skew, skew = (256 - priority) x interval / 256 (RFC 5798
  6.1; docs/references.md "Address takeover"), and binds the address; if
  the silent holder's socket is still there (a stopped or wedged process),
  it joins the socket group and steers every new connection to itself.
- Two active nodes (the silent one came back): the one that became active
  first yields on the other's first heartbeat.
- A process started as ``active`` that finds the address held (its standby
  took over) stays standby: no preemption unless ``preempt`` is on and its
  priority is higher, in which case it asks the holder to release.
- ``reassociate`` (the admin API) moves the address on purpose: after the
  injected delay (cloud API latency) it takes the address, bypassing the
  holder as a silent one is bypassed, then asks the holder to release it
  (make before break: nobody holds it for no instant; an Elastic IP moves
  whatever state the old instance is in).

Every datagram is sealed: ``MAGIC + HMAC-SHA256(key, MAGIC + body) + body``,
the body JSON with the sender's name, priority, epoch (its start time in ns),
a sequence number and its send time. A receiver drops, and counts by reason,
what fails the MAC (forged), what does not parse or has the wrong types
(malformed), its own messages reflected back or a sequence number it has seen
(replayed), and an older epoch or a send time outside the freshness window
(stale), so a local user who can send datagrams can neither hold a standby
passive nor make the active let go.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sim.core.config import TakeoverConfig

__all__ = ["DROP_REASONS", "Takeover", "seal", "unseal"]

MAGIC = b"FST1"
_MAC_BYTES = 32
DROP_REASONS = ("forged", "malformed", "replayed", "stale")
_KINDS = frozenset(("heartbeat", "release", "released"))


class Dropped(Exception):
    """A datagram refused; ``reason`` is one of DROP_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def seal(key: bytes, fields: dict[str, Any]) -> bytes:
    """The datagram carrying ``fields``, authenticated under ``key``."""
    body = json.dumps(fields, separators=(",", ":")).encode()
    return MAGIC + hmac.digest(key, MAGIC + body, hashlib.sha256) + body


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# [choice] Four times the largest message sent (about 250 bytes of JSON and MAC).
MAX_DATAGRAM = 1024


def unseal(key: bytes, data: bytes) -> dict[str, Any]:
    """The fields of an authentic, well-formed datagram; raises Dropped otherwise."""
    # A genuine message is a few hundred bytes: anything far larger is refused
    # before the MAC is computed, so a flood of big forged datagrams costs little.
    if len(data) <= len(MAGIC) + _MAC_BYTES or len(data) > MAX_DATAGRAM or not data.startswith(MAGIC):
        raise Dropped("malformed")
    mac = data[len(MAGIC) : len(MAGIC) + _MAC_BYTES]
    body = data[len(MAGIC) + _MAC_BYTES :]
    if not hmac.compare_digest(mac, hmac.digest(key, MAGIC + body, hashlib.sha256)):
        raise Dropped("forged")
    # authentic from here on: only a peer with a bug sends the wrong shape, still never raise
    try:
        msg = json.loads(body)
    except ValueError:
        raise Dropped("malformed") from None
    ok = (
        isinstance(msg, dict)
        and msg.get("type") in _KINDS
        and isinstance(msg.get("node"), str)
        and _is_int(msg.get("prio"))
        and 1 <= msg["prio"] <= 254
        and _is_int(msg.get("epoch"))
        and _is_int(msg.get("seq"))
        and isinstance(msg.get("ts"), int | float)
        and math.isfinite(msg["ts"])
        and isinstance(msg.get("state", ""), str)
        and isinstance(msg.get("since", 0.0), int | float)
    )
    if not ok:
        raise Dropped("malformed")
    return msg


class Takeover(asyncio.DatagramProtocol):
    def __init__(
        self,
        cfg: TakeoverConfig,
        name: str,
        bind: Callable[[], Awaitable[None]],
        release: Callable[[], None],
        log: Callable[[str], None] | None = None,
        *,
        key: bytes,
        on_state: Callable[[str, str], None] | None = None,
        steal: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.cfg = cfg
        # binds even if a silent holder still has the address (sim.core.vip); None: never
        self._steal = steal
        self._key = key
        self._on_state = on_state  # (state, why): the balancer's event line
        # a restarted peer starts a new epoch, so its sequence numbers may start again
        self.epoch = time.time_ns()
        self._peer_last: tuple[int, int] = (-1, -1)
        # a message older than this is stale even if its sequence number is new (our own
        # restart forgets the peer's last sequence number; the window bounds replays then)
        self.freshness = max(1.0, cfg.master_down)
        self.dropped: Counter[str] = Counter(dict.fromkeys(DROP_REASONS, 0))
        self.name = name
        self._bind = bind
        self._release = release
        self.state = "standby"
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 0
        self.peer_seen_at: float | None = None
        self.peer_state: str | None = None
        self.peer_priority = 0
        self.became_active_at: float | None = None
        self.transitions: list[dict[str, Any]] = []
        self._down_timer: asyncio.TimerHandle | None = None
        self._beat_timer: asyncio.TimerHandle | None = None
        self._taking: asyncio.Task[Any] | None = None
        self._released = asyncio.Event()
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.loop = asyncio.get_running_loop()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        c = self.cfg
        await self.loop.create_datagram_endpoint(
            lambda: self, local_addr=(c.heartbeat_listen.host, c.heartbeat_listen.port)
        )
        if c.role == "active" and await self._try_bind():
            self._become_active("configured active")
            return
        if c.role == "active":
            self._log(
                f"{self.name}: the virtual address is held by the peer; staying standby (no preemption)"
            )
        self._arm_down()

    def stop(self) -> None:
        for h in (self._down_timer, self._beat_timer):
            if h is not None:
                h.cancel()
        if self._taking is not None:
            self._taking.cancel()
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    # -- state changes ---------------------------------------------------------------

    async def _try_bind(self) -> bool:
        try:
            await self._bind()
            return True
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise

    def _become_active(self, why: str) -> None:
        if self._down_timer is not None:
            self._down_timer.cancel()
            self._down_timer = None
        self.state = "active"
        self.became_active_at = time.time()
        self.transitions.append({"at": self.became_active_at, "state": "active", "why": why})
        self._log(f"{self.name}: active ({why})")
        if self._on_state is not None:
            self._on_state("active", why)
        self._beat()

    def _become_standby(self, why: str) -> None:
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None
        self._release()
        self.state = "standby"
        self.transitions.append({"at": time.time(), "state": "standby", "why": why})
        self._log(f"{self.name}: standby ({why})")
        if self._on_state is not None:
            self._on_state("standby", why)
        self._arm_down()

    # -- heartbeats -----------------------------------------------------------------

    def _send(self, **msg: Any) -> None:
        if self.transport is None:
            return
        self.seq += 1
        msg.update(
            node=self.name, prio=self.cfg.priority, epoch=self.epoch, seq=self.seq, ts=time.time()
        )
        peer = self.cfg.peer
        # the peer's port may be closed (it is dead): that is the point
        with contextlib.suppress(OSError):
            self.transport.sendto(seal(self._key, msg), (peer.host, peer.port))

    def _beat(self) -> None:
        if self.state != "active":
            return
        self._send(type="heartbeat", state="active", since=self.became_active_at)
        self._beat_timer = self.loop.call_later(self.cfg.interval, self._beat)

    def _arm_down(self) -> None:
        if self._down_timer is not None:
            self._down_timer.cancel()
        self._down_timer = self.loop.call_later(self.cfg.master_down, self._master_down)

    def _master_down(self) -> None:
        self._down_timer = None
        if not self.cfg.automatic:
            return
        if self.state != "standby" or (self._taking is not None and not self._taking.done()):
            return
        self._taking = self.loop.create_task(
            self._take("no heartbeat for 3 x interval + skew", steal=True)
        )

    async def _take(self, why: str, wait: float = 0.0, steal: bool = False) -> bool:
        if steal and self._steal is not None:
            # The holder is silent: dead, or stopped (SIGSTOP) or wedged with its socket
            # still there. Taking it without a probe first: the probe could only say
            # "held" (a stopped holder's socket; in address mode, a dead node's kernel
            # still answers ARP) and costs time (address mode: 100 ms, sim.core.vaddr).
            try:
                await self._steal()
            except OSError as e:
                self._log(f"{self.name}: cannot take the address from the silent holder: {e}")
            else:
                self._become_active(f"{why}; taken without the silent holder")
                return True
            self._arm_down()
            return False
        deadline = self.loop.time() + wait
        while True:
            if await self._try_bind():
                self._become_active(why)
                return True
            if self.loop.time() >= deadline:
                break
            await asyncio.sleep(0.01)
        # the holder is alive after all (heartbeats lost, not the process): keep watching
        self._arm_down()
        return False

    def _yields_to(self, msg: dict[str, Any]) -> bool:
        """Both active: the node that became active first yields (it was the one that went
        silent, or the other would not have taken over); ties go to priority, then name."""
        mine = (self.became_active_at or 0.0, self.cfg.priority, self.name)
        theirs = (float(msg.get("since") or 0.0), msg["prio"], msg["node"])
        return mine < theirs

    def _admit(self, data: bytes) -> dict[str, Any]:
        """The message if it is authentic, well formed, fresh and new; raises Dropped."""
        msg = unseal(self._key, data)
        if msg["node"] == self.name:
            raise Dropped("replayed")  # our own message sent back to us
        if abs(time.time() - msg["ts"]) > self.freshness:
            raise Dropped("stale")
        stamp = (msg["epoch"], msg["seq"])
        if stamp[0] < self._peer_last[0]:
            raise Dropped("stale")  # from before the peer's restart
        if stamp <= self._peer_last:
            raise Dropped("replayed")
        self._peer_last = stamp
        return msg

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            msg = self._admit(data)
        except Dropped as d:
            self.dropped[d.reason] += 1
            return
        self.peer_seen_at = time.time()
        self.peer_priority = msg["prio"]
        kind = msg["type"]
        if kind == "heartbeat":
            self.peer_state = msg.get("state")
            if self.state == "active" and self.peer_state == "active" and self._yields_to(msg):
                self._become_standby(f"{msg['node']} took the address while this node was silent")
                return
            if self.state == "standby":
                self._arm_down()
                if (
                    self.cfg.preempt
                    and self.cfg.priority > self.peer_priority
                    and (self._taking is None or self._taking.done())
                ):
                    self._taking = self.loop.create_task(self.reassociate(0.0, why="preemption"))
        elif kind == "release":
            if self.state == "active":
                self._become_standby(f"released to {msg.get('node')}")
            self._send(type="released")
        elif kind == "released":
            self._released.set()

    # -- the "reassociate" API --------------------------------------------------------

    async def reassociate(
        self, delay: float | None = None, why: str = "reassociate"
    ) -> dict[str, Any]:
        """Move the virtual address to this process, after the injected ``delay``."""
        t0 = time.monotonic()
        if self.state == "active":
            return {"state": self.state, "moved": False, "seconds": 0.0}
        await asyncio.sleep(self.cfg.reassociate_delay if delay is None else delay)
        if self._steal is not None:
            # Make before break: hold the address first (new connections come here from
            # now on: sim.core.vip steers them, vaddr's gratuitous ARP moves them), then
            # ask the holder to let go. Asking first left an instant with no holder, and in
            # address mode a SYN sent then is lost and resent a second later (TCP's first
            # retransmission), past a lab client's timeout; and a holder that never
            # answers (killed: its kernel still answers ARP) kept the address.
            try:
                await self._steal()
            except OSError as e:
                self._log(f"{self.name}: cannot take the address: {e}")
                return {"state": self.state, "moved": False, "seconds": round(time.monotonic() - t0, 4)}
            # the release before our first heartbeat: the holder steps down as released
            self._send(type="release")
            self._become_active(why)
            return {"state": self.state, "moved": True, "seconds": round(time.monotonic() - t0, 4)}
        self._released.clear()
        self._send(type="release")
        # a live holder answers at once; a dead one never does, and then the bind just works
        try:
            # a live holder answers within a heartbeat's round trip
            async with asyncio.timeout(2 * self.cfg.interval):
                await self._released.wait()
        except TimeoutError:
            pass
        moved = await self._take(why, wait=max(1.0, 2 * self.cfg.interval))
        return {"state": self.state, "moved": moved, "seconds": round(time.monotonic() - t0, 4)}

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "mode": self.cfg.mode,
            "role": self.cfg.role,
            "priority": self.cfg.priority,
            "preempt": self.cfg.preempt,
            "interval": self.cfg.interval,
            "master_down_interval": self.cfg.master_down,
            "peer_state": self.peer_state,
            "peer_seen_at": self.peer_seen_at,
            "became_active_at": self.became_active_at,
            "transitions": self.transitions[-20:],
            "dropped": dict(self.dropped),
        }
