"""Shared test set-up: real-component tests skip with a reason, except under CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def require_tool(name: str) -> str:
    """The path of a real component, or a skip (a failure under CI=true)."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        message = f"{name} is not installed (Debian package {name}; scripts/test.sh installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: a real-component test cannot skip: {message}")
        pytest.skip(message)
    return path


@pytest.fixture
def scenario_dir() -> Path:
    return SCENARIOS
