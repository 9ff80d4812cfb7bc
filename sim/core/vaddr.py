"""The virtual address in address mode: on an interface, moved as keepalived moves it.

Each node runs in its own network namespace (or host) on one layer-2 segment.
Holding the address is having it on ``takeover.interface``: the new holder
adds it (``ip addr add``) and announces it with gratuitous ARP (an ARP
request whose sender and target address are both the virtual address), which
every neighbour applies to its cache at once (Linux overrides an entry's
lock time for a gratuitous ARP), so traffic follows the address within one
frame. Letting go is ``ip addr del``. Needs CAP_NET_ADMIN and CAP_NET_RAW
(root); loopback mode (sim.core.vip) is for everyone else.

Before taking the address in the ordinary way a node probes for a holder
(RFC 5227: an ARP request from 0.0.0.0 for the address; any reply means it is
held), so a node started as active while its standby holds the address stays
standby. A standby whose peer went silent takes the address without probing:
a stopped (SIGSTOP) holder's kernel still answers ARP for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import select
import socket
import struct
import subprocess
import time

__all__ = ["add", "announce", "delete", "held_elsewhere", "present"]

_ETH_P_ARP = 0x0806
_SIOCGIFHWADDR = 0x8927  # linux/sockios.h
_BROADCAST = b"\xff" * 6
# keepalived sends 5 gratuitous ARPs on becoming master (vrrp_garp_master_repeat 5);
# docs/references.md "VRRP and keepalived"
GARP_REPEAT = 5
GARP_GAP = 0.05  # [choice] seconds between them: a lost frame costs 50 ms, not an outage
PROBE_WAIT = 0.1  # [choice] an ARP reply on one segment takes well under a millisecond


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def present(interface: str, address: str) -> bool:
    out = _ip("-4", "-o", "addr", "show", "dev", interface).stdout
    return any(f" {address}/" in line for line in out.splitlines())


def add(interface: str, address: str, prefix: int) -> None:
    """Put the address on the interface (already there: fine); OSError on failure."""
    p = _ip("addr", "add", f"{address}/{prefix}", "dev", interface)
    if p.returncode != 0 and "File exists" not in p.stderr:
        raise OSError(errno.EACCES, f"ip addr add {address}/{prefix} dev {interface}: {p.stderr.strip()}")


def delete(interface: str, address: str, prefix: int) -> None:
    """Take the address off the interface (absent: fine)."""
    _ip("addr", "del", f"{address}/{prefix}", "dev", interface)


def _mac(interface: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        info = fcntl.ioctl(s.fileno(), _SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15]))
    return info[18:24]


def _arp(op: int, mac: bytes, sender_ip: bytes, target_ip: bytes) -> bytes:
    eth = _BROADCAST + mac + struct.pack("!H", _ETH_P_ARP)
    # Ethernet, IPv4, 6-byte and 4-byte addresses; target hardware address unknown
    return eth + struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, sender_ip, b"\0" * 6, target_ip)


def _raw(interface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ARP))
    s.bind((interface, _ETH_P_ARP))
    return s


def announce(
    interface: str, address: str, repeat: int = GARP_REPEAT, gap: float = GARP_GAP, first: int = 0
) -> None:
    """Gratuitous ARP for ``address`` from ``interface``'s hardware address: frames
    ``first`` to ``repeat - 1``, ``gap`` apart (``first=1``: the repeats after a first
    frame sent already, beginning one gap after it)."""
    mac = _mac(interface)
    frame = _arp(1, mac, socket.inet_aton(address), socket.inet_aton(address))
    with _raw(interface) as s:
        for i in range(first, repeat):
            if i:
                time.sleep(gap)
            with contextlib.suppress(OSError):
                s.send(frame)


def held_elsewhere(interface: str, address: str, wait: float = PROBE_WAIT) -> bool:
    """True if another host on the segment answers ARP for ``address`` (RFC 5227 probe)."""
    mac = _mac(interface)
    target = socket.inet_aton(address)
    with _raw(interface) as s:
        s.send(_arp(1, mac, b"\0" * 4, target))
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([s], [], [], left)[0]:
                break
            frame = s.recv(128)
            if len(frame) < 42:
                continue
            op, sender_mac, sender_ip = struct.unpack("!H6s4s", frame[20:32])
            if op == 2 and sender_ip == target and sender_mac != mac:
                return True
    return False
