"""Backends by hostname: resolved at start, re-resolved at their record's TTL (issue 22 item 8).

The DNS server is the lab's authoritative server, in process, on loopback;
the two addresses the name moves between are two loopback addresses.
"""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest

from sim.core.backend import start_backend
from sim.core.config import ConfigError, config_from_data
from sim.core.resolve import ResolveError
from sim.lab.dnsserver import Authoritative
from tests.core.helpers import balancer, get, request, run

NAME = "web.test."


async def _dns(records: dict[str, dict]) -> tuple[Authoritative, asyncio.DatagramTransport]:
    auth = Authoritative(records, NAME)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: auth, local_addr=("127.0.0.1", 0)
    )
    return auth, transport  # type: ignore[return-value]


def _config(dns_port: int, port: int) -> dict:
    return {
        "name": "t", "listen": "127.0.0.1:0", "admin": None,
        "health_check": {"enabled": False},
        "backends": [{"name": "web", "address": f"web.test:{port}"}],
        "resolver": {"nameserver": f"127.0.0.1:{dns_port}"},
    }  # fmt: skip


def test_hostname_backend_follows_its_record_at_the_ttl() -> None:
    async def main() -> None:
        a = await start_backend("127.0.0.1", 0, name="first")
        b = await start_backend("127.0.0.2", a.port, name="second")
        auth, dns = await _dns({NAME: {"type": "A", "values": ["127.0.0.1"], "ttl": 1}})
        out = io.StringIO()
        try:
            cfg = config_from_data(_config(dns.get_extra_info("sockname")[1], a.port))
            async with balancer(cfg) as lb:
                lb.events.stream = out
                port = lb.listen_port
                assert port is not None
                r, _ = await request(port, get(), check_closed=False)
                assert r is not None and r.header("X-Backend") == "first"
                auth.records[auth.service] = {"type": "A", "values": ["127.0.0.2"], "ttl": 1}
                moved_at = time.monotonic()

                async def served_by_second() -> bool:
                    r, _ = await request(port, get(), check_closed=False)
                    return r is not None and r.header("X-Backend") == "second"

                while not await served_by_second():
                    assert time.monotonic() - moved_at < 2.5, "the new address was not used"
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.5)
            queries = auth.queries
            gaps = [later - earlier for earlier, later in zip(queries, queries[1:], strict=False)]
            # asked again when the record expires, not sooner (and not much later)
            assert len(gaps) >= 2 and all(0.9 <= g <= 1.6 for g in gaps), gaps
            events = [json.loads(x) for x in out.getvalue().splitlines()]
            moved = [e for e in events if e["event"] == "backend_address"]
            assert moved and moved[0]["from"] == "127.0.0.1" and moved[0]["to"] == "127.0.0.2"
            assert moved[0]["backend"] == "web" and moved[0]["hostname"] == "web.test"
        finally:
            dns.close()
            for s in (a, b):
                assert s.server is not None
                s.server.close()

    run(main(), timeout=10)


def test_unresolvable_backend_refused_at_start() -> None:
    async def main() -> None:
        _, dns = await _dns({})
        try:
            cfg = config_from_data(_config(dns.get_extra_info("sockname")[1], 80))
            with pytest.raises(ResolveError, match="web: cannot resolve 'web.test'"):
                async with balancer(cfg):
                    pass
        finally:
            dns.close()

    run(main())


def test_backend_hostnames_validated() -> None:
    base = {"listen": "127.0.0.1:0"}
    ok = config_from_data({**base, "backends": [{"name": "w", "address": "api.example.com:443"}]})
    assert ok.backends[0].address.host == "api.example.com"
    for bad in ("exa_mple.com:80", "-x.com:80", "a..b:80"):
        with pytest.raises(ConfigError) as e:
            config_from_data({**base, "backends": [{"name": "w", "address": bad}]}, "lb.yaml")
        assert e.value.lines[0].startswith("lb.yaml: backends[0].address: ")
    with pytest.raises(ConfigError):  # listen addresses stay IP literals
        config_from_data({"listen": "example.com:80"})
