"""How long real unbound keeps a record, and the TTL adjustment the lab makes for it.

unbound keeps expiries in whole seconds: a record received at time f with
TTL T is served until the end of the second floor(f) + T, that is for
T + 1 - frac(f) seconds, half a second longer than T on average. At K = 5
that is 2.5 scenario seconds per cache cycle, so the lab's authoritative
server answers unbound with sim.lab.dnsserver.unbound_ttl (docs/lab.md).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from sim.lab.dnsserver import unbound_ttl
from sim.lab.procs import Processes, address_block, free_port, python
from sim.lab.world import unbound_config
from tests.conftest import require_tool

TTL = 2


def test_unbound_ttl_is_unbiased() -> None:
    # the lifetime unbound gives an adjusted TTL, over every phase of the second
    lives = [unbound_ttl(TTL, f) + 1 - f for f in [i / 1000 for i in range(1000)]]
    assert abs(sum(lives) / len(lives) - TTL) < 0.01 and max(abs(x - TTL) for x in lives) <= 0.5 + 1e-9
    assert unbound_ttl(1, 0.2) == 1 and unbound_ttl(0, 0.7) == 0


def _lifetimes(tmp: Path, adjust: bool, trials: int) -> list[tuple[float, float]]:
    """(phase of the fetch in its second, seconds until unbound fetched again), per trial.

    Each trial asks for a name of its own, first at its own phase of the second,
    then every 10 ms: the answer's TTL, counting down to 0, jumps back up when
    unbound has fetched the record again.
    """
    block = address_block()
    auth, resolver = (f"{block}.2", free_port(f"{block}.2", socket.SOCK_DGRAM)), f"{block}.100"
    port = free_port(resolver, socket.SOCK_DGRAM)
    names = [f"t{i}.example.com." for i in range(trials)]
    records = {n: {"type": "A", "values": ["192.0.2.1"], "ttl": TTL} for n in names}
    (tmp / "records.json").write_text(json.dumps({"service": names[0], "records": records,
                                                  "unbound": [resolver] if adjust else []}))
    (tmp / "unbound.conf").write_text(unbound_config(tmp, "unbound", resolver, port, auth, ["example.com"]))

    def ttl(name: str) -> int:
        return dns.query.udp(dns.message.make_query(name, "A"), resolver, port=port, timeout=1).answer[0].ttl

    out = []
    with Processes(tmp) as procs:
        procs.start("authoritative", python("sim.lab.dnsserver", "authoritative", "--listen", f"{auth[0]}:{auth[1]}",
                                            "--control", f"127.0.0.1:{free_port('127.0.0.1')}",
                                            "--records", str(tmp / "records.json")))
        procs.start("unbound", [require_tool("unbound"), "-d", "-c", str(tmp / "unbound.conf")], ready=None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                dns.query.udp(dns.message.make_query("ready.example.com.", "A"), resolver, port=port, timeout=0.3)
                break
            except Exception:
                time.sleep(0.1)
        # first asks spread over one second, then every name every 10 ms
        start = time.time() // 1 + 1
        fetched, last = {}, {}
        for i, name in enumerate(names):
            time.sleep(max(0.0, start + 0.05 + 0.9 * i / trials - time.time()))
            fetched[name], last[name] = time.time(), ttl(name)
        while len(out) < trials and time.time() - start < TTL + 4:
            time.sleep(0.01)
            for name in names:
                if name not in last:
                    continue
                now, left = time.time(), ttl(name)
                if left > last.pop(name):
                    out.append((fetched[name] % 1.0, now - fetched[name]))
                else:
                    last[name] = left
    assert len(out) == trials, out
    return out


@pytest.mark.real
@pytest.mark.timeout(90)
def test_unbound_keeps_a_record_to_the_end_of_its_last_second(tmp_path: Path) -> None:
    for phase, life in _lifetimes(tmp_path, adjust=False, trials=6):
        assert abs(life - (TTL + 1 - phase)) < 0.08, (phase, life)


@pytest.mark.real
@pytest.mark.timeout(90)
def test_adjusted_ttl_makes_unbound_keep_it_for_the_ttl(tmp_path: Path) -> None:
    lives = [life for _, life in _lifetimes(tmp_path, adjust=True, trials=8)]
    assert all(abs(life - TTL) <= 0.55 for life in lives), lives
    assert abs(sum(lives) / len(lives) - TTL) <= 0.25, lives  # unadjusted: TTL + 0.5 on average
