"""The virtual address in loopback mode: one listening socket, and taking it from a stalled holder.

Holding the address is having a listening socket on it. Both nodes bind with
SO_REUSEPORT, so a node whose peer went silent can join the peer's socket
group even though the peer's process (stopped by SIGSTOP, say) still holds
its socket; it then attaches a classic BPF program to the group
(SO_ATTACH_REUSEPORT_CBPF, allowed without privileges) that sends every new
connection to its own socket, so the silent holder gets none. Before binding
in the ordinary way, a probe socket without SO_REUSEPORT tries the address:
EADDRINUSE means somebody holds it, which keeps one holder at a time when
nobody is stalled.

What loopback mode cannot show (the network-namespace mode is for that):
connections the stalled holder had accepted, or had in its accept queue
before the steal, hang until it resumes, where an address moved by ARP would
reset them at once; there is no ARP, no neighbour cache, no switch; and a
socket group only takes sockets of the same user on the same host.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from sim.core.config import Address

__all__ = ["listen_socket"]

SO_ATTACH_REUSEPORT_CBPF = 51  # linux/asm-generic/socket.h
_BPF_RET_K = 0x06  # BPF_RET | BPF_K: return the constant k
_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def _listeners(address: Address) -> int:
    """Listening sockets on ``address`` in this network namespace (IPv4, /proc/net/tcp)."""
    host = socket.inet_aton(address.host)[::-1].hex().upper()  # little-endian, as the kernel prints
    local = f"{host}:{address.port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return 1
    return sum(1 for r in rows if r[1] == local and r[3] == _TCP_LISTEN)


def _steer_to(sock: socket.socket, index: int) -> None:
    """Send every new connection of the socket group to the socket at ``index``."""
    program = (ctypes.c_ubyte * 8)(*struct.pack("HBBI", _BPF_RET_K, 0, 0, index))
    fprog = struct.pack("@HP", 1, ctypes.addressof(program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def listen_socket(address: Address, steal: bool = False, backlog: int = 4096) -> socket.socket:
    """A listening socket on ``address``; OSError(EADDRINUSE) if it is held and not ``steal``."""
    if not steal:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
        finally:
            probe.close()
    held_by = _listeners(address) if steal else 0
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        if held_by:
            # the group's sockets are indexed in the order they listened: ours comes last
            _steer_to(sock, held_by)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
