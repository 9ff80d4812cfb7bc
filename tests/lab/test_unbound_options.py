"""Real unbound's prefetch and serve-expired against sim.policy.resolver's rules.

One unbound on loopback in front of the lab's authoritative server
(sim.lab.dnsserver), configured by sim.lab.world.unbound_config. unbound
keeps times in whole seconds: an answer fetched at f (unix seconds) expires
at floor(f) + T and is prefetched by a hit from floor(f) + prefetch_from(T) on.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import pytest

from sim.lab.procs import Processes, address_block, free_port, python
from sim.lab.world import unbound_config
from sim.policy.resolver import ServeExpired, prefetch_from
from tests.conftest import require_tool

NAME = "www.example.com."


class _World:
    def __init__(self, resolver: tuple[str, int], control: tuple[str, int]) -> None:
        self.resolver, self.control = resolver, control

    def ask(self) -> tuple[str, int]:
        """(address, TTL) of the answer unbound gives now."""
        reply = dns.query.udp(dns.message.make_query(NAME, "A"), self.resolver[0], port=self.resolver[1], timeout=1)
        rrset = reply.answer[0]
        return str(rrset[0]), rrset.ttl

    def tell(self, request: dict) -> dict:
        with socket.create_connection(self.control, timeout=2) as s:
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            return json.loads(s.recv(65536).decode())

    def fetches(self) -> int:
        return len(self.tell({"op": "queries"})["queries"])


@contextmanager
def _unbound(tmp: Path, ttl: int, **options: object) -> Iterator[_World]:
    block = address_block()
    auth, ip = (f"{block}.2", free_port(f"{block}.2", socket.SOCK_DGRAM)), f"{block}.100"
    port = free_port(ip, socket.SOCK_DGRAM)
    control = ("127.0.0.1", free_port("127.0.0.1"))
    records = {NAME: {"type": "A", "values": ["192.0.2.1"], "ttl": ttl}}
    (tmp / "records.json").write_text(json.dumps({"service": NAME, "records": records, "unbound": []}))
    (tmp / "unbound.conf").write_text(unbound_config(tmp, "unbound", ip, port, auth, ["example.com"], **options))  # type: ignore[arg-type]
    with Processes(tmp) as procs:
        procs.start("authoritative", python("sim.lab.dnsserver", "authoritative", "--listen", f"{auth[0]}:{auth[1]}",
                                            "--control", f"{control[0]}:{control[1]}", "--records", str(tmp / "records.json")))
        procs.start("unbound", [require_tool("unbound"), "-d", "-c", str(tmp / "unbound.conf")], ready=None)
        deadline = time.monotonic() + 10
        while True:
            try:
                dns.query.udp(dns.message.make_query("ready.example.com.", "A"), ip, port=port, timeout=0.3)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield _World((ip, port), control)


def _at(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


@pytest.mark.real
@pytest.mark.timeout(60)
def test_unbound_prefetches_from_the_policys_point(tmp_path: Path) -> None:
    ttl = 20
    point = prefetch_from(float(ttl))  # 18 s: ttl - ttl // 10
    with _unbound(tmp_path, ttl, prefetch=True) as world:
        _at(time.time() // 1 + 1.1)  # a fetch early in a second: unbound's clock is whole seconds
        fetched = time.time() // 1
        world.ask()
        before = world.fetches()
        _at(fetched + point - 0.6)
        world.ask()  # a hit just before the point: no refresh
        time.sleep(0.2)
        assert world.fetches() == before
        assert world.ask()[1] <= ttl - point + 1
        _at(fetched + point + 0.4)
        world.ask()  # a hit after the point: answered from cache, refreshed behind it
        time.sleep(0.3)
        assert world.fetches() == before + 1
        assert world.ask()[1] >= ttl - 2  # the refreshed answer, before the old one expired


@pytest.mark.real
@pytest.mark.timeout(60)
@pytest.mark.parametrize("timeout_ms", [0, 1800])
def test_unbound_serves_expired_as_the_policy_says(tmp_path: Path, timeout_ms: int) -> None:
    ttl, reply = 4, 2
    served = ServeExpired(client_timeout=timeout_ms / 1000, reply_ttl=reply, ttl=60)
    with _unbound(tmp_path, ttl, serve_expired=(timeout_ms, reply, 60)) as world:
        first = time.time()
        assert world.ask()[0] == "192.0.2.1"
        world.tell({"op": "set", "name": NAME, "type": "A", "values": ["192.0.2.2"], "ttl": ttl})
        _at(first + ttl + 1.5)  # expired (unbound: by floor(first) + ttl), the authoritative answering
        address, left = world.ask()
        if served.immediate:
            # client timeout 0: the expired answer at once, with the reply TTL, refreshed behind it
            assert (address, left) == ("192.0.2.1", served.reply(ttl))
            time.sleep(0.3)
            assert world.ask()[0] == "192.0.2.2"
        else:
            # a positive timeout: unbound asks first, and the authoritative answers
            assert address == "192.0.2.2"
