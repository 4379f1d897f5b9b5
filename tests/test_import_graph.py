"""handpose_lib's imports run one way: no import cycle (read from the source with `ast`, nothing
imported, imports inside functions included), and no import of the package inside a function
(the usual way of hiding a cycle: ruff's PLC0415 in `make lint`, checked configured here)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

PACKAGE = "handpose_lib"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
PYPROJECT = tomllib.loads((PACKAGE_DIR.parent / "pyproject.toml").read_text())


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__)."""
    root = package_dir.parent
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The dotted name `from ... import` reads from, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, is_package: bool, node: ast.stmt, modules: dict[str, Path]) -> list[str]:
    """Dotted names an Import / ImportFrom statement depends on: `from A import n` on module
    A.n where that is a module, else on A; relative imports resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    source = _absolute(module, is_package, node)
    return [
        f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
        for alias in node.names
    ]


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `path` imports, at any depth."""
    is_package = path.name == "__init__.py"
    return {
        target
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        for target in _targets(module, is_package, node, modules)
        if target in modules
    }


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (itself excluded)."""
    return {
        module: imported_modules(module, path, modules) - {module}
        for module, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of a directed graph, or None when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# --- the checks ---------------------------------------------------------------------------


def test_the_package_has_no_import_cycle():
    modules = module_files()
    assert len(modules) > 40  # the scan found the package
    graph = import_graph(modules)
    assert "handpose_lib.training.config" in graph["handpose_lib.training.engine"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_function_imports_part_of_the_package():
    """ruff's PLC0415 (`make lint`) refuses every import inside a function; the few it lets
    through (`# noqa: PLC0415`: optional packages imported where used) import no part of the
    package, which would hide a cycle from the ruff check (the cycle test above sees them)."""
    select = PYPROJECT["tool"]["ruff"]["lint"]["select"]
    assert "PLC0415" in select or "PLC" in select or "PL" in select
    excused = [
        f"{path.name}:{number}: {line.strip()}"
        for path in module_files().values()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "noqa: PLC0415" in line and re.search(r"\b(from|import)\s+(handpose_lib|\.)", line)
    ]
    assert excused == []


# --- the checker itself -------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


def test_the_checker_finds_a_cycle_through_relative_and_package_imports(tmp_path):
    package = _write(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from handpose_lib.sub import b\n",
            "sub/__init__.py": "from .b import thing\n",
            "sub/b.py": "import handpose_lib.c\nthing = 1\n",
            "c.py": "from . import a\n",
        },
    )
    graph = import_graph(module_files(package))
    assert graph["handpose_lib.sub"] == {"handpose_lib.sub.b"}
    assert graph["handpose_lib.c"] == {"handpose_lib.a"}
    assert find_cycle(graph) == [
        "handpose_lib.a",
        "handpose_lib.sub.b",
        "handpose_lib.c",
        "handpose_lib.a",
    ]
    del graph["handpose_lib.c"]
    assert find_cycle(graph) is None
