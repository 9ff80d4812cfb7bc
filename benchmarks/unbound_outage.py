"""What one real unbound answers while our authoritative server is silent, and after
(docs/lab.md, "Our DNS servers down"): the lab's authoritative server (sim.lab.dnsserver)
and one unbound configured as the lab configures it, the service a CNAME to a balancer's
name, both with TTL `ttl`; the server silent for `down` queries one second apart, then
answering again with the CNAME moved to another balancer, asked `after` more times.
Prints, per query, the seconds since the start, the rcode and answer, and how long the
answer took (Timeout: no answer within 3 s).

    PYTHONPATH=. python benchmarks/unbound_outage.py 3 6 6    # a long outage: SERVFAIL at once
    PYTHONPATH=. python benchmarks/unbound_outage.py 3 4 14   # a short one: back at once

Measured 2026-12-03 with unbound 1.17.1 (TTL 3 s): answers from cache until the record
expired, then timeouts, then from about 15 s without an answer SERVFAIL at once, and still
SERVFAIL 2.5 s after the server answered again; after a 4 s outage the first query was
answered with the new record in 0.38 s.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query

from sim.lab.procs import address_block, free_port
from sim.lab.world import unbound_config


def main(ttl: int, down: int, after: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="unbound-outage-"))
    block = address_block()
    ip, auth_ip = f"{block}.1", f"{block}.2"
    auth_port, control, port = free_port(auth_ip, 2), free_port("127.0.0.1"), free_port(ip, 2)
    records = {"service": "www.example.com.", "unbound": [ip], "records": {
        "www.example.com.": {"type": "CNAME", "values": ["blue.elb.example.net."], "ttl": ttl},
        "blue.elb.example.net.": {"type": "A", "values": ["192.0.2.11"], "ttl": ttl},
        "green.elb.example.net.": {"type": "A", "values": ["192.0.2.12"], "ttl": ttl}}}
    (work / "records.json").write_text(json.dumps(records))
    auth = subprocess.Popen([sys.executable, "-m", "sim.lab.dnsserver", "authoritative", "--listen",
                             f"{auth_ip}:{auth_port}", "--control", f"127.0.0.1:{control}", "--records",
                             str(work / "records.json")], stdout=subprocess.PIPE, text=True)
    assert auth.stdout is not None
    auth.stdout.readline()  # ready
    (work / "u.conf").write_text(unbound_config(work, "u", ip, port, (auth_ip, auth_port),
                                                ["example.com", "elb.example.net"]))
    unbound = subprocess.Popen([shutil.which("unbound") or "/usr/sbin/unbound", "-d", "-c", str(work / "u.conf")],
                               stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    start = time.time()

    def tell(request: dict) -> None:
        with socket.create_connection(("127.0.0.1", control)) as s:
            s.sendall(json.dumps(request).encode())
            s.shutdown(socket.SHUT_WR)
            s.recv(65536)

    def ask(phase: str) -> None:
        asked = time.time()
        try:
            r = dns.query.udp(dns.message.make_query("www.example.com.", "A"), ip, port=port, timeout=3)
            answer = [(str(x.name), x.ttl, [str(i) for i in x]) for x in r.answer]
            print(f"{asked - start:6.2f} {phase}: rcode {r.rcode()} in {time.time() - asked:.2f} s {answer}", flush=True)
        except dns.exception.Timeout:
            print(f"{asked - start:6.2f} {phase}: Timeout after {time.time() - asked:.2f} s", flush=True)

    try:
        ask("before")
        tell({"op": "down", "value": True})
        for _ in range(down):
            time.sleep(1.0)
            ask("silent")
        tell({"op": "set", "name": "www.example.com.", "type": "CNAME", "values": ["green.elb.example.net."],
              "ttl": ttl})
        tell({"op": "down", "value": False})
        for _ in range(after):
            ask("answering")
            time.sleep(1.0)
    finally:
        unbound.terminate()
        auth.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
