"""How long a student waits: notebooks 01-05 executed in order, as opened interactively (their
defaults, widgets on), into one new run folder; per notebook the cell time up to its first
figure and up to its explorer (kernel start not included), with the machine's matmul rate.

    python benchmarks/notebook_open_times.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import papermill

from handpose_lib import machine
from handpose_lib.paths import REPO_ROOT


def cell_times(executed: Path) -> tuple[float | None, float | None]:
    """Seconds of cell time up to the first cell that drew a figure and up to the explorer."""
    cells = json.loads(executed.read_text())["cells"]
    elapsed, first_figure, explorer = 0.0, None, None
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        elapsed += cell["metadata"].get("papermill", {}).get("duration") or 0.0
        drew = any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        if drew and first_figure is None:
            first_figure = elapsed
        if "nb.explore(" in "".join(cell["source"]):
            explorer = elapsed
    return first_figure, explorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the run and the executed copies (default: temp)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="open-times-"))
    for name in ("HANDPOSE_PROFILE", "HANDPOSE_HEADLESS", "HANDPOSE_RUN_DIR"):
        os.environ.pop(name, None)  # a student's defaults
    rate = machine.matmul_gflops()
    print(f"float32 matmul {rate:.0f} GFLOP/s; run folder {out / 'run'}\n")
    print(
        "| notebook | first figure (s) | explorer (s) | explorer at 100 GFLOP/s (s) | whole (s) |"
    )
    print("|---|---:|---:|---:|---:|")
    for notebook in sorted((REPO_ROOT / "notebooks").glob("0[1-5]_*.ipynb")):
        executed = out / notebook.name
        started = time.perf_counter()
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters={"RUN_DIR": str(out / "run"), "OUTPUT_DIR": str(out / "figures")},
            kernel_name="python3",
            progress_bar=False,
        )
        whole = time.perf_counter() - started
        first, explorer = cell_times(executed)
        scaled = machine.at_reference_rate(explorer or 0.0, rate)
        cells = f"{first or 0:.1f} | {explorer or 0:.1f} | {scaled:.0f} | {whole:.1f}"
        print(f"| {notebook.stem} | {cells} |")


if __name__ == "__main__":
    main()
