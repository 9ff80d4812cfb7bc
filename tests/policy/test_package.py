"""The purity rule of sim.policy (its __init__ docstring), checked."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import sim.policy

FORBIDDEN = ("simpy", "asyncio", "sim.model", "sim.core", "sim.fast", "sim.lab", "socket", "time")


def test_public_names_resolve() -> None:
    for name in sim.policy.__all__:
        assert hasattr(sim.policy, name), name


def test_no_forbidden_imports_in_source() -> None:
    pkg = pathlib.Path(sim.policy.__file__).parent
    for path in pkg.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            mods: list[str] = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            for m in mods:
                assert not any(m == f or m.startswith(f + ".") for f in FORBIDDEN), (path, m)


def test_importing_pulls_in_no_engine() -> None:
    code = (
        "import sys, sim.policy; "
        "bad = [m for m in ('simpy', 'asyncio', 'sim.model', 'sim.core', 'sim.fast', 'sim.lab') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    root = pathlib.Path(sim.policy.__file__).parents[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
