"""The configurations in docs/core.md are valid as written."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sim.core.config import config_from_data

DOC = Path(__file__).resolve().parents[2] / "docs" / "core.md"


def test_doc_configs_validate() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    # the quick start's config sits in a heredoc inside a shell block
    blocks += re.findall(r"cat > lb\.yaml <<'EOF'\n(.*?)EOF", text, re.S)
    checked = 0
    for block in blocks:
        data = yaml.safe_load(block)
        if "listen" in data:
            config_from_data(data, str(DOC))
            checked += 1
        else:
            # a fragment: valid once put under a full configuration
            config_from_data({"listen": "127.0.0.77:8080", **data}, str(DOC))
    assert checked >= 2
