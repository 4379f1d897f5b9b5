"""Every table and figure the outputs page lists (docs/outputs.md, linked from the README) is
produced by a smoke run of the notebooks."""

import re
from pathlib import Path

import pandas as pd
import pytest

from handpose_lib import plots

README = Path(__file__).resolve().parents[1] / "README.md"
OUTPUTS = README.parent / "docs" / "outputs.md"


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
    formats = plots.figure_formats()  # the session writes PNG only (conftest.py)
    listed = [
        n
        for n in readme_outputs()
        if n.rsplit(".", 1)[-1] not in ("png", "pdf") or n.rsplit(".", 1)[-1] in formats
    ]
    missing = [name for name in listed if name not in produced]
    assert not missing, f"listed in docs/outputs.md but not produced by the smoke run: {missing}"


def test_the_readme_verdict_is_the_committed_pair_tests():
    """The README's table of the self-comparison's pair tests is figures/self_comparison_pairs.csv
    (written by notebook 04), so the two cannot disagree."""
    pairs = pd.read_csv(README.parent / "figures" / "self_comparison_pairs.csv")
    text = README.read_text()
    for _, row in pairs.iterrows():
        line = (
            f"| {row['paper: worse']} > {row['paper: better']} | {row['difference (mm)']:+.2f} "
            f"[{row['interval low (mm)']:.2f}, {row['interval high (mm)']:.2f}] | {row['seeds']} | "
            f"**{row['status']}** |"
        )
        assert line in text, f"README lacks the pair test row {line}"
    verdict = (README.parent / "figures" / "self_comparison.md").read_text()
    status = (
        "REVERSED" if "is REVERSED" in verdict else "HOLDS" if "HOLDS" in verdict else "UNRESOLVED"
    )
    assert f"is **{status.lower()}** at the shipped" in text
