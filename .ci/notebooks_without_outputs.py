#!/usr/bin/env python3
"""Refuse notebooks committed with outputs (the pre-commit hook; tests/test_notebooks_clean.py
checks the same on every test run).

    python .ci/notebooks_without_outputs.py notebooks/*.ipynb

Exit status 1 names each notebook and the cells that hold outputs or execution counts, with
the command that clears them. Reads the JSON directly: no Jupyter package needed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cells_with_outputs(path: Path) -> list[int]:
    """Indices of the code cells of `path` that hold outputs or an execution count."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [
        i
        for i, cell in enumerate(cells)
        if cell.get("cell_type") == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def main(paths: list[str]) -> int:
    dirty = {p: cells for p in paths if (cells := cells_with_outputs(Path(p)))}
    for path, cells in dirty.items():
        print(
            f"{path}: cells {cells} hold outputs "
            f"(clear them: jupyter nbconvert --clear-output --inplace {path})",
            file=sys.stderr,
        )
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
