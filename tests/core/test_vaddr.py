"""Address mode of the takeover: two `serve` processes in their own network namespaces
on a bridge, the service address moved with `ip addr` and gratuitous ARP (as root).

A client in a third namespace requests all along; the active is stopped (SIGSTOP)
for 8 s: the standby must take the address within Master_Down_Interval, and the
stopped node, once resumed, must give it up within one heartbeat interval.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sim.core.config import ConfigError, config_from_data

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 0.5
NET = "10.231.77"  # inside private namespaces: no clash with the host's networks
VIP = f"{NET}.100"
STOP_FOR = 8.0


def _need_root() -> None:
    """Skip with the reason (a failure under CI=true, where we run as root)."""
    problem = None
    if os.geteuid() != 0:
        problem = "address mode needs root (ip netns, ip addr, raw ARP sockets)"
    elif subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        problem = "`ip netns` does not work here (iproute2 missing, or no CAP_SYS_ADMIN)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: a real-component test cannot skip: {problem}")
    pytest.skip(problem)


def _ip(*args: str) -> str:
    p = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout


@contextlib.contextmanager
def _segment() -> Iterator[dict[str, str]]:
    """Namespaces a, b (balancers) and c (client) on a bridge in namespace sw; removed
    on the way out, whatever happened."""
    tag = f"fs{os.getpid()}"
    ns = {k: f"{tag}{k}" for k in ("sw", "a", "b", "c")}
    try:
        for name in ns.values():
            _ip("netns", "add", name)
        _ip("-n", ns["sw"], "link", "add", "br0", "type", "bridge")
        _ip("-n", ns["sw"], "link", "set", "br0", "up")
        for i, node in enumerate(("a", "b", "c"), start=1):
            _ip("-n", ns["sw"], "link", "add", f"v{node}", "type", "veth", "peer", "name", "eth0", "netns", ns[node])
            _ip("-n", ns["sw"], "link", "set", f"v{node}", "master", "br0", "up")
            _ip("-n", ns[node], "addr", "add", f"{NET}.{i}/24", "dev", "eth0")
            _ip("-n", ns[node], "link", "set", "eth0", "up")
            _ip("-n", ns[node], "link", "set", "lo", "up")
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def _holders(ns: dict[str, str]) -> list[str]:
    return [n for n in ("a", "b") if f" {VIP}/" in _ip("-n", ns[n], "-4", "-o", "addr", "show", "dev", "eth0")]


def _config(tmp: Path, node: str, role: str, priority: int, key: Path, **extra: Any) -> Path:
    """lb-`node`'s config; `extra`: top-level keys to set, and `takeover` keys to add."""
    me, peer = (1, 2) if node == "a" else (2, 1)
    data: dict[str, Any] = {
        "name": f"lb-{node}",
        "listen": f"{VIP}:8080",
        "backends": [{"name": f"web-{node}", "address": "127.0.0.1:9001"}],
        "health_check": {"enabled": False},
        "admin": None,
        "takeover": {
            "mode": "address",
            "interface": "eth0",
            "prefix": 24,
            "role": role,
            "heartbeat_listen": f"{NET}.{me}:7101",
            "peer": f"{NET}.{peer}:7101",
            "interval": f"{int(INTERVAL * 1000)}ms",
            "priority": priority,
            "key_file": str(key),
        },
    }
    data["takeover"].update(extra.pop("takeover", {}))
    data.update(extra)
    path = tmp / f"lb-{node}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


_CLIENT = """
import json, socket, sys, time
end = time.time() + float(sys.argv[1])
while time.time() < end:
    t = time.time()
    by = None
    try:
        with socket.create_connection((sys.argv[2], 8080), timeout=0.25) as s:
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: vip\\r\\nConnection: close\\r\\n\\r\\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            by = [l.split(b":", 1)[1].strip().decode() for l in data.split(b"\\r\\n") if l.lower().startswith(b"x-backend:")][0]
    except OSError:
        pass
    print(json.dumps({"t": t, "by": by}), flush=True)
    time.sleep(max(0.0, t + 0.05 - time.time()))
"""


def _netns_exec(ns: str, *argv: str, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(out, "wb") as f:
        # ip netns exec execs the command: the Popen's pid is the command's
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=f, stderr=subprocess.STDOUT, env=env)


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path, timeout: float = 15.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while not ready.exists():
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        assert time.monotonic() < end, "serve not ready in time"
        time.sleep(0.05)
    return json.loads(ready.read_text())


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _key(tmp: Path) -> Path:
    key = tmp / "takeover.key"
    key.write_bytes(os.urandom(32).hex().encode())
    key.chmod(0o600)
    return key


def _start_pair(
    tmp: Path, ns: dict[str, str], key: Path, procs: list[subprocess.Popen[bytes]], **b_extra: Any
) -> None:
    """A backend in each balancer's namespace, then lb-a (active) and lb-b (standby;
    `b_extra`: its further settings, _config)."""
    py = sys.executable
    for node in ("a", "b"):
        procs.append(_netns_exec(ns[node], py, "-m", "sim.core.backend", "--port", "9001",
                                 "--name", f"web-{node}", "--size", "16", out=tmp / f"web-{node}.out"))  # fmt: skip
    for node, role, prio in (("a", "active", 200), ("b", "standby", 100)):
        ready = tmp / f"{node}.ready"
        ready.unlink(missing_ok=True)
        extra = b_extra if node == "b" else {}
        p = _netns_exec(ns[node], py, "-m", "sim.core.cli", "serve", str(_config(tmp, node, role, prio, key, **extra)),
                        "--ready-file", str(ready), out=tmp / f"lb-{node}.err")  # fmt: skip
        procs.append(p)
        assert _wait_ready(p, ready)["state"] == role


def _client_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_address_mode_config() -> None:
    base = {"listen": f"{VIP}:8080"}
    t = {"role": "active", "heartbeat_listen": f"{NET}.1:7101", "peer": f"{NET}.2:7101", "key_file": "k"}
    cfg = config_from_data({**base, "takeover": {**t, "mode": "address", "interface": "eth0"}})
    assert cfg.takeover is not None and cfg.takeover.mode == "address" and cfg.takeover.prefix == 24
    with pytest.raises(ConfigError, match="interface"):
        config_from_data({**base, "takeover": {**t, "mode": "address"}})
    with pytest.raises(ConfigError, match="loopback"):  # loopback mode stays on 127.0.0.0/8
        config_from_data({**base, "takeover": t})


def test_sigstop_active_loses_the_address_and_steps_down_on_return(tmp_path: Path) -> None:
    _need_root()
    key = _key(tmp_path)
    cfg_b = config_from_data(yaml.safe_load(_config(tmp_path, "b", "standby", 100, key).read_text()))
    assert cfg_b.takeover is not None
    master_down = cfg_b.takeover.master_down  # the standby's: 3 x 0.5 + 156/256 x 0.5 = 1.80 s
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    with _segment() as ns:
        try:
            _start_pair(tmp_path, ns, key, procs)
            a = procs[2]
            assert _holders(ns) == ["a"]

            run_for = 2.0 + STOP_FOR + 4.0
            client_out = tmp_path / "client.out"
            client = _netns_exec(ns["c"], py, "-c", _CLIENT, str(run_for + 2.0), VIP, out=client_out)
            procs.append(client)
            end = time.monotonic() + 10
            while sum(1 for x in _client_lines(client_out) if x["by"] == "web-a") < 5:
                assert time.monotonic() < end, _client_lines(client_out)[-5:]
                time.sleep(0.05)

            stopped_at = time.time()
            os.kill(a.pid, signal.SIGSTOP)
            time.sleep(STOP_FOR)
            assert _holders(ns) == ["a", "b"]  # a stopped process cannot let go; its peer took it
            resumed_at = time.time()
            os.kill(a.pid, signal.SIGCONT)
            while _holders(ns) != ["b"]:
                assert time.time() - resumed_at < 5, "the resumed node kept the address"
                time.sleep(0.005)
            two_holders_after_resume = time.time() - resumed_at
            client.wait(timeout=run_for + 15)
        finally:
            _stop_all(procs)

    lines = _client_lines(client_out)
    after = [x for x in lines if x["t"] >= stopped_at]
    first_b = next(x for x in after if x["by"] == "web-b")
    outage = first_b["t"] - stopped_at
    print(f"outage {outage:.3f} s (Master_Down_Interval {master_down:.3f} s); "
          f"two holders {two_holders_after_resume * 1000:.0f} ms after SIGCONT")  # fmt: skip
    # the last heartbeat came up to one interval before the stop; the client tries
    # every 50 ms and waits at most 250 ms for a connection
    assert master_down - INTERVAL <= outage <= master_down + 0.35, outage
    # from then on the new holder serves every request, across the old one's return
    served = [x["by"] for x in after if x["t"] >= first_b["t"]]
    assert served and all(by == "web-b" for by in served), [x for x in after if x["by"] != "web-b"][:5]
    assert any(x["t"] > resumed_at + 1.0 for x in after)  # the client ran past the return
    # the resumed node stepped down within one heartbeat interval (checked every 5 ms)
    assert two_holders_after_resume <= INTERVAL, two_holders_after_resume
    events = [json.loads(x) for x in (tmp_path / "lb-a.err").read_text().splitlines() if x.startswith("{")]
    assert any(e.get("event") == "takeover" and e.get("state") == "standby" for e in events), events


def test_kill_9_then_restart_the_old_active_stays_standby(tmp_path: Path) -> None:
    """kill -9 leaves the address on the dead node's interface (its kernel answers ARP
    for it): the standby still takes it, and the old active, restarted with role
    active, removes the leftover, finds the address answered for and stays standby."""
    _need_root()
    key = _key(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    with _segment() as ns:
        try:
            _start_pair(tmp_path, ns, key, procs)
            a = procs[2]
            a.kill()
            a.wait(timeout=10)
            assert _holders(ns) == ["a"]  # nobody took it off
            end = time.monotonic() + 10
            while "b" not in _holders(ns):
                assert time.monotonic() < end, "the standby never took the address"
                time.sleep(0.02)
            ready = tmp_path / "a2.ready"
            again = _netns_exec(ns["a"], sys.executable, "-m", "sim.core.cli", "serve",
                                str(_config(tmp_path, "a", "active", 200, key)), "--ready-file", str(ready),
                                out=tmp_path / "lb-a2.err")  # fmt: skip
            procs.append(again)
            assert _wait_ready(again, ready)["state"] == "standby"
            assert _holders(ns) == ["b"]
        finally:
            _stop_all(procs)


# Every frame namespace b's eth0 sends, as JSON lines: its gratuitous ARPs for the
# address (sender and target address both VIP) and its UDP datagrams to the peer's
# heartbeat port (payload in hex). A packet socket sees the outgoing frames in the
# order the device sent them.
_SNIFF = """
import json, socket, struct, sys, time
vip, port, end = socket.inet_aton(sys.argv[1]), int(sys.argv[2]), time.time() + float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.bind(("eth0", 0))
s.settimeout(0.1)
print(json.dumps({"kind": "ready"}), flush=True)
while time.time() < end:
    try:
        frame, addr = s.recvfrom(65535)
    except TimeoutError:
        continue
    if addr[2] != socket.PACKET_OUTGOING:
        continue
    kind = struct.unpack("!H", frame[12:14])[0]
    if kind == 0x0806 and frame[28:32] == vip and frame[38:42] == vip:
        print(json.dumps({"kind": "garp"}), flush=True)
    elif kind == 0x0800 and frame[23] == 17:
        udp = 14 + (frame[14] & 15) * 4
        if struct.unpack("!H", frame[udp + 2 : udp + 4])[0] == port:
            print(json.dumps({"kind": "udp", "data": frame[udp + 8 :].hex()}), flush=True)
"""

_TOKEN = "move-test-token-0123456789"
_ADMIN_PORT = 7180

_REASSOCIATE = """
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/takeover", data=b'{"delay": "0s"}', method="POST",
                             headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=10).read().decode())
"""


def test_planned_move_announces_before_the_old_holder_lets_go(tmp_path: Path) -> None:
    """Make before break (sim.core.takeover.Takeover.reassociate): the new holder's
    first gratuitous ARP leaves before it tells the old holder to let go. Sent the
    other way round (the ARP from a worker thread, before 2026-12-03), the neighbours
    went on sending new connections to the old holder for some milliseconds after it
    stopped listening: in the lab (tests/lab/scenarios.py PLANNED with eip_remap's
    address_move at 57 s) 1 to 4 requests at the move were reset or timed out in
    most runs (docs/lab.md, "Paired with the model")."""
    _need_root()
    key = _key(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    with _segment() as ns:
        try:
            _start_pair(tmp_path, ns, key, procs,
                        admin={"listen": f"127.0.0.1:{_ADMIN_PORT}", "token": _TOKEN},
                        takeover={"automatic": False})  # fmt: skip
            assert _holders(ns) == ["a"]
            sniff_out = tmp_path / "sniff.out"
            sniffer = _netns_exec(ns["b"], py, "-c", _SNIFF, VIP, "7101", "20", out=sniff_out)
            procs.append(sniffer)
            end = time.monotonic() + 10
            while not any(x.get("kind") == "ready" for x in _client_lines(sniff_out)):
                assert sniffer.poll() is None and time.monotonic() < end, sniff_out.read_text()
                time.sleep(0.02)
            moved = subprocess.run(["ip", "netns", "exec", ns["b"], py, "-c", _REASSOCIATE, str(_ADMIN_PORT), _TOKEN],
                                   capture_output=True, text=True, timeout=15)  # fmt: skip
            assert json.loads(moved.stdout)["moved"] is True, moved.stdout + moved.stderr
            end = time.monotonic() + 5
            while _holders(ns) != ["b"]:
                assert time.monotonic() < end, f"the address did not move: {_holders(ns)}"
                time.sleep(0.01)
            time.sleep(0.5)  # the repeats of the gratuitous ARP, and the sniffer's last lines
        finally:
            _stop_all(procs)

    from sim.core.takeover import Dropped, unseal

    secret = key.read_bytes().strip()
    sent: list[str] = []
    for x in _client_lines(sniff_out):
        if x["kind"] == "garp":
            sent.append("garp")
        elif x["kind"] == "udp":
            with contextlib.suppress(Dropped):
                sent.append(unseal(secret, bytes.fromhex(x["data"]))["type"])
    assert "release" in sent and "garp" in sent, sent
    first_garp, release = sent.index("garp"), sent.index("release")
    assert first_garp < release, f"the release went before the gratuitous ARP: {sent[: release + 3]}"
    assert sent.count("garp") == 5, sent  # keepalived's vrrp_garp_master_repeat (sim.core.vaddr)
