"""Committed notebooks: no outputs, a papermill-readable parameters cell with HEADLESS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_exist():
    assert len(NOTEBOOKS) == 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs (jupyter nbconvert --clear-output)"


ALL_NOTEBOOKS = [*NOTEBOOKS, *sorted(NOTEBOOKS[0].parent.glob("solutions/*.ipynb"))]
# What a LaTeX backslash becomes in a Python string without r'': \f(rac), \b(ig), \r(Vert).
CONTROL = {chr(c) for c in range(32)} - {"\n", "\t"}


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_holds_a_control_character(path):
    nb = nbformat.read(path, as_version=4)
    found = {
        i: sorted(repr(ch) for ch in set(cell.source) & CONTROL) for i, cell in enumerate(nb.cells)
    }
    found = {i: chars for i, chars in found.items() if chars}
    assert not found, f"{path.name}: control characters in cells {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_readable_and_declares_headless(path, caplog):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    assigned = [
        line.split(":")[0].split("=")[0].strip()
        for line in tagged[0].source.splitlines()
        if line and not line.startswith("#")
    ]
    with caplog.at_level("WARNING", logger="papermill"):
        declared = papermill.inspect_notebook(str(path))
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert list(declared) == assigned  # every parameter parsed, none lost to a comment
    assert declared["HEADLESS"]["default"] == "False"
    assert all(p["inferred_type_name"] != "None" for p in declared.values())


def test_pre_commit_hook_script_refuses_outputs_and_passes_the_committed_notebooks(tmp_path):
    """The pre-commit hook (.ci/notebooks_without_outputs.py) agrees with the test above."""
    script = Path(__file__).resolve().parents[1] / ".ci" / "notebooks_without_outputs.py"
    clean = [str(p) for p in NOTEBOOKS]
    assert subprocess.run([sys.executable, str(script), *clean], check=False).returncode == 0
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells[code].execution_count = 1
    nb.cells[code].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    dirty = tmp_path / "dirty.ipynb"
    nbformat.write(nb, dirty)
    done = subprocess.run(
        [sys.executable, str(script), *clean, str(dirty)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"{dirty}: cells [{code}] hold outputs "
        f"(clear them: jupyter nbconvert --clear-output --inplace {dirty})"
    )
