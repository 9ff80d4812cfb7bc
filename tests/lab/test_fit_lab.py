"""`failover-sim fit` on a lab run's own logs: the balancers' access logs (HAProxy's
httplog with the User-Agent captured) and the authoritative server's BIND query log.
The fit is not told the population; it must find each cohort's size and rate.

Long (about 3 minutes): marked `long`, deselected in CI (docs/ci.md); run with
`scripts/test.sh -m long tests/lab/test_fit_lab.py`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

import sim.lab
from sim.fit.run import fit
from sim.lab.world import LabOptions, effective
from sim.model.trace import trace as model_trace
from sim.policy.failover import plan_class
from sim.scenario import load_data
from tests.conftest import SCENARIOS, require_tool

K = 4.0
# the lab's clients send the agent of their cohort's stub cache (sim.lab.clients.AGENTS)
FAMILY = {"browsers": "browser", "jvm": "jvm", "pooled": "runtime", "proxies": "proxy"}


@pytest.mark.real
@pytest.mark.long
@pytest.mark.timeout(600)
def test_fit_recovers_the_lab_population_from_its_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("unbound")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the kept work folder lands here
    doc = yaml.safe_load((SCENARIOS / "web-migration.yaml").read_text())
    doc.update(duration="6m", strategies=["cname_repoint"], report={"stale_at": ["60s"]})
    doc["faults"] = [f for f in doc["faults"] if f["kind"] == "dns_change"]
    options = LabOptions(time_scale=K, keep=True, quiet=True)
    eff = effective(load_data(doc, "fit-lab"), options)
    seed = np.random.SeedSequence(doc["seed"]).spawn(1)[0]
    trace = model_trace(eff, "cname_repoint", np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key))
    sim.lab.replicate(eff, plan_class("cname_repoint"), seed, 0, options, trace=trace)
    (workdir,) = tmp_path.glob("failover-lab-*")
    result = fit(sorted(workdir.glob("*.access.log")), [workdir / "query.log"], service="www.example.com",
                 ttl=eff.dns.service_ttl, time_scale=K)
    found = {c.family: c for c in result.cohorts}
    for cohort in eff.clients:
        c = found[FAMILY[cohort.name]]
        size = eff.cohort_sizes()[cohort.name]
        print(cohort.name, size, cohort.rate, c.size, c.rate)
        assert c.size.low <= size <= c.size.high, (cohort.name, size, c.size)
        assert c.rate.low <= cohort.rate <= c.rate.high, (cohort.name, cohort.rate, c.rate)
