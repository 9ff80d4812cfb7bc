"""What installs the project: the extras cover what their commands import, and the
README's one-liner that opens the notebooks runs what the notebooks extra installs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _third_party_imports(folder: Path) -> set[str]:
    """Modules imported outside the standard library, but for those imported under a
    `try: ... except ImportError` that carries on without them (optional, as uvloop)."""
    found = set()
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        optional = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            and not any(isinstance(r, ast.Raise) for r in ast.walk(h)) for h in t.handlers)
            for stmt in t.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "sim"}


def test_every_package_the_benchmarks_import_is_a_dependency_or_in_the_bench_extra() -> None:
    owners = packages_distributions()
    declared = _names(PROJECT["dependencies"]) | _names(PROJECT["optional-dependencies"]["bench"])
    imported = _third_party_imports(ROOT / "sim" / "bench")
    assert "hdrh" in imported  # bench core's open-loop generator
    missing = {m: owners.get(m) for m in imported
               if not {d.lower().replace("_", "-") for d in owners.get(m, [m])} & declared}
    assert missing == {}


def test_the_notebooks_extra_and_the_readme_line_that_opens_them() -> None:
    assert {"jupyter", "papermill"} <= _names(PROJECT["optional-dependencies"]["notebooks"])
    line = "scripts/setup.sh notebooks && .venv/bin/jupyter lab notebooks/"
    assert line in (ROOT / "README.md").read_text().replace("\n", " ")
    assert 'spec=".[$extras]"' in (ROOT / "scripts" / "setup.sh").read_text()  # the extra it names is installed
    jupyter = Path(sys.prefix) / "bin" / "jupyter"
    if not (Path(sys.prefix) / "bin" / "jupyter-lab").exists():
        # nbclient (the test extra) brings the `jupyter` command without JupyterLab
        pytest.skip("JupyterLab is not installed in this environment (the notebooks extra)")
    # `jupyter lab` is there to open (its --version runs the same entry point without a server)
    done = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and re.match(r"\d+\.\d+", done.stdout.strip()), done.stderr
    assert any((ROOT / "notebooks").glob("*.ipynb"))


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned (NAME==VERSION)"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_pins_every_requirement_within_its_bounds() -> None:
    """A floor raised or a dependency added without `scripts/lock.sh` fails here, before
    scripts/setup.sh would fail on a machine that installs from the lock."""
    pins = _locked()
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    requirements += [Requirement(r) for extra in PROJECT["optional-dependencies"].values() for r in extra]
    wrong = {str(r): pins.get(canonicalize_name(r.name)) for r in requirements
             if canonicalize_name(r.name) not in pins or not r.specifier.contains(pins[canonicalize_name(r.name)])}
    assert wrong == {}, "run scripts/lock.sh (docs/ci.md, Reproducible installs)"
    assert "failover-sim" not in pins  # the project itself is installed from the checkout


def test_setup_installs_with_the_lock() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "lock=(-c constraints.txt)" in setup and '${lock[@]+"${lock[@]}"} -e "$spec"' in setup
