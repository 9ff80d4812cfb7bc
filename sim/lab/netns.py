"""The lab's network for a moving address, as root: the two balancers in network
namespaces of their own on a bridge, the address moved by sim.core's address mode
(`ip addr` and gratuitous ARP, sim.core.vaddr), everything else where it was.

Layout, in a /16 of private space (RFC 1918) that no route or address of this
machine touches (checked, then claimed by adding its route; another lab's claim
fails and the next /16 is tried):

- ``P.0.0/24``, the segment: a bridge in a namespace of its own (the switch);
  the root namespace's end of a veth pair is ``.1``, the service address
  ``.10``, the balancers' own addresses (their ``eth0``) ``.11`` and ``.12``,
  each balancer's default route through ``.1``.
- ``P.128.0/17``, local to the root namespace by one ``local`` route (as
  127.0.0.0/8 is): the backends listen there and every client has its own
  address there, so the balancers reach them through ``.1`` and answer them;
  a loopback source cannot leave the loopback device (the kernel refuses the
  route), so the lab's usual 127.x addresses cannot talk to a namespace.
  DNS stays on loopback (the resolvers also admit the clients' new sources).

The namespaces have no name: each is held by a process of the lab's (``unshare
--net sleep infinity``) and entered with ``nsenter``, so it ends with the last
process in it. The lab's processes end however the lab does (Ctrl-C, SIGTERM,
failure: sim.lab.procs; SIGKILL: the kernel, sim.lifeline), and with the
switch's namespace go the bridge and every veth pair with an end in it, the
root namespace's end included, and with that end the ``local`` route, which
names it as its device. `Segment.remove` deletes that end at once as well.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from sim.lab.procs import LabError, Processes

__all__ = ["INTERFACE", "Segment", "resolve_mode", "say_once"]

INTERFACE = "eth0"  # each balancer's device on the segment (sim.core takeover.interface)
TAKEOVER_MODES = ("auto", "namespace", "loopback")
_TOOLS = ("ip", "unshare", "nsenter")
# What loopback mode cannot show, said once (docs/lab.md "The address move").
LOOPBACK_NOTE = ("the lab moves eip_remap's and vrrp's address in loopback mode (sim.core.vip): no ARP and no "
                 "neighbour cache between clients and the address, and connections a stopped balancer had "
                 "accepted hang until it resumes; run as root for the namespace mode")
_said: set[str] = set()


def unavailable() -> str | None:
    """Why the namespace mode cannot run here (None: it can)."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "not root (namespaces, ip addr and raw ARP sockets need CAP_NET_ADMIN and CAP_NET_RAW)"
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian packages iproute2, util-linux)"
    # Root is not enough in a container without CAP_NET_ADMIN: try to make a namespace.
    try:
        probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --net failed ({exc})"
    if probe.returncode != 0:
        return ("cannot make a network namespace (no CAP_NET_ADMIN?): "
                + probe.stderr.decode(errors="replace").strip()[:200])
    return None


def resolve_mode(requested: str) -> tuple[str, str | None]:
    """The takeover mode a lab world uses for a moving address, and why it is loopback
    when `requested` was "auto" (None otherwise). "namespace" where it cannot run is a
    LabError naming the reason."""
    if requested not in TAKEOVER_MODES:
        raise LabError(f"takeover mode {requested!r}: expected one of {', '.join(TAKEOVER_MODES)}")
    if requested == "loopback":
        return "loopback", None
    reason = unavailable()
    if reason is None:
        return "namespace", None
    if requested == "namespace":
        raise LabError(f"the lab's namespace mode cannot run: {reason}")
    return "loopback", reason


def say_once(reason: str, quiet: bool = False) -> None:
    """The loopback note, once per process (a pool's workers inherit what their parent said)."""
    if reason in _said:
        return
    _said.add(reason)
    if not quiet:
        print(f"lab: {reason}: {LOOPBACK_NOTE}", file=sys.stderr, flush=True)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)


def _must(*argv: str) -> None:
    p = _run(*argv)
    if p.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {p.stderr.strip() or f'exit status {p.returncode}'}")


def _taken_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 prefix this machine routes or has an address in (the default route aside)."""
    out = []
    for line in _run("ip", "-4", "-o", "route", "show", "table", "all").stdout.splitlines():
        # "PREFIX ..." or "TYPE PREFIX ..." (local, broadcast, unreachable, ...); "default" aside
        for word in line.split()[:2]:
            with contextlib.suppress(ValueError):
                out.append(ipaddress.ip_network(word, strict=False))
                break
    for line in _run("ip", "-4", "-o", "addr", "show").stdout.splitlines():
        words = line.split()
        if "inet" in words:
            with contextlib.suppress(ValueError, IndexError):
                out.append(ipaddress.ip_interface(words[words.index("inet") + 1]).network)
    return out


def _candidates() -> list[str]:
    """Private /16s, as "a.b", in a random order: 10.x.0.0 first, then 172.16-31."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    tens = [f"10.{x}" for x in range(1, 255)]
    rng.shuffle(tens)
    others = [f"172.{x}" for x in range(16, 32)]
    rng.shuffle(others)
    return tens + others


@dataclass
class Segment:
    """The bridge, the balancers' namespaces and the root namespace's way onto it."""

    procs: Processes
    net: str = ""  # "a.b": the /16
    link: str = ""  # the root namespace's end of its veth pair
    holders: dict[str, subprocess.Popen] = field(default_factory=dict)  # a process in each namespace

    # -- addresses ----------------------------------------------------------------

    @property
    def gateway(self) -> str:
        return f"{self.net}.0.1"

    @property
    def shared(self) -> str:
        return f"{self.net}.0.10"

    def node(self, i: int) -> str:
        """Balancer i's own address on the segment (0: the active, 1: the standby)."""
        return f"{self.net}.0.{11 + i}"

    def host(self, n: int) -> str:
        """The n-th address local to the root namespace (P.128.1 onwards): the lab gives
        the backends the first 250, the clients the rest."""
        if n >= 127 * 250:
            raise LabError(f"{n} addresses on the root namespace's side: the lab's namespace mode has {127 * 250}")
        return f"{self.net}.{128 + n // 250}.{1 + n % 250}"

    @property
    def network(self) -> str:
        return f"{self.net}.0.0/16"

    # -- building -----------------------------------------------------------------

    def build(self) -> None:
        """The switch and the two balancers' namespaces, linked; raises LabError."""
        for name in ("switch", "a", "b"):
            self.holders[name] = self._hold(name)
        self._in("switch", "ip", "link", "add", "br0", "type", "bridge")
        self._in("switch", "ip", "link", "set", "br0", "up")
        self._claim()
        for i, node in enumerate(("a", "b")):
            self._in("switch", "ip", "link", "add", f"v{node}", "type", "veth", "peer", "name", INTERFACE,
                     "netns", str(self.holders[node].pid))
            self._in("switch", "ip", "link", "set", f"v{node}", "master", "br0", "up")
            self._in(node, "ip", "addr", "add", f"{self.node(i)}/24", "dev", INTERFACE)
            self._in(node, "ip", "link", "set", INTERFACE, "up")
            self._in(node, "ip", "link", "set", "lo", "up")
            self._in(node, "ip", "route", "add", "default", "via", self.gateway)

    def _hold(self, name: str) -> subprocess.Popen:
        proc = self.procs.start(f"netns-{name}", ["unshare", "--net", "sleep", "infinity"], ready=None)
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{proc.pid}/ns/net") != mine:
                    return proc
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        raise LabError(f"unshare --net did not make a network namespace (exit status {proc.poll()})")

    def _claim(self) -> None:
        """The root namespace's veth end, and a free /16 claimed by its local route."""
        self.link = f"fsl{secrets.token_hex(4)}"  # 11 characters of the 15 a device name may have
        _must("ip", "link", "add", self.link, "type", "veth", "peer", "name", "up0",
              "netns", str(self.holders["switch"].pid))
        self._in("switch", "ip", "link", "set", "up0", "master", "br0", "up")
        _must("ip", "link", "set", self.link, "up")
        taken = _taken_networks()
        for net in _candidates():
            block = ipaddress.ip_network(f"{net}.0.0/16")
            if any(block.overlaps(t) for t in taken):
                continue
            # the claim: a second lab adding the same route gets "File exists"
            if _run("ip", "route", "add", "local", f"{net}.128.0/17", "dev", self.link).returncode != 0:
                continue
            self.net = net
            _must("ip", "addr", "add", f"{self.gateway}/24", "dev", self.link)
            return
        raise LabError("no free private /16 for the lab's namespaces (every one of 10.0.0.0/8 and "
                       "172.16.0.0/12 is routed or addressed on this machine)")

    def _in(self, name: str, *argv: str) -> None:
        _must(*self.enter(name), *argv)

    def enter(self, name: str) -> list[str]:
        """The argv prefix that runs a command in namespace `name` ("a", "b", "switch");
        nsenter executes it in place, so the pid is the command's."""
        return ["nsenter", f"--net=/proc/{self.holders[name].pid}/ns/net", "--"]

    def describe(self) -> dict:
        """The network in a few fields: the /16, the root namespace's link, the holders' pids."""
        return {"network": self.network, "link": self.link,
                "holders": {name: proc.pid for name, proc in self.holders.items()}}

    def remove(self) -> None:
        """Delete the root namespace's end now (the rest goes with the lab's processes)."""
        if self.link:
            _run("ip", "link", "del", self.link)
