"""The fast engine against the model on client restarts and idle socket reuse, and
what it refuses by name.

Restarts: a `forever` stub that restarts switches at its first request after
the first restart that follows the change (sim.fast.dns); a stub that never
outlives its resolver's answer is not changed by restarts. Sessions and a
stub grace period are not Poisson streams, which the fast engine is built on:
it names them, and the model runs them (tests/model/test_lifecycle.py).
"""

from __future__ import annotations

import pytest

from sim.fast import unsupported
from tests.fast.test_agreement import SMALL, assert_agree
from tests.model.scenarios import scenario

RESTARTS = {
    "forever stub, uniform restarts": {"clients.0.stub_cache": {"kind": "forever"},
                                       "clients.0.restart": {"every": {"uniform": ["30s", "3m"]}}},
    "forever stub, exponential restarts, TTL 300 s": {
        "clients.0.stub_cache": {"kind": "forever"}, "clients.0.restart": {"every": {"exp": "2m"}},
        "dns.service_ttl": "300s", "dns.balancer_ttl": "300s"},
    "no stub cache, restarts": {"clients.0.restart": {"every": {"exp": "1m"}}},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RESTARTS))
def test_fast_agrees_with_the_model_on_restarts(case: str) -> None:
    assert_agree(scenario(**{**SMALL, **RESTARTS[case]}), "cname_repoint")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["cname_repoint", "eip_remap"])
def test_fast_agrees_with_the_model_on_idle_socket_reuse(strategy: str) -> None:
    """A browser's idle socket kept 300 s (Chromium's used idle socket timeout,
    docs/references.md, "Browsers") behind a Chrome-like stub that floors at 60 s."""
    browser = {"clients.0.keepalive": "300s", "clients.0.rate": "0.1/s",
               "clients.0.stub_cache": {"kind": "floor", "min_ttl": "60s"}}
    assert_agree(scenario(**{**SMALL, **browser}), strategy)


def test_what_the_fast_engine_does_not_follow_is_named() -> None:
    sessions = {"clients.0": {"name": "c", "count": 10, "sessions": {"requests": 3, "think": "5s", "gap": "1m"}}}
    assert any("clients[0].sessions" in r for r in unsupported(scenario(**sessions)))
    assert any("clients[0].stub_grace" in r for r in unsupported(scenario(**{"clients.0.stub_grace": "60s"})))
    restart = {"clients.0.restart": {"every": {"exp": "7d"}}}
    assert any("clients[0].restart with keepalive" in r
               for r in unsupported(scenario(**restart, **{"clients.0.keepalive": "60s"})))
    assert any("clients[0].restart with a fixed stub" in r
               for r in unsupported(scenario(**restart, **{"clients.0.stub_cache": {"kind": "fixed", "ttl": "30s"}})))
    assert any("multi_a" in r and "clients[0].restart" in r
               for r in unsupported(scenario(**restart, **{"strategies": ["multi_a"]})))
    forever = {"clients.0.stub_cache": {"kind": "forever"}}
    assert not unsupported(scenario(**restart, **forever))
    assert not unsupported(scenario(**restart))
