"""The lab's namespace mode (sim.lab.netns): eip_remap and vrrp with their balancers in
network namespaces on a bridge, the address moved by sim.core's address mode, as root.

Against the model as the other lab tests are (tests/lab/test_lab.py): the clients
affected and their recovery within the model's replication spread, the requests of
the paired replication; and what the namespace mode alone shows: the address moved
by ARP (the standby's gratuitous ARPs, the clients' own non-loopback addresses in the
balancers' logs). The network goes whatever the outcome: on an exception, and with a
parent killed outright.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import sim.lab
from sim.lab import netns
from sim.lab.procs import LabError, Processes
from sim.lab.world import LabOptions, effective, takeover_mode
from sim.model import simulate
from sim.model.trace import trace as model_trace
from sim.policy.failover import plan_class
from sim.results.schema import affected_clients
from sim.scenario import load_data
from tests.conftest import ROOT, require_tool
from tests.lab.scenarios import SMALL

K = 4.0


def _need_root() -> None:
    """Skip with the reason (a failure under CI=true, where the lab runs as root)."""
    problem = netns.unavailable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: the lab's namespace mode cannot skip: {problem}")
    pytest.skip(problem)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0


def _local_route(network: str) -> bool:
    """Whether the /17 the segment made local to the root namespace is still routed."""
    block = network.rsplit(".", 2)[0] + ".128.0/17"
    out = subprocess.run(["ip", "-4", "route", "show", "table", "local"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [block] for line in out.splitlines())


def _cmdline(pid: int) -> str:
    """A process's command line, empty once it is gone (it may go between two reads)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def network_gone(info: dict, timeout: float = 10.0) -> bool:
    """The segment's link, route and namespace holders are gone (a namespace is freed by
    the kernel once its last process ends, its veth pairs with it: not at once)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in info["holders"].values() if "sleep" in _cmdline(pid)]
        if not alive and not _link_exists(info["link"]) and not _local_route(info["network"]):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_the_mode_resolves_as_asked() -> None:
    assert netns.resolve_mode("loopback") == ("loopback", None)
    with pytest.raises(LabError, match="takeover mode 'bridge'"):
        netns.resolve_mode("bridge")
    reason = netns.unavailable()
    if reason is None:
        assert netns.resolve_mode("auto") == ("namespace", None)
        assert netns.resolve_mode("namespace") == ("namespace", None)
    else:
        assert netns.resolve_mode("auto") == ("loopback", reason)
        with pytest.raises(LabError, match="namespace mode cannot run"):
            netns.resolve_mode("namespace")


def test_an_unprivileged_lab_keeps_loopback_and_says_so_once() -> None:
    """As another user than root (nobody: a forked child of this process drops root, as
    this interpreter's files may not be readable by nobody), "auto" is the loopback
    mode, and the note with what it cannot show comes once however many worlds ask."""
    _need_root()  # to become nobody
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            sys.stderr = sys.stdout = os.fdopen(write, "w")
            netns._said.clear()
            os.setuid(65534)
            print(*(takeover_mode(LabOptions()) for _ in range(3)), flush=True)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read().splitlines()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, said
    assert said[-1] == "loopback loopback loopback", said
    notes = [line for line in said if line.startswith("lab: not root")]
    assert len(notes) == 1 and "no ARP" in notes[0], said


def test_the_segment_is_removed_on_an_exception(tmp_path: Path) -> None:
    _need_root()
    with pytest.raises(KeyboardInterrupt), Processes(tmp_path) as procs:
        segment = netns.Segment(procs)
        try:
            segment.build()
            info = segment.describe()
            assert _link_exists(info["link"]) and _local_route(info["network"])
            raise KeyboardInterrupt  # as Ctrl-C
        finally:
            segment.remove()
    assert network_gone(info), info


KILLED = """
import json, sys, time
from pathlib import Path
from sim.lab import netns
from sim.lab.procs import LabError, Processes
with Processes(Path(sys.argv[1])) as procs:
    segment = netns.Segment(procs)
    segment.build()
    print(json.dumps(segment.describe()), flush=True)
    time.sleep(300)
"""


@pytest.mark.timeout(60)
def test_the_segment_goes_with_a_parent_killed_outright(tmp_path: Path) -> None:
    """SIGKILL: no cleanup runs; the kernel ends the namespaces' holders with their parent
    (sim.lifeline), then the namespaces, the veth pairs and the route on the root's end."""
    _need_root()
    parent = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path)
    try:
        assert parent.stdout is not None
        info = json.loads(parent.stdout.readline())
        assert _link_exists(info["link"])
        parent.kill()
        parent.wait(timeout=10)
        assert network_gone(info), info
    finally:
        parent.kill()


# What each strategy's fault shows of the namespace mode: eip_remap's active killed (its
# namespace's kernel still answers ARP for the address: the reassociate call must take
# it anyway), vrrp's stopped (the standby's timer takes the address from a node whose
# kernel holds it; connections go where the gratuitous ARP sends them).
CASES = {"eip_remap": "refuse", "vrrp": "blackhole"}


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.long  # deselected in CI, whose real-time stream is full (docs/ci.md); the lab's other
# eip_remap and vrrp tests run in the namespace mode there (as root, "auto")
@pytest.mark.timeout(150)
@pytest.mark.parametrize("strategy", list(CASES))
def test_lab_namespace_mode_matches_the_model(strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_root()
    require_tool("unbound")
    doc = dict(SMALL, strategies=[strategy], faults=[dict(SMALL["faults"][0], mode=CASES[strategy])])
    options = LabOptions(time_scale=K, quiet=True, keep=True, takeover="namespace")
    eff = effective(load_data(doc, "lab-small"), options)
    seed = np.random.SeedSequence(SMALL["seed"]).spawn(1)[0]
    trace = model_trace(eff, strategy, np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the kept world's folder: this test's
    out = sim.lab.replicate(eff, plan_class(strategy), seed, 0, options, trace=trace)
    (world,) = [p for p in tmp_path.iterdir() if p.name.startswith("failover-lab-")]

    # it ran in namespaces: the address on eth0, moved to the standby by ARP
    info = json.loads((world / "network.json").read_text())
    assert "mode: address" in (world / "blue.yaml").read_text()
    events = [json.loads(line) for line in (world / "balancer-green.log").read_text().splitlines()
              if line.startswith("{")]
    assert any(e.get("event") == "takeover" and e.get("state") == "active" for e in events), events[-5:]
    served = (world / "green.access.log").read_text().splitlines()
    prefix = info["network"].split(".0.0/")[0] + "."
    assert served and all(line.split()[5].startswith(prefix) for line in served[:50]), served[:3]
    assert network_gone(info), info  # and the network went with the world

    # against the model, as tests/lab/test_lab.py holds the other strategies
    lab = affected_clients(out.clients)["recovery_s"].to_numpy()
    assert len(out.clients) == 18 and len(lab) and np.isfinite(lab).all(), out.clients
    model_runs = [simulate(eff, strategy, np.random.SeedSequence([5, k])) for k in range(12)]
    affected = [len(affected_clients(r.clients)) for r in model_runs]
    model = [np.nanmean(affected_clients(r.clients)["recovery_s"]) for r in model_runs if len(affected_clients(r.clients))]
    mean, sd = float(np.mean(model)), float(np.std(model, ddof=1))
    paired = simulate(eff, strategy, seed)
    print(strategy, "lab", len(lab), float(np.mean(lab)), out.metrics["requests"], "model", np.mean(affected), mean, sd,
          paired.metrics["requests"])  # the measured figures (pytest -s)
    assert abs(len(lab) - np.mean(affected)) <= 3 * np.std(affected, ddof=1) + 2, (len(lab), affected)
    # the model's spread (3 SD) plus 10% for what time scaling adds, and 1 s (test_lab.py)
    assert abs(np.mean(lab) - mean) <= 3 * sd + 0.10 * mean + 1.0, (np.mean(lab), mean, sd)
    assert abs(out.metrics["requests"] - paired.metrics["requests"]) <= 3, (out.metrics, paired.metrics)
