"""The shape of the codebase: the package's import graph has no cycle, the error and kwargs
modules are leaves, and the sources do not cite documents that are not in the repository."""
import ast
import re
from pathlib import Path
from typing import Dict, List, Set

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fastposegait"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_modules() -> Dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: Set[str]) -> Set[str]:
    """Package modules that ``name`` imports (anywhere in the file, function bodies included);
    ``from pkg import sub`` counts as an import of ``pkg.sub`` when that is a module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def import_graph() -> Dict[str, Set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_relative_and_lazy_imports():
    graph = import_graph()
    assert "fastposegait.errors" in graph["fastposegait.config.checker"]
    assert "fastposegait.engine.runner" in graph["fastposegait.main"]  # imported inside main()


def test_the_package_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("leaf", ["fastposegait.errors", "fastposegait.kwargs"])
def test_leaf_modules_import_nothing_from_the_package(leaf):
    assert import_graph()[leaf] == set()


# ------------------------------------------------------------------ self-contained sources

SOURCE_GLOBS = ["fastposegait/**/*.py", "tests/**/*.py", "benchmarks/**/*.py", "examples/**/*.py",
                "resources/**/*.py", "configs/**/*.yaml", "docs/**/*.md", "datasets/**/*.md", "README.md",
                "dist_train.sh", "dist_test.sh", ".ci/run"]
# citations of documents that live outside the repository
OUTSIDE = re.compile(r"§|\bQ\d+\b|\bH\d+\b|(?<![\w/])models\.md|data_and_eval|upstream_head|skeletongait\.md|"
                     r"upstream_state_dicts|reference_params\.json|shared/spec|\.\./shared")


def citing_lines() -> List[str]:
    hits = []
    for pattern in SOURCE_GLOBS:
        for path in sorted(REPO.glob(pattern)):
            if path == Path(__file__).resolve() or ".venv" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if OUTSIDE.search(line):
                    hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    return hits


def test_no_source_cites_a_document_outside_the_repository():
    assert citing_lines() == []
