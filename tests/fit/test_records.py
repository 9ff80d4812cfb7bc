"""sim.fit.records: addresses with ports, IPv4 and IPv6, and DNS names."""

from __future__ import annotations

import pytest

from sim.fit.lines import Malformed
from sim.fit.records import check_address, dns_name, host_port


@pytest.mark.parametrize(("text", "host"), [
    ("192.0.2.1:443", "192.0.2.1"), ("[2001:db8::1]:443", "2001:db8::1"), ("2001:db8::1:443", "2001:db8::1"),
])
def test_host_port(text: str, host: str) -> None:
    assert host_port(text) == (host, "443")
    assert check_address(host) == host


@pytest.mark.parametrize("bad", ["192.0.2.1", "-", "host:abc"])
def test_bad_host_port(bad: str) -> None:
    with pytest.raises(Malformed):
        host_port(bad)


def test_bad_address() -> None:
    with pytest.raises(Malformed):
        check_address("999.1.1.1")


def test_dns_name() -> None:
    assert dns_name("WWW.Example.com.") == "www.example.com"
