"""sim.lab.dnsserver without sockets: the forwarder's answers from a primed cache."""

from __future__ import annotations

import asyncio
import math

import dns.message
import dns.name
import dns.rdatatype
import dns.rrset

from sim.lab.dnsserver import MAX_TTL, Forwarder
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
