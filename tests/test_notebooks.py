"""The notebooks run top to bottom with small parameters, and are committed without outputs.

Each notebook has a cell tagged `parameters` (papermill convention); the test
inserts a cell after it that overrides those values with small ones, as
papermill would, and runs the notebook with nbclient in this environment's
`python3` kernel, from the notebooks folder.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))

# Small enough that all four run in about a minute here.
SMALL: dict[str, dict[str, object]] = {
    "01-cname-vs-static-ip": {"replications": 1, "duration": "8m"},
    # two replications: the intervals and their error bars are drawn, not skipped
    "02-ttl-tradeoff": {"ttls": ["30s", "60s", "300s"], "replications": 2, "duration": "12m", "engine": "fast"},
    "03-capacity-planning": {
        "instances_grid": [6, 12],
        "nodes_grid": [2],
        "replications": 1,
        "duration": "12m",
        "clients_count": 100,
    },
    # The lab has its own end-to-end test (tests/lab); here the notebook's model-side path.
    "04-model-vs-real": {"replications": 2, "duration": "8m", "engines": ["des", "fast"]},
    "05-dns-migration": {"replications": 1, "duration": "15m", "window": "3m"},

    "06-choose-a-design": {"replications": 2, "duration": "10m", "ttls": ["60s", "300s"]},
}


def _need(module: str):  # type: ignore[no-untyped-def]
    # Under CI a missing notebook runner is a failure, not a skip (tests/conftest.py).
    if os.environ.get("CI") == "true":
        return __import__(module)
    return pytest.importorskip(module, reason=f"{module} is not installed (pip install nbclient nbformat ipykernel)")


def test_every_notebook_is_listed_with_small_parameters() -> None:
    assert [p.stem for p in ALL] == sorted(SMALL), "add small parameters for each new notebook to SMALL"


def test_notebooks_are_committed_without_outputs() -> None:
    dirty = []
    for path in ALL:
        book = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(book["cells"]):
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                dirty.append(f"{path.name} cell {i}")
    assert not dirty, (
        "notebooks must be committed without outputs (clear them: "
        "jupyter nbconvert --clear-output --inplace notebooks/*.ipynb): " + ", ".join(dirty)
    )


def test_notebooks_open_with_a_question_and_a_parameters_cell() -> None:
    for path in ALL:
        book = json.loads(path.read_text(encoding="utf-8"))
        first = book["cells"][0]
        assert first["cell_type"] == "markdown" and "**Question.**" in "".join(first["source"]), path.name
        tagged = [c for c in book["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and tagged[0]["cell_type"] == "code", path.name


def _inject(book, values: dict[str, object]):  # type: ignore[no-untyped-def]
    nbformat = _need("nbformat")
    book = copy.deepcopy(book)
    index = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", []))
    # Every override must name a parameter the notebook has: a renamed one must not pass silently.
    declared = book.cells[index].source
    for name in values:
        assert f"\n{name} =" in "\n" + declared, f"parameter {name!r} is not in the parameters cell"
    source = "# Parameters injected by tests/test_notebooks.py\n" + "\n".join(
        f"{name} = {value!r}" for name, value in values.items()
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    book.cells.insert(index + 1, cell)
    return book


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    nbformat = _need("nbformat")
    nbclient = _need("nbclient")
    _need("ipykernel")
    book = _inject(nbformat.read(path, as_version=4), SMALL[path.stem])
    client = nbclient.NotebookClient(
        book,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    images = sum(
        1 for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    )
    assert images >= 1, f"{path.name} drew no figure"
    # its long work shows progress (sim.progress): tqdm's notebook widget, detected by itself
    # in a kernel, or plain lines on stderr where there is no widget
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               or (o.get("name") == "stderr" and " to do" in o.get("text", "")) for o in outputs), (
        f"{path.name} showed no progress")
    nbformat.write(book, tmp_path / path.name)  # left for a person to open when a run looks wrong
