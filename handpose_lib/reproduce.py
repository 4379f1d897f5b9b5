"""Run the numbered notebooks headless through papermill, in order, and summarize.

    python -m handpose_lib.reproduce [--profile smoke|cpu|paper]
                                     [--dataset synthetic|icvl|nyu]
                                     [--data-root PATH] [--output DIR]

Executed notebooks go to `--output` (default `outputs/<profile>-<dataset>/`, ignored by
git); tables and figures to `figures/` (or --figures-dir). Each notebook receives only the
parameters its `parameters` cell declares, from: PROFILE, DATASET, DATA_ROOT, OUTPUT_DIR
(the figures folder) and RUN_DIR (the run folder, through which notebooks hand trained
models to later notebooks). A failing notebook stops the run, naming notebook and cell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from handpose_lib.paths import ENV_HEADLESS, ENV_RUN_DIR, REPO_ROOT, figures_dir

PROFILES = ("smoke", "cpu", "paper")
# Longest a single cell may run before the run is declared hung (None: no limit). A paper-size
# training cell legitimately runs for hours on a GPU.
CELL_TIMEOUT_S = {"smoke": 600, "cpu": 3600, "paper": None}
DATASETS = ("synthetic", "icvl", "nyu")
HEADLINES_FILE = "headlines.json"


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook and the failing cell."""


@dataclass
class RunSummary:
    notebook_seconds: dict[str, float] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    headlines: dict[str, object] = field(default_factory=dict)

    def format(self) -> str:
        lines = ["", "=== reproduction summary ===", "notebooks:"]
        lines += [f"  {name:<40s} {secs:8.1f} s" for name, secs in self.notebook_seconds.items()]
        tables = [p for p in self.written if p.suffix in (".csv", ".md")]
        figures = [p for p in self.written if p.suffix in (".png", ".pdf")]
        lines.append(f"tables ({len(tables)}):")
        lines += [f"  {p}" for p in tables]
        lines.append(f"figures ({len(figures)}):")
        lines += [f"  {p}" for p in figures]
        lines.append("headline numbers:")
        lines += [f"  {key}: {value}" for key, value in self.headlines.items()]
        return "\n".join(lines)


def numbered_notebooks(notebook_dir: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """Notebooks named `NN_*.ipynb`, in number order."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def record_headline(key: str, value: object) -> None:
    """Called from notebooks: store a headline number for the runner's summary.

    Outside a runner (no HANDPOSE_RUN_DIR) it only prints, so notebooks run unchanged in
    Jupyter.
    """
    print(f"headline: {key} = {value}")
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        return
    path = Path(run_dir) / HEADLINES_FILE
    headlines = json.loads(path.read_text()) if path.exists() else {}
    headlines[key] = value
    path.write_text(json.dumps(headlines, indent=2))


def notebook_parameters(notebook: Path, available: dict[str, object]) -> dict[str, object]:
    """The subset of `available` that the notebook's parameters cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: value for name, value in available.items() if name in declared}


def run_notebook(
    notebook: Path,
    executed: Path,
    parameters: dict[str, object],
    cell_timeout_s: int | None = None,
) -> None:
    import papermill

    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=cell_timeout_s,
        )
    except papermill.PapermillExecutionError as err:
        raise NotebookFailed(
            f"notebook {notebook.name} failed in cell {err.cell_index} "
            f"(execution count {err.exec_count}): {err.ename}: {err.evalue}\n"
            f"executed copy with the traceback: {executed}"
        ) from None
    except TimeoutError as err:  # nbclient's CellTimeoutError
        raise NotebookFailed(
            f"notebook {notebook.name}: a cell ran longer than {cell_timeout_s} s ({err}); "
            f"partial executed copy: {executed}"
        ) from None


def reproduce(
    profile: str = "cpu",
    dataset: str = "synthetic",
    data_root: str | None = None,
    output: str | os.PathLike | None = None,
    figures: str | os.PathLike | None = None,
    notebooks: list[Path] | None = None,
) -> RunSummary:
    """Run every numbered notebook in order; raise NotebookFailed at the first failure."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: expected one of {PROFILES}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: expected one of {DATASETS}")
    if dataset != "synthetic" and not data_root:
        raise ValueError(f"--dataset {dataset} needs --data-root (the downloaded dataset)")
    run_dir = Path(output) if output else REPO_ROOT / "outputs" / f"{profile}-{dataset}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / HEADLINES_FILE).unlink(missing_ok=True)
    fig_dir = figures_dir(figures)
    available = {
        "PROFILE": profile,
        "DATASET": dataset,
        "DATA_ROOT": data_root or "",
        "OUTPUT_DIR": str(fig_dir.resolve()),
        "RUN_DIR": str(run_dir.resolve()),
    }
    summary = RunSummary()
    started = time.time()
    previous_run_dir = os.environ.get(ENV_RUN_DIR)
    os.environ[ENV_RUN_DIR] = str(run_dir.resolve())  # inherited by the kernels
    os.environ[ENV_HEADLESS] = "1"  # explorers draw one static view instead of widgets
    try:
        for notebook in notebooks if notebooks is not None else numbered_notebooks():
            print(f"--> {notebook.name}", flush=True)
            t0 = time.time()
            run_notebook(
                notebook,
                run_dir / notebook.name,
                notebook_parameters(notebook, available),
                CELL_TIMEOUT_S[profile],
            )
            summary.notebook_seconds[notebook.name] = time.time() - t0
    finally:
        if previous_run_dir is None:
            os.environ.pop(ENV_RUN_DIR, None)
        else:
            os.environ[ENV_RUN_DIR] = previous_run_dir
    summary.written = sorted(
        p for p in fig_dir.iterdir() if p.is_file() and p.stat().st_mtime >= started - 1
    )
    headlines_path = run_dir / HEADLINES_FILE
    if headlines_path.exists():
        summary.headlines = json.loads(headlines_path.read_text())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handpose_lib.reproduce", description=__doc__)
    parser.add_argument("--profile", choices=PROFILES, default="cpu")
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic")
    parser.add_argument("--data-root", help="root of the downloaded ICVL or NYU dataset")
    parser.add_argument("--output", help="run folder for executed notebooks and models")
    parser.add_argument("--figures-dir", help="where tables and figures go (default figures/)")
    args = parser.parse_args(argv)
    try:
        summary = reproduce(
            args.profile, args.dataset, args.data_root, args.output, args.figures_dir
        )
    except (NotebookFailed, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
