"""sim.lab.dnsserver: the forwarder's answers from a primed cache (no sockets), and the
authoritative server's query log (a real process on loopback)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rrset

from sim.lab.dnsserver import MAX_TTL, Authoritative, Forwarder
from sim.lab.procs import free_port
from sim.policy.cache import make_cache_policy


class _Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: object) -> None:
        self.sent.append(data)


def _answer(policy: str, expires_in: float, scale: float = 5.0) -> dns.message.Message:
    forwarder = Forwarder(("127.0.0.1", 9), make_cache_policy(policy), scale, seed=1)
    transport = _Transport()
    forwarder.connection_made(transport)  # type: ignore[arg-type]
    name = dns.name.from_text("www.example.com.")
    rrset = dns.rrset.from_text_list(name, 1, "IN", "A", ["192.0.2.1"])
    forwarder.cache.put_until((name, dns.rdatatype.A), rrset, forwarder._now() + expires_in)
    asyncio.run(forwarder._answer(dns.message.make_query(name, "A").to_wire(), ("127.0.0.1", 1)))
    return dns.message.from_wire(transport.sent[0])


def test_primed_record_is_answered_with_the_time_left_in_real_seconds() -> None:
    # 100 scenario seconds left at K = 5: 20 real seconds
    assert _answer("honor", 100.0).answer[0].ttl == 20


def test_a_forever_cache_answers_with_the_largest_ttl() -> None:
    # math.ceil(inf) raised here before, so a forever resolver never answered
    assert _answer("forever", math.inf).answer[0].ttl == MAX_TTL


def test_an_unbounds_floor_or_cap_is_in_the_ttl_it_gets_but_not_in_a_primed_one() -> None:
    """A floor or cap unbound (by its source address) gets max(TTL, floor) or min(TTL, cap),
    then the whole-second adjustment (unbound_ttl: TTL - 1 + frac, rounded); a query that
    primes a cache with the model's state gets the primed TTL as it is, so a floor's caches
    can start with less than the floor left (unbound's cache-min-ttl kept all of them the
    whole floor, and its cache-max-ttl put its whole second on top of the cap)."""
    name = "www.example.com."
    honour, floor, cap = "127.0.0.5", "127.0.0.6", "127.0.0.7"
    auth = Authoritative({name: {"type": "CNAME", "values": ["blue.elb.example.net."], "ttl": 8}}, name,
                         frozenset({honour, floor, cap}), bounds={floor: (16, MAX_TTL), cap: (0, 3)})
    transport = _Transport()
    auth.connection_made(transport)  # type: ignore[arg-type]

    def ttl(source: str) -> int:
        auth.datagram_received(dns.message.make_query(name, "A").to_wire(), (source, 5300))
        return dns.message.from_wire(transport.sent.pop()).answer[0].ttl

    assert ttl(honour) in (7, 8) and ttl(floor) in (15, 16) and ttl(cap) in (2, 3)
    auth.ttls = {dns.name.from_text(name): 5}  # the lab priming a cache: 5 s left
    assert ttl(floor) == ttl(cap) == ttl(honour) == 5


# BIND 9.11+ `queries` lines in a file channel with print-time, print-category and
# print-severity (docs/references.md, "BIND query log").
_BIND_QUERY = re.compile(
    r"^(?P<day>\d\d-[A-Z][a-z]{2}-\d{4}) (?P<time>\d\d:\d\d:\d\d\.\d{3}) queries: info: "
    r"client @0x[0-9a-f]+ (?P<client>[0-9a-f.:]+)#(?P<port>\d+) \((?P<name0>[^)]+)\): "
    r"query: (?P<name>\S+) (?P<cls>[A-Z]+) (?P<type>[A-Z0-9]+) (?P<flags>[+-][A-Z()0-9]*) \((?P<server>[0-9a-f.:]+)\)$")


def test_the_authoritative_server_logs_each_query_as_bind_does(tmp_path: Path) -> None:
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"service": "www.example.com.", "records": {
        "www.example.com.": {"type": "A", "values": ["192.0.2.1"], "ttl": 60}}}))
    log = tmp_path / "query.log"
    port = free_port("127.0.0.1", 2)  # UDP
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.lab.dnsserver", "authoritative", "--listen", f"127.0.0.1:{port}",
         "--control", f"127.0.0.1:{free_port('127.0.0.1')}", "--records", str(records), "--query-log", str(log)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        plain = dns.message.make_query("www.example.com.", "A", use_edns=False)
        edns = dns.message.make_query("www.example.com.", "AAAA", use_edns=0, want_dnssec=True)
        edns.flags &= ~dns.flags.RD
        for query in (plain, edns):
            dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    first, second = (_BIND_QUERY.match(line) for line in lines)
    assert first and second, lines
    assert (first["name"], first["cls"], first["type"], first["flags"]) == ("www.example.com", "IN", "A", "+")
    assert (second["type"], second["flags"]) == ("AAAA", "-E(0)D")
    assert first["client"] == "127.0.0.1" and first["server"] == "127.0.0.1"
    assert first["name0"] == "www.example.com"


class _Cache(asyncio.DatagramProtocol):
    """A farm cache that answers every A query with its own index (192.0.2.<index>)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.answer.append(dns.rrset.from_text_list(query.question[0].name, 5, "IN", "A",
                                                        [f"192.0.2.{self.index}"]))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


def test_the_farm_front_picks_each_query_cache_as_the_farm_rule(tmp_path: Path) -> None:
    """The front (a real process on loopback) against sim.policy.resolver.Farm: two clients,
    told apart by their source address, each with its own cache; the caches that answer are,
    query by query, the Farm's picks from the same seed, and each client's share at its own
    cache is sticky + (1 - sticky) / caches within three binomial standard errors."""
    import dns.asyncquery
    import numpy as np

    from sim.lab.procs import address_block
    from sim.policy.resolver import Farm

    caches, sticky, seed, queries = 3, 0.6, 12345, 300
    block = address_block()
    ports = [free_port(f"{block}.{10 + i}", 2) for i in range(caches)]
    front_port = free_port(f"{block}.1", 2)
    homes = {f"{block}.100": 2, f"{block}.101": 1}
    homes_file = tmp_path / "homes.json"
    homes_file.write_text(json.dumps(homes))
    # the order of the queries: alternating clients, one at a time
    order = [f"{block}.{100 + i % 2}" for i in range(queries)]

    async def exercise() -> list[int]:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_datagram_endpoint(lambda i=i: _Cache(i), local_addr=(f"{block}.{10 + i}", p))
                   for i, p in enumerate(ports)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sim.lab.dnsserver", "front", "--listen", f"{block}.1:{front_port}",
            "--upstreams", ",".join(f"{block}.{10 + i}:{p}" for i, p in enumerate(ports)),
            "--sticky", str(sticky), "--homes", str(homes_file), "--seed", str(seed),
            stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None and b"ready" in await asyncio.wait_for(proc.stdout.readline(), 15)
            got = []
            for source in order:
                query = dns.message.make_query("www.example.com.", "A")
                response = await dns.asyncquery.udp(query, f"{block}.1", port=front_port, timeout=5, source=source)
                got.append(int(response.answer[0][0].address.rsplit(".", 1)[1]))
            return got
        finally:
            proc.terminate()
            await proc.wait()
            for transport, _ in servers:
                transport.close()

    got = asyncio.run(exercise())
    farm, rng = Farm(caches, sticky), np.random.default_rng(seed)
    assert got == [farm.pick(homes[source], rng) for source in order]
    share = sticky + (1 - sticky) / caches
    for source, home in homes.items():
        mine = [g for g, s in zip(got, order, strict=True) if s == source]
        se = math.sqrt(share * (1 - share) / len(mine))
        assert abs(np.mean([g == home for g in mine]) - share) <= 3 * se, (source, np.mean([g == home for g in mine]))


class _SlowUpstream(asyncio.DatagramProtocol):
    """An authoritative server that answers every query after `delay` seconds, counting them."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.answer.append(dns.rrset.from_text_list(query.question[0].name, 4, "IN", "A", ["192.0.2.7"]))
        assert self.transport is not None
        asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, response.to_wire(), addr)


def test_misses_while_a_fetch_is_under_way_wait_for_it_and_draw_one_lifetime() -> None:
    """Five queries for a name the cache lacks, sent together to a forwarder whose upstream
    takes 0.2 s: one fetch (as unbound joins a query to the one in flight), five answers,
    and one lifetime drawn, the first of the cache's stream, as the model draws it for
    that one fetch (under load the lab's extra fetches had shifted every later draw)."""
    import numpy as np

    from sim.lab.procs import address_block

    block = address_block()
    from sim.policy.sampling import Exponential

    policy = make_cache_policy("extend", extra=Exponential(30.0))
    scale, seed = 5.0, 7

    async def exercise() -> tuple[int, list[dns.message.Message], Forwarder, float]:
        loop = asyncio.get_running_loop()
        upstream = _SlowUpstream(0.2)
        up, _ = await loop.create_datagram_endpoint(lambda: upstream, local_addr=(f"{block}.2", 0))
        forwarder = Forwarder(up.get_extra_info("sockname"), policy, scale, seed, source=f"{block}.3")
        fw, _ = await loop.create_datagram_endpoint(lambda: forwarder, local_addr=(f"{block}.3", 0))
        try:
            asked = forwarder._now()
            query = dns.message.make_query("www.example.com.", "A")
            answers = await asyncio.gather(*(
                dns.asyncquery.udp(query, f"{block}.3", port=fw.get_extra_info("sockname")[1], timeout=5)
                for _ in range(5)))
            return upstream.queries, answers, forwarder, asked
        finally:
            fw.close()
            up.close()

    import dns.asyncquery

    queries, answers, forwarder, asked = asyncio.run(exercise())
    assert queries == 1
    assert all(a.answer and a.answer[0][0].address == "192.0.2.7" for a in answers)
    lifetime = policy.lifetime(4 * scale, np.random.default_rng(seed))
    expires = forwarder.cache.expires_at((dns.name.from_text("www.example.com."), dns.rdatatype.A))
    assert expires is not None and abs(expires - (asked + lifetime)) < 0.05 * scale, (expires - asked, lifetime)
    # and nothing more was drawn: the next draw of the stream is the cache's next one
    rng = np.random.default_rng(seed)
    policy.lifetime(4 * scale, rng)
    assert forwarder.rng.random() == rng.random()
