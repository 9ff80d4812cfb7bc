"""The house rules, read from the code (docs/design.md, "Import rules").

Imports are read with `ast`, at module level and inside functions alike (a
lazy import is still a dependency). Each test names every violation it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sim.policy.failover import PLANS

SIM = Path(__file__).resolve().parents[1] / "sim"
ENGINES = ("sim.model", "sim.fast", "sim.lab")
STRATEGY_NAMES = PLANS  # every registered strategy name
LONGEST_FUNCTION = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(SIM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SIM.rglob("*.py"))}


def _imports(path: Path, module: str) -> set[str]:
    """Every sim module `path` imports (a `from X import Y` counts X, and X.Y when Y is a module)."""
    known = _modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known)
    return {m for m in out if m == "sim" or m.startswith("sim.") or m in ("simpy", "asyncio")}


GRAPH = {name: _imports(path, name) for name, path in _modules().items()}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(importers: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {dep}"
        for m, deps in GRAPH.items()
        if any(_within(m, p) for p in importers)
        for dep in deps
        if any(_within(dep, f) for f in forbidden)
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_imports_another(engine: str) -> None:
    others = tuple(e for e in ENGINES if e != engine)
    assert _violations((engine,), others) == []


def test_policy_and_scenario_import_no_engine_and_no_run_layer() -> None:
    below = ("sim.policy", "sim.scenario", "sim.replication")
    assert _violations(below, (*ENGINES, "sim.core", "sim.runner", "sim.api", "sim.cli", "sim.commands")) == []


def test_policy_is_pure() -> None:
    assert _violations(("sim.policy",), ("simpy", "asyncio", "sim.results", "sim.analysis")) == []


def test_core_imports_no_engine_and_no_simpy() -> None:
    assert _violations(("sim.core",), (*ENGINES, "simpy")) == []


def test_the_lab_does_not_need_simpy() -> None:
    # Transitively: the lab replays the model's draws from a Trace the run layer hands it.
    seen, todo = set(), ["sim.lab", "sim.lab.world"]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(d for d in GRAPH.get(m, ()) if d in GRAPH or d == "simpy")
    assert sorted(d for d in seen if d == "simpy" or _within(d, "sim.model")) == []


def test_nothing_below_the_api_imports_the_command_line() -> None:
    face = ("sim.cli", "sim.commands", "sim.__main__")
    found = sorted(
        f"{m} imports {dep}"
        for m, deps in GRAPH.items()
        if not any(_within(m, f) for f in face)
        for dep in deps
        if any(_within(dep, f) for f in face)
    )
    assert found == []


def test_no_import_circle_spans_packages() -> None:
    """Strongly connected components of the module graph must each lie in one package."""
    graph = {m: {d for d in deps if d in GRAPH and d != m} for m, deps in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    # `sim` (the package's __init__) re-exports lazily from sim.api; a module that
    # imports `sim` for nothing else would otherwise pull every package into one circle.
    spanning = [c for c in circles if len({_package(m) for m in c}) > 1]
    assert spanning == []


def _package(module: str) -> str:
    """The package a module belongs to; top-level modules (sim.runner, sim.cli) belong to `sim`."""
    return module if module in _PACKAGES else module.rpartition(".")[0]


_PACKAGES = {m for m, p in _modules().items() if p.name == "__init__.py"}


def test_no_function_is_longer_than_the_limit() -> None:
    long = []
    for path in sorted(SIM.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(SIM.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_never_name_a_strategy(engine: str) -> None:
    """A strategy is decided once (sim.scenario.build.compile); engines ask the plan.
    Prose in docstrings and comments may name strategies; a string literal may not."""
    found = []
    for path in sorted((SIM.parent / engine.replace(".", "/")).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in STRATEGY_NAMES:
                found.append(f"{path.relative_to(SIM.parent)}:{node.lineno} {node.value!r}")
    assert found == []


# What a citation outside the repository looked like before issue 21: files of
# another folder (the shared docs beside the checkout), and the old names of pages now under docs/.
_OUTSIDE = "|".join(("shared/" + "docs", r"\.\./shared", "REFERENCES" + r"\.md", "DESIGN" + r"\.md",
                     "BENCHMARKING" + r"\.md", "scenario-" + "v1"))
# Markdown files a command writes (report.md, bench core's results.md, fit's fit-report.md): named, not cited.
_WRITTEN_MD = {"report.md", "results.md", "fit-report.md"}


def _cited_places() -> list[Path]:
    root = SIM.parent
    return [*SIM.rglob("*.py"), *(root / "tests").rglob("*.py"), *(root / "docs").glob("*.md"),
            *(root / "notebooks").glob("*.ipynb"), *(root / "scenarios").rglob("*.yaml"),
            *(root / "examples").iterdir(), *(root / "scripts").iterdir(), *(root / "benchmarks").glob("*.md"),
            *(root / ".ci").iterdir(), root / "README.md", root / "CHANGELOG.md", root / "pyproject.toml"]


def _help_pages() -> dict[str, str]:
    """Every `failover-sim ... --help` page, as a user sees it."""
    import contextlib
    import io

    from sim.cli import COMMANDS, main

    pages = {}
    for argv in (["--help"], *([c.NAME, "--help"] for c in COMMANDS),
                 *(["bench", b, "--help"] for b in ("model", "fast", "sweep", "core"))):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), contextlib.suppress(SystemExit):
            main(argv)
        pages[" ".join(argv)] = out.getvalue()
    return pages


def test_citations_stay_inside_the_repository() -> None:
    """A user who clones the project can follow every citation (docs/references.md and the rest):
    in code, docs, notebooks, scenarios, examples, scripts, pyproject.toml and every --help page."""
    import re

    root = SIM.parent
    outside = re.compile(_OUTSIDE)
    texts = {str(p.relative_to(root)): p.read_text() for p in _cited_places() if p.is_file()}
    texts.update({f"failover-sim {argv}": page for argv, page in _help_pages().items()})
    found = [f"{where}:{no}" for where, text in texts.items()
             for no, line in enumerate(text.splitlines(), 1) if outside.search(line)]
    assert found == []
    # Every Markdown page cited resolves, from the root or from beside the pages in docs/.
    cited = {(where, name) for where, text in texts.items()
             for name in re.findall(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b", text)}
    dangling = sorted(f"{where}: {name}" for where, name in cited if name not in _WRITTEN_MD
                      and not (root / name).is_file() and not (root / "docs" / name).is_file())
    assert dangling == []


def test_the_help_pages_are_read() -> None:
    # Guards the test above against reading nothing.
    pages = _help_pages()
    assert "usage: failover-sim" in pages["--help"]
    assert "wrk" in pages["bench core --help"] or "HAProxy" in pages["bench core --help"]
