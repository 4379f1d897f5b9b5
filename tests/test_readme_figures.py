"""Every table and figure the outputs page lists (docs/outputs.md, linked from the README) is
produced by a smoke run of the notebooks."""

import re
from pathlib import Path

import pytest

OUTPUTS = Path(__file__).resolve().parents[1] / "docs" / "outputs.md"


def readme_outputs() -> list[str]:
    """File names in the first column of the "What is regenerated" table."""
    section = OUTPUTS.read_text().split("## What is regenerated", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first_cell = row.split("|")[1]
        for token in re.findall(r"`([^`]+)`", first_cell):
            match = re.fullmatch(r"(.+)\.\{(.+)\}", token)
            if match:
                names += [f"{match[1]}.{ext}" for ext in match[2].split(",")]
            else:
                names.append(token)
    return names


def test_readme_lists_outputs():
    names = readme_outputs()
    assert "table1.csv" in names
    assert "fig3c_icvl_per_joint_error.pdf" in names


@pytest.mark.notebooks
def test_smoke_run_produces_every_listed_output(smoke_outputs):
    """The list against what a smoke run of every notebook wrote (the session's nbval
    run of the notebooks when there was one: conftest.smoke_outputs)."""
    produced = {p.name for p in smoke_outputs}
    missing = [name for name in readme_outputs() if name not in produced]
    assert not missing, f"listed in docs/outputs.md but not produced by the smoke run: {missing}"
