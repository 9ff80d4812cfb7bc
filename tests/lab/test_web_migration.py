"""scenarios/web-migration.yaml on the lab, paired with the model's replication of the
same seed (the lab replays its draws): the drain and the stale shares counted from what
the real balancers logged against the model's.

Long (about 3 minutes a strategy at K = 4): marked `long`, which CI deselects
(docs/ci.md); run with `scripts/test.sh -m long tests/lab/test_web_migration.py`.
The run is web-migration cut to its first 8 minutes (the change at 5 min, the drain
read at 60 s and 2 min after it; the switch-off at 35 min is left out), on the lab's
default 16 resolvers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from sim.analysis.drain import drain_times, replication_drain, stale_names
from sim.lab.world import LabOptions, effective
from sim.replication import ReplicationOutput
from sim.scenario import load_data
from tests.conftest import SCENARIOS, require_tool
from tests.lab.scenarios import paired

OPTIONS = LabOptions(time_scale=4.0, max_resolvers=16, quiet=True)


def _switched(out: ReplicationOutput) -> tuple[float, int]:
    """The mean drain of the clients that switched, and how many never did (the
    proxies, which resolve once, never do: the drain mean itself is unbounded)."""
    d = drain_times(out.clients, out.metrics["changed_at"])
    return float(d[np.isfinite(d)].mean()), int((~np.isfinite(d)).sum())


@pytest.mark.real
@pytest.mark.long
@pytest.mark.timeout(600)
@pytest.mark.parametrize("strategy", ["cname_repoint", "alias_apex", "eip_remap"])
def test_web_migration_drains_on_the_lab_as_in_the_model(strategy: str) -> None:
    require_tool("unbound")
    doc = yaml.safe_load((SCENARIOS / "web-migration.yaml").read_text())
    doc.update(duration="8m", strategies=[strategy], report={"stale_at": ["60s", "2m"]})
    doc["faults"] = [f for f in doc["faults"] if f["kind"] in ("dns_change", "address_move")]
    eff = effective(load_data(doc, "web-migration-lab"), OPTIONS)
    lab, model = paired(eff, strategy, doc["seed"], OPTIONS)
    stale_at = eff.report.stale_at
    mine = replication_drain(lab.clients, lab.targets, lab.metrics["changed_at"], stale_at)
    theirs = replication_drain(model.clients, model.targets, model.metrics["changed_at"], stale_at)
    (lab_mean, lab_never), (model_mean, model_never) = _switched(lab), _switched(model)
    print(strategy, "lab", mine, lab_mean, lab_never, "model", theirs, model_mean, model_never)
    assert lab.metrics["changed_at"] == model.metrics["changed_at"] == 300.0
    if math.isfinite(theirs["drain_s.mean"]):
        assert abs(mine["drain_s.mean"] - theirs["drain_s.mean"]) <= 0.10 * theirs["drain_s.mean"]
    assert abs(lab_mean - model_mean) <= 0.10 * model_mean, (lab_mean, model_mean)
    assert abs(lab_never - model_never) <= max(3, 0.01 * len(model.clients)), (lab_never, model_never)
    for name in (*stale_names(60.0), *stale_names(120.0)):
        assert abs(mine[name] - theirs[name]) <= 0.01, (name, mine[name], theirs[name])
