"""Our DNS servers: the zone's authoritative server, a caching forwarder for `extend`,
and the front of a resolver farm.

Both speak the wire format through dnspython over UDP on loopback.

The authoritative server holds a few records (name -> type, values, TTL),
answers with AA set, counts the queries for the service name (with their
times), and takes changes on a small control port: one JSON object per TCP
connection, e.g. {"op": "set", "name": "www.example.com.", "type": "CNAME",
"values": ["green.elb.example.net."], "ttl": 60, "delay": 6.0} (applied
after `delay` seconds: the provider's propagation), {"op": "down", "value":
true}, {"op": "queries"} (the query times, unix seconds), {"op": "ttl",
"ttls": {"www.example.com.": 37}} (answer these names with these TTLs until
the next "ttl" op: how the lab primes an unbound cache with the model's
state, from the model's trace). An unbound of a floor or cap group (the
records file's "bounds": source address -> [floor, cap], real seconds) is
answered with the TTL its policy makes of the record's, before the
whole-second adjustment (`unbound_ttl`); a primed TTL is answered as it is.

The forwarder is a caching resolver of its own (the `extend` policy): it asks
the authoritative server, follows a CNAME, and keeps each record for the
policy's lifetime in scenario seconds, answering with the time left. Its
control port takes {"op": "prime", "records": [{"name", "type", "values",
"expires"}]}: records cached until `expires` (unix seconds) whatever the
policy, the model's state at time 0 (from its trace).

The front (`front`) is a resolver farm's one address: it holds no cache and
sends each query on to one of the farm's caches (real unbound processes),
chosen as sim.policy.resolver.Farm chooses: the client's own cache (told by
its source address; `--homes` maps addresses to caches) with probability
`sticky`, else one drawn uniformly, one draw per query from its seed (the
model's resolver seed, from its trace, so the picks are the model's in query
order).

With `--query-log FILE` the authoritative server appends every query to FILE
as BIND 9 logs its `queries` category (`bind_query_line`), so a lab run kept
with `--keep` holds a DNS query log that `failover-sim fit` reads. Queries
answered while a "ttl" op is in force (the lab priming a cache) are not
logged: a real server would have answered the query that filled that cache
with the full TTL, before the log began. Each forwarder asks from its own
address (`--source`), as each resolver does, so the log tells them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import TextIO

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import numpy as np

MAX_TTL = 2**31 - 1  # RFC 2181 8: a forever cache answers with the largest TTL


def unbound_ttl(ttl: int, now: float) -> int:
    """The TTL to give unbound so it keeps a record `ttl` seconds from `now`, on average.

    unbound keeps a record until the end of the second in which
    floor(received) + TTL falls, TTL + 1 - frac(received) seconds (measured:
    tests/lab/test_unbound_ttl.py). At K = 5 that half second on average is
    2.5 scenario seconds, a time-scaling artefact (at K = 1 it is half a
    second on a 300 s TTL); answering TTL - 1 + frac, rounded, leaves an
    error within half a second either way and none on average.
    """
    if ttl <= 1:
        return ttl
    return max(1, round(ttl - 1 + now % 1.0))


def bind_query_line(query: dns.message.Message, client: tuple, server: tuple, when: float, handle: int) -> str:
    """One query as BIND 9's `queries` category logs it to a file channel with
    print-time, print-category and print-severity (docs/references.md, "BIND query log").

    Layout: time, category, severity, the client object, the client's address
    and port, the name in parentheses, then `query:` name, class, type, the
    flags (+ recursion desired or -, E(version) for EDNS, D for DO, C for CD;
    no T: this server answers UDP only) and the address the query was sent to.
    """
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True) or "."
    flags = "+" if query.flags & dns.flags.RD else "-"
    if query.edns >= 0:
        flags += f"E({query.edns})"
    if query.ednsflags & dns.flags.DO:
        flags += "D"
    if query.flags & dns.flags.CD:
        flags += "C"
    stamp = time.strftime("%d-%b-%Y %H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1000):03d}"
    return (f"{stamp} queries: info: client @0x{handle:012x} {client[0]}#{client[1]} ({name}): "
            f"query: {name} {dns.rdataclass.to_text(question.rdclass)} {dns.rdatatype.to_text(question.rdtype)} "
            f"{flags} ({server[0]})\n")


class Authoritative(asyncio.DatagramProtocol):
    def __init__(self, records: dict[str, dict], service: str, unbound: frozenset[str] = frozenset(),
                 query_log: TextIO | None = None, bounds: dict[str, tuple[int, int]] | None = None) -> None:
        self.records = {dns.name.from_text(k): v for k, v in records.items()}
        self.query_log = query_log  # BIND's query-log format, one line per query (for `failover-sim fit`)
        self.handles = 0
        self.service = dns.name.from_text(service)
        self.unbound = unbound  # source addresses of unbound resolvers: their TTLs are adjusted (unbound_ttl)
        # (floor, cap) by an unbound's source address: a floor's or cap's policy, applied to the
        # TTL before the adjustment (sim.lab.world._World._unbound_bounds says why here)
        self.bounds = bounds or {}
        self.down = False
        self.ttls: dict[dns.name.Name, int] = {}
        self.queries: list[float] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.down:
            return  # the provider's servers do not answer: resolvers time out
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        if not query.question:
            return
        if self.query_log is not None and not self.ttls:
            assert self.transport is not None
            self.handles += 1
            server = self.transport.get_extra_info("sockname")
            self.query_log.write(bind_query_line(query, addr, server, time.time(), self.handles))
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        if question.name == self.service:
            self.queries.append(time.time())
        record = self.records.get(question.name)
        if record is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif record["type"] == "CNAME" or dns.rdatatype.from_text(record["type"]) == question.rdtype:
            ttl = self.ttls.get(question.name, -1)
            if ttl < 0:
                ttl = int(record["ttl"])
                if addr[0] in self.unbound:
                    floor, cap = self.bounds.get(addr[0], (0, MAX_TTL))
                    ttl = unbound_ttl(min(max(ttl, floor), cap), time.time())
            response.answer.append(dns.rrset.from_text_list(question.name, ttl, "IN", record["type"], record["values"]))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads((await reader.read(65536)).decode() or "{}")
        op = request.get("op")
        if op == "set":
            async def apply() -> None:
                await asyncio.sleep(float(request.get("delay", 0.0)))
                self.records[dns.name.from_text(request["name"])] = {
                    "type": request["type"], "values": request["values"], "ttl": request["ttl"],
                }
            asyncio.get_running_loop().create_task(apply())
            reply: object = {"ok": True}
        elif op == "down":
            self.down = bool(request["value"])
            reply = {"ok": True}
        elif op == "ttl":
            self.ttls = {dns.name.from_text(k): int(v) for k, v in request["ttls"].items()}
            reply = {"ok": True}
        elif op == "queries":
            reply = {"queries": self.queries}
        else:
            reply = {"error": f"unknown op {op!r}"}
        writer.write(json.dumps(reply).encode())
        await writer.drain()
        writer.close()


class Forwarder(asyncio.DatagramProtocol):
    """A caching resolver that keeps answers TTL + extra (scenario seconds, time divided by K)."""

    def __init__(self, upstream: tuple[str, int], policy, scale: float, seed: int,  # type: ignore[no-untyped-def]
                 source: str = "127.0.0.1") -> None:
        from sim.policy.cache import Cache

        self.upstream = upstream
        self.source = source
        self.cache = Cache(policy)
        self.scale = scale
        self.rng = np.random.default_rng(seed)
        self.transport: asyncio.DatagramTransport | None = None
        # A name's fetch under way: later misses wait for it, as a real resolver's do
        # (unbound joins a query to the one already in its mesh), and the cache draws one
        # lifetime per fetch, the model's order (sim.model.trace): a second fetch under
        # load drew an extra and shifted every later lifetime of this cache.
        self.fetching: dict[tuple, asyncio.Future] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        asyncio.get_running_loop().create_task(self._answer(data, addr))

    def _now(self) -> float:
        return time.time() * self.scale  # scenario seconds (an arbitrary origin)

    async def control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads((await reader.read(1 << 20)).decode() or "{}")
        if request.get("op") == "prime":
            for r in request["records"]:
                name = dns.name.from_text(r["name"])
                rrset = dns.rrset.from_text_list(name, 1, "IN", r["type"], r["values"])
                expires = math.inf if r["expires"] is None else float(r["expires"]) * self.scale
                self.cache.put_until((name, dns.rdatatype.A), rrset, expires)
            reply: dict = {"ok": True}
        else:
            reply = {"error": f"unknown op {request.get('op')!r}"}
        writer.write(json.dumps(reply).encode())
        await writer.drain()
        writer.close()

    async def _lookup(self, name: dns.name.Name, rdtype: int) -> list[tuple[dns.rrset.RRset, float]]:
        """RRsets answering (name, rdtype), following a CNAME, each with its expiry (scenario s)."""
        import dns.asyncquery

        out = []
        for _ in range(8):
            now = self._now()
            key = (name, rdtype)
            cached = self.cache.lookup(key, now)
            if cached is None:
                cached = await self._fetch(key)
                if cached is None:
                    return out
            expiry = self.cache.expires_at(key) or now
            out.append((cached, expiry))
            if cached.rdtype == dns.rdatatype.CNAME:
                name = cached[0].target
                continue
            return out
        return out

    async def _fetch(self, key: tuple) -> dns.rrset.RRset | None:
        """The upstream's answer for `key`, stored (one fetch at a time per name)."""
        import dns.asyncquery

        if key in self.fetching:
            return await asyncio.shield(self.fetching[key])
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.fetching[key] = done
        asked = self._now()  # kept from the moment asked, as the model's instant fetch
        try:
            query = dns.message.make_query(*key)
            # from an address no unbound uses (the lab gives its own): the authoritative
            # server adjusts TTLs for unbound's whole seconds only (unbound_ttl), not for us
            response = await dns.asyncquery.udp(query, self.upstream[0], port=self.upstream[1], timeout=2.0,
                                                source=self.source)
            rrset = response.answer[0] if response.answer else None
            if rrset is not None:
                self.cache.store(key, rrset, rrset.ttl * self.scale, asked, self.rng)
            done.set_result(rrset)
            return rrset
        except Exception as exc:
            done.set_exception(exc)
            done.exception()  # retrieved: nobody may be waiting
            raise
        except BaseException:
            done.cancel()
            raise
        finally:
            del self.fetching[key]

    async def _answer(self, data: bytes, addr: tuple) -> None:
        try:
            query = dns.message.from_wire(data)
            question = query.question[0]
            chain = await self._lookup(question.name, question.rdtype)
        except Exception:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        now = self._now()
        for rrset, expiry in chain:
            left = max(1, min(MAX_TTL, math.ceil(min(expiry - now, MAX_TTL * self.scale) / self.scale)))
            copy = dns.rrset.from_rdata_list(rrset.name, left, list(rrset))
            response.answer.append(copy)
        if not chain:
            response.set_rcode(dns.rcode.SERVFAIL)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


class Front(asyncio.DatagramProtocol):
    """A farm's address: each query relayed to the cache Farm.pick names, its answer relayed back."""

    def __init__(self, upstreams: list[tuple[str, int]], sticky: float, homes: dict[str, int], seed: int) -> None:
        from sim.policy.resolver import Farm

        self.upstreams = upstreams
        self.farm = Farm(len(upstreams), sticky)
        self.homes = homes
        self.rng = np.random.default_rng(seed)
        self.picks: list[int] = []  # every query's cache, in order of arrival
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pick(self, source: str) -> int:
        """The cache for a query from `source` (a client the lab did not name has cache 0 for its own)."""
        cache = self.farm.pick(self.homes.get(source, 0), self.rng)
        self.picks.append(cache)
        return cache

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        # picked on arrival, so the draws follow the queries' order
        upstream = self.upstreams[self.pick(addr[0])]
        asyncio.get_running_loop().create_task(self._relay(data, addr, upstream))

    async def _relay(self, data: bytes, addr: tuple, upstream: tuple[str, int]) -> None:
        import dns.asyncquery

        try:
            query = dns.message.from_wire(data)
            response = await dns.asyncquery.udp(query, upstream[0], port=upstream[1], timeout=2.0)
        except Exception:
            return  # the client times out, as behind a farm whose cache does not answer
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    host, port = args.listen.rsplit(":", 1)
    if args.role == "authoritative":
        spec = json.loads(Path(args.records).read_text())
        # Line-buffered: the log is whole up to the last query whenever the lab stops the server.
        log = open(args.query_log, "a", buffering=1) if args.query_log else None  # noqa: SIM115
        bounds = {ip: (int(lo), int(hi)) for ip, (lo, hi) in spec.get("bounds", {}).items()}
        proto = Authoritative(spec["records"], spec["service"], frozenset(spec.get("unbound", ())), log, bounds)
        await loop.create_datagram_endpoint(lambda: proto, local_addr=(host, int(port)))
        chost, cport = args.control.rsplit(":", 1)
        await asyncio.start_server(proto.control, chost, int(cport))
    elif args.role == "front":
        upstreams = [(h, int(p)) for h, p in (u.rsplit(":", 1) for u in args.upstreams.split(","))]
        homes = json.loads(Path(args.homes).read_text()) if args.homes else {}
        front = Front(upstreams, args.sticky, homes, args.seed)
        await loop.create_datagram_endpoint(lambda: front, local_addr=(host, int(port)))
    else:
        from sim.scenario.build import cache_policy
        from sim.scenario.loader import load_data

        policy_doc = json.loads(args.policy)
        policy = cache_policy(load_data(_policy_holder(policy_doc), "forwarder").dns.resolvers[0].policy)
        uhost, uport = args.upstream.rsplit(":", 1)
        forwarder = Forwarder((uhost, int(uport)), policy, args.scale, args.seed, args.source)
        await loop.create_datagram_endpoint(lambda: forwarder, local_addr=(host, int(port)))
        if args.control:
            chost, cport = args.control.rsplit(":", 1)
            await asyncio.start_server(forwarder.control, chost, int(cport))
    print(json.dumps({"event": "ready", "listen": args.listen}), flush=True)
    await asyncio.Event().wait()


def _policy_holder(policy: dict) -> dict:
    # Parse the policy the way a scenario does (units, distributions): a minimal scenario around it.
    return {
        "version": 1, "name": "forwarder", "dns": {"zone": "example.com", "resolvers": [
            {"name": "g", "count": 1, "share": 1.0, "policy": policy}]},
        "clients": [{"name": "c", "count": 1, "rate": "1/s"}],
        "balancers": [{"name": "a", "role": "active"}, {"name": "b", "role": "standby"}],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.lab.dnsserver")
    p.add_argument("role", choices=["authoritative", "forwarder", "front"])
    p.add_argument("--listen", required=True)
    p.add_argument("--control", help="host:port of the control API")
    p.add_argument("--records", help="authoritative: JSON file {service, records}")
    p.add_argument("--query-log", help="authoritative: append each query to this file in BIND's query-log format")
    p.add_argument("--upstream", help="forwarder: the authoritative server host:port")
    p.add_argument("--policy", help="forwarder: the cache policy as scenario JSON")
    p.add_argument("--scale", type=float, default=1.0, help="forwarder: K, scenario seconds per real second")
    p.add_argument("--seed", type=int, default=0,
                   help="forwarder: seed of its cache lifetimes; front: of its picks (the model's, from its trace)")
    p.add_argument("--upstreams", help="front: the farm's caches, host:port,host:port,...")
    p.add_argument("--sticky", type=float, default=0.0, help="front: share of queries sent to the client's own cache")
    p.add_argument("--homes", help="front: JSON file {client address: its own cache's index}")
    p.add_argument("--source", default="127.0.0.1",
                   help="forwarder: the address it asks the authoritative server from (its own; no unbound's)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
