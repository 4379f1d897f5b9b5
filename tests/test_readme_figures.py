"""Every table and figure the README lists is produced by the smoke run of the runner."""

import re
from pathlib import Path

from handpose_lib import reproduce

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_outputs() -> list[str]:
    """File names in the first column of the README's "What is regenerated" table."""
    section = README.read_text().split("## What is regenerated", 1)[1].split("\n## ", 1)[0]
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
    assert "table1.csv" in names and "fig3c_icvl_per_joint_error.pdf" in names


def test_smoke_run_produces_every_listed_output(tmp_path):
    summary = reproduce.reproduce(
        profile="smoke", output=tmp_path / "run", figures=tmp_path / "figures"
    )
    produced = {p.name for p in summary.written}
    missing = [name for name in readme_outputs() if name not in produced]
    assert not missing, f"listed in README.md but not produced by the smoke run: {missing}"
