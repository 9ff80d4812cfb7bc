"""The cohort fields of issue 18's client side: restart, stub_grace, sessions.

Bad values are refused naming the field; sessions imply the rate, which is then
not given and not written back; a scenario without the fields is unchanged.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from sim.scenario import ScenarioError
from sim.scenario.build import compile as build
from tests.conftest import ROOT
from tests.model.scenarios import BASE, scenario

SESSIONS = {"requests": 3, "think": "20s", "gap": {"exp": "2m"}}


def _cohort(**fields: object) -> dict:
    return {"clients.0": {"name": "c", "count": 10, **fields}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": "1/s", "restart": {"every": "0s"}}, r"clients\[0\]\.restart.*above 0"),
        ({"rate": "1/s", "restart": {"every": {"exp": "1d"}, "jitter": 1}}, r"clients\[0\]\.restart\.jitter"),
        ({"rate": "1/s", "restart": {}}, r"clients\[0\]\.restart\.every"),
        ({"rate": "1/s", "stub_grace": "-1s"}, r"clients\[0\]\.stub_grace"),
        ({"rate": "1/s", "sessions": SESSIONS}, r"clients\[0\].*rate or sessions, not both"),
        ({}, r"clients\[0\].*rate: required"),
        ({"sessions": {**SESSIONS, "gap": "0s"}}, r"clients\[0\]\.sessions.*gap"),
        ({"sessions": {"requests": 3, "think": "1s"}}, r"clients\[0\]\.sessions\.gap"),
    ],
)
def test_bad_values_name_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        scenario(**_cohort(**fields))


def test_sessions_imply_the_rate_and_it_is_not_written_back() -> None:
    sc = scenario(**_cohort(sessions=SESSIONS))
    assert math.isclose(sc.clients[0].rate, 3 / (2 * 20 + 120))
    doc = sc.to_document()["clients"][0]
    assert "rate" not in doc and doc["sessions"]["think"] == "20s"
    edited = sc.with_values({"clients[0].sessions.gap": "4m"})  # edits keep the rate implied
    assert math.isclose(edited.clients[0].rate, 3 / (2 * 20 + 240))


def test_defaults_keep_the_old_behaviour() -> None:
    sc = scenario()
    c = sc.clients[0]
    assert c.restart is None and c.sessions is None and c.stub_grace == 0.0
    dep = build(sc, "cname_repoint")
    assert dep.restarts == {"c": None} and dep.sessions == {"c": None}


def test_validate_refuses_a_bad_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    doc = dict(BASE)
    doc["clients"] = [{"name": "c", "count": 10, "rate": "1/s", "restart": {"every": {"exp": "0s"}}}]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run([sys.executable, "-m", "sim", "validate", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1
    assert "invalid" in res.stdout + res.stderr and "clients[0].restart" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
