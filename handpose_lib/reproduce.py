"""Run the numbered notebooks headless through papermill, in order, and summarize.

    python -m handpose_lib.reproduce [--profile smoke|cpu|long|paper|paper_faithful]
                                     [--dataset synthetic|icvl|nyu] [--device auto|cuda|cpu]
                                     [--rehearse]
                                     [--data-root PATH] [--output DIR] [--figures-dir DIR]
                                     [--centers FILE] [--retrain pose|all] [--jobs N]
                                     [--notebooks 01,02,03,05]
                                     [--seeds N] [--variants plain,attention]

Executed notebooks go to `--output` (default `outputs/<profile>-<dataset>/`, ignored by
git). Tables and figures of the default run (profile cpu on synthetic data) go to `figures/`;
every other profile or dataset writes them to `<output>/figures/`, so the committed figures
always show the default run (`--figures-dir` or $HANDPOSE_FIGURES_DIR choose another folder).
Each notebook receives only the parameters its `parameters` cell declares, from: PROFILE,
DATASET, DATA_ROOT, OUTPUT_DIR (the figures folder), RUN_DIR (the run folder, through which
notebooks hand trained models to later notebooks), HEADLESS=True (explorers draw one static
view: no front end listens to widgets), CENTERS (`--centers`, a community centre file) and, on
the published ICVL / NYU test set, OURS_<DATASET>_PREDICTIONS (Table 1's "Ours" row from the
attention model of notebook 03) and RETRAIN: notebooks 02-03 always train; notebook 04 evaluates
the shipped long-budget self-comparison (`pretrained/`) where it fits, and with `--retrain all`
(the default for the `long` profile, which makes those weights) trains every variant as well;
JOBS (`--jobs`): how many of notebook 04's trainings run at once; SEEDS and VARIANTS
(`--seeds`, `--variants`): notebook 04's seeds per variant and the variants it compares (default:
the profile's seeds, all four). With the `paper` profile notebook 05 runs before notebook 04, so
Table 1's "Ours" row comes after two trainings (LocNet, the attention model), not after the
self-comparison's thirteen. `--notebooks` runs a subset,
by number, in number order (a later notebook uses what earlier ones left in the run folder, and
falls back as it says where they did not run: CoM centres without notebook 02's LocNet).

Before the first notebook the published files the notebooks evaluate against are fetched
(downloaded once into the cache, verified by sha256), so a missing network stops the run at
once with one line. While a notebook runs, one line shows the notebook, the cell and, during a
training, the epoch, step and time left (read from the `progress.json` the trainer writes in
the run folder); it refreshes in place on a terminal and is printed every 30 s otherwise.
A failing notebook stops the run, naming notebook and cell.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd
import pooch
import torch

from handpose_lib import ablation, machine, profiles, published, rehearsal
from handpose_lib.datasets.icvl import IcvlSource
from handpose_lib.datasets.nyu import NyuSource
from handpose_lib.datasets.published_split import check_published_source
from handpose_lib.paths import (
    COMMITTED_FIGURES,
    ENV_CROP_CACHE_DIR,
    ENV_FIGURES_DIR,
    ENV_HEADLESS,
    ENV_RUN_DIR,
    REPO_ROOT,
    figures_dir,
)

# The progress line lives in progress_line; "X as X" keeps its names importable from here.
from handpose_lib.progress_line import PROGRESS_FILE as PROGRESS_FILE
from handpose_lib.progress_line import REFRESH_S as REFRESH_S
from handpose_lib.progress_line import NotebookProgress, ProgressLine, count_executed_cells
from handpose_lib.progress_line import TrainingProgress as TrainingProgress
from handpose_lib.progress_line import format_duration as format_duration
from handpose_lib.progress_line import format_progress as format_progress
from handpose_lib.progress_line import latest_training_progress as latest_training_progress
from handpose_lib.tables import write_table
from handpose_lib.training import preflight
from handpose_lib.training.data import centers_option
from handpose_lib.uvd_format import FormatError

PROFILES = tuple(profiles.PROFILES)
DATASETS = profiles.DATA_CHOICES
# The run whose tables and figures are committed under figures/.
DEFAULT_PROFILE, DEFAULT_DATASET = "cpu", "synthetic"
HEADLINES_FILE = "headlines.json"
# The attention model's test predictions at the localization net's centres, written by
# notebook 03 (`notebook.Session.evaluate_at_centres`); on the published ICVL / NYU test set
# they are Table 1's "Ours" row in notebook 05.
OURS_PREDICTIONS = Path("predictions") / "attention_seed0.txt"
# The notebook whose RETRAIN follows --retrain; every other notebook's RETRAIN is True.
SELF_COMPARISON_NOTEBOOK = "04_self_comparison"
RETRAIN_CHOICES = ("pose", "all")

# The kernel's own log (TCP transport warnings, "KeyboardInterrupt caught in kernel" when the
# kernel manager interrupts it on shutdown) says nothing a user can act on; errors in the
# notebook's cells reach the runner through the executed notebook, not this log. Kernel
# connections are encrypted where pyzmq supports CurveZMQ (the kernelspec declares it).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook and the failing cell."""


@dataclass
class RunSummary:
    notebook_seconds: dict[str, float] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    headlines: dict[str, object] = field(default_factory=dict)
    figures_dir: Path | None = None
    matmul_gflops: float | None = None
    rehearsal_report: rehearsal.Report | None = None

    def format(self) -> str:
        lines = ["", "=== reproduction summary ===", "notebooks:"]
        lines += [f"  {name:<40s} {secs:8.1f} s" for name, secs in self.notebook_seconds.items()]
        total = sum(self.notebook_seconds.values())
        lines.append(f"  {'all notebooks':<40s} {total:8.1f} s")
        if self.matmul_gflops:
            scaled = machine.at_reference_rate(total, self.matmul_gflops)
            lines.append(
                f"machine: float32 matmul {self.matmul_gflops:.0f} GFLOP/s "
                f"({torch.get_num_threads()} threads); the same run at "
                f"{machine.REFERENCE_GFLOPS:.0f} GFLOP/s: about {scaled / 60:.0f} min"
            )
        tables = [p for p in self.written if p.suffix in (".csv", ".md")]
        figures = [p for p in self.written if p.suffix in (".png", ".pdf")]
        where = f" in {self.figures_dir}" if self.figures_dir else ""
        lines.append(f"tables ({len(tables)}){where}:")
        lines += [f"  {p.name}" for p in tables]
        lines.append(f"figures ({len(figures)}){where}:")
        lines += [f"  {p.name}" for p in figures]
        lines.append("headline numbers:")
        lines += [f"  {key}: {value}" for key, value in self.headlines.items()]
        return "\n".join(lines)


NOTEBOOK_TIMES = "notebook_times"  # <figures>/notebook_times.{csv,md}: the runner's own timings


def notebook_times_table(summary: RunSummary, profile: str, dataset: str) -> pd.DataFrame:
    """One row per notebook of a run: wall seconds here and scaled to the reference rate."""
    rate = summary.matmul_gflops
    rows = [
        {
            "notebook": name,
            "profile": profile,
            "dataset": dataset,
            "seconds": round(secs, 1),
            "matmul GFLOP/s": round(rate) if rate else None,
            f"seconds at {machine.REFERENCE_GFLOPS:.0f} GFLOP/s": (
                round(machine.at_reference_rate(secs, rate), 1) if rate else None
            ),
        }
        for name, secs in summary.notebook_seconds.items()
    ]
    return pd.DataFrame(rows)


def write_notebook_times(
    summary: RunSummary, profile: str, dataset: str, fig_dir: Path
) -> list[Path]:
    """Merge this run's timings into <fig_dir>/notebook_times.csv (rows of other profiles and
    datasets kept, this run's replace its own notebooks') and write the markdown beside it: the
    one table of notebook times that the notebooks and the README quote."""
    csv_path = fig_dir / f"{NOTEBOOK_TIMES}.csv"
    new = notebook_times_table(summary, profile, dataset)
    if csv_path.is_file():
        old = pd.read_csv(csv_path)
        keys = set(zip(new["notebook"], new["profile"], new["dataset"], strict=True))
        kept = [
            k not in keys for k in zip(old["notebook"], old["profile"], old["dataset"], strict=True)
        ]
        new = pd.concat([old[kept], new], ignore_index=True)
    new = new.sort_values(["profile", "dataset", "notebook"], ignore_index=True)
    return write_table(new, fig_dir, NOTEBOOK_TIMES)


def measured_notebook_time(
    notebook: str, profile: str, dataset: str = DEFAULT_DATASET, fig_dir: Path | None = None
) -> pd.Series | None:
    """The row of `notebook` (e.g. "03_pose_training.ipynb") in the runner's timing table, or
    None when no run of that profile and dataset wrote one."""
    path = (fig_dir or COMMITTED_FIGURES) / f"{NOTEBOOK_TIMES}.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    rows = table[
        (table["notebook"] == notebook)
        & (table["profile"] == profile)
        & (table["dataset"] == dataset)
    ]
    return None if rows.empty else rows.iloc[0]


def numbered_notebooks(notebook_dir: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """Notebooks named `NN_*.ipynb`, in number order."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


# Profiles whose self-comparison costs many trainings at full size: notebook 05 (Table 1 and
# Fig. 3 with this package's row) runs before notebook 04.
TABLE1_FIRST_PROFILES = ("paper", "paper_faithful")
TABLE1_NOTEBOOK = "05_table1_and_figure3"


def table1_first(notebooks: list[Path]) -> list[Path]:
    """`notebooks` with notebook 05 moved before the self-comparison (04), when both run."""
    names = [p.stem for p in notebooks]
    if TABLE1_NOTEBOOK not in names or SELF_COMPARISON_NOTEBOOK not in names:
        return list(notebooks)
    table1 = notebooks[names.index(TABLE1_NOTEBOOK)]
    rest = [p for p in notebooks if p != table1]
    at = [p.stem for p in rest].index(SELF_COMPARISON_NOTEBOOK)
    return [*rest[:at], table1, *rest[at:]]


def select_notebooks(numbers: str, notebook_dir: Path = REPO_ROOT / "notebooks") -> list[Path]:
    """The numbered notebooks whose numbers `numbers` lists ("01,02,03,05" or "1,2,3,5"),
    in number order; a ValueError names an unknown number and the known ones."""
    by_number = {int(p.name[:2]): p for p in numbered_notebooks(notebook_dir)}
    chosen = set()
    for token in (t.strip() for t in numbers.split(",")):
        if not token:
            continue
        if not token.isdigit() or int(token) not in by_number:
            known = ",".join(f"{n:02d}" for n in sorted(by_number))
            raise ValueError(f"--notebooks: no notebook numbered {token!r} (known: {known})")
        chosen.add(int(token))
    if not chosen:
        raise ValueError(f"--notebooks {numbers!r}: name at least one notebook number")
    return [by_number[n] for n in sorted(chosen)]


def record_headline(key: str, value: object) -> None:
    """Called from notebooks: store a headline number for the runner's summary.

    Outside a runner (no HANDPOSE_RUN_DIR) it only prints, so notebooks run unchanged in
    Jupyter. A run folder that does not exist yet is created.
    """
    print(f"headline: {key} = {value}")
    run_dir = os.environ.get(ENV_RUN_DIR)
    if not run_dir:
        return
    path = Path(run_dir) / HEADLINES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    headlines = json.loads(path.read_text()) if path.exists() else {}
    headlines[key] = value
    path.write_text(json.dumps(headlines, indent=2))


def resolve_retrain(profile: str, retrain: str | None) -> str:
    """`retrain`, checked; None means "all" for the long profile (it makes the shipped
    weights), "pose" otherwise."""
    retrain = retrain or ("all" if profile == "long" else "pose")
    if retrain not in RETRAIN_CHOICES:
        raise ValueError(f"retrain {retrain!r}: expected one of {RETRAIN_CHOICES}")
    return retrain


def retrain_parameter(notebook: Path, retrain: str) -> bool:
    """The RETRAIN parameter of `notebook`: True (train here) except for the self-comparison
    with retrain "pose", which evaluates the shipped weights."""
    return retrain == "all" or notebook.stem != SELF_COMPARISON_NOTEBOOK


def declared_parameters(notebook: Path) -> set[str]:
    """Names the notebook's parameters cell declares."""
    # papermill, nbformat, zmq and traitlets are imported where used: every notebook imports
    # record_headline from this module, and papermill alone takes seconds to import.
    import papermill  # noqa: PLC0415

    return set(papermill.inspect_notebook(str(notebook)))


def notebook_parameters(notebook: Path, available: dict[str, object]) -> dict[str, object]:
    """The subset of `available` that the notebook's parameters cell declares."""
    declared = declared_parameters(notebook)
    return {name: value for name, value in available.items() if name in declared}


def ours_parameters(
    dataset: str, data_root: str | None, run_dir: Path, stream: TextIO
) -> dict[str, object]:
    """OURS_<DATASET>_PREDICTIONS for notebook 05, when the model's predictions cover the
    published test set of a real dataset in its order; otherwise {} and a line saying why
    Table 1 keeps the printed "Ours" values."""
    path = run_dir / OURS_PREDICTIONS
    if dataset == "synthetic" or not data_root or not path.is_file():
        return {}
    source_type = IcvlSource if dataset == "icvl" else NyuSource
    try:
        check_published_source(source_type(data_root, split="test", check_counts=False))
    except (FormatError, OSError) as err:
        print(f"Table 1 keeps the printed 'Ours' row: {err}", file=stream, flush=True)
        return {}
    lines = sum(1 for line in path.read_text().splitlines() if line.strip())
    frames = published.test_frame_count(dataset)
    if lines != frames:
        print(
            f"Table 1 keeps the printed 'Ours' row: {path} has {lines} frames, the published "
            f"{dataset.upper()} test set {frames} (the profile validates on a subset)",
            file=stream,
            flush=True,
        )
        return {}
    return {f"OURS_{dataset.upper()}_PREDICTIONS": str(path)}


def default_run_dir(profile: str, dataset: str) -> Path:
    return REPO_ROOT / "outputs" / f"{profile}-{dataset}"


def run_figures_dir(
    profile: str, dataset: str, run_dir: Path, override: str | os.PathLike | None = None
) -> Path:
    """Where a run's tables and figures go (created).

    `override`, else $HANDPOSE_FIGURES_DIR, else figures/ for the default run and
    `<run_dir>/figures` for any other profile or dataset: only the default run may replace
    the committed figures.
    """
    if override or os.environ.get(ENV_FIGURES_DIR):
        return figures_dir(override)
    if (profile, dataset) == (DEFAULT_PROFILE, DEFAULT_DATASET):
        return figures_dir(COMMITTED_FIGURES)
    return figures_dir(run_dir / "figures")


# --- running ----------------------------------------------------------------------------


def run_notebook(
    notebook: Path,
    executed: Path,
    parameters: dict[str, object],
    cell_timeout_s: int | None = None,
    on_cell_execute=None,
) -> None:
    import papermill  # noqa: PLC0415 (lazy: see declared_parameters)
    import zmq  # noqa: PLC0415
    from traitlets.config import Config  # noqa: PLC0415

    encryption = "auto" if zmq.has("curve") else "disabled"  # "auto": if the kernelspec can
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=cell_timeout_s,
            # passed on to nbclient's NotebookClient
            config=Config({"KernelManager": {"transport_encryption": encryption}}),
            extra_arguments=list(KERNEL_ARGUMENTS),
            on_cell_execute=on_cell_execute,
        )
    except papermill.PapermillExecutionError as err:
        if err.ename == published.PublishedUnavailable.__name__:
            # Not a bug in the notebook: the one line says what to do.
            raise NotebookFailed(f"notebook {notebook.name}: {err.evalue}") from None
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


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs one line per file; the runner prints its own summary instead."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def prefetch_published(stream: TextIO | None = None, dataset: str | None = None) -> None:
    """Fetch every published file now (verified; downloaded once into the cache), or only
    those of `dataset` ("icvl" / "nyu": what a rehearsal on that dataset reads).

    Raises PublishedUnavailable (one line) when a file can be neither found nor downloaded.
    """
    stream = stream if stream is not None else sys.stdout
    entries = [e for e in published.registry() if dataset is None or e.dataset == dataset]
    missing = published.missing_from_cache(entries)
    if missing:
        size_mb = sum(e.bytes for e in missing) / 1e6
        print(
            f"downloading {len(missing)} published files ({size_mb:.1f} MB) from "
            f"{published.base_url()} into {published.default_cache_dir()} (once)",
            file=stream,
            flush=True,
        )
    with _quiet_pooch():
        published.fetch_all(entries)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables (inherited by the kernels) and restore them afterwards."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reproduce(
    profile: str = DEFAULT_PROFILE,
    dataset: str = DEFAULT_DATASET,
    data_root: str | None = None,
    output: str | os.PathLike | None = None,
    figures: str | os.PathLike | None = None,
    notebooks: list[Path] | None = None,
    stream: TextIO | None = None,
    centers: str | None = None,
    retrain: str | None = None,
    jobs: int | None = None,
    seeds: int | None = None,
    variants: str | None = None,
    device: str = "auto",
    rehearse: bool = False,
) -> RunSummary:
    """Run every numbered notebook (or `notebooks`) in order; raise NotebookFailed at the
    first failure. The published files are fetched first when the numbered notebooks run.

    retrain: "pose" (notebook 04 loads the shipped self-comparison where it fits) or "all"
    (it trains every variant too); None: "all" for the long profile, else "pose".
    device: "auto", "cuda" or "cpu" for the notebooks' trainings (the `paper` profiles
    refuse a CPU unless it is named: `training.preflight`).
    rehearse: the rehearsal of `profile` instead (`handpose_lib.rehearsal`): every stage at
    the profile's sizes for a few steps, then the CLI stages and the projected cost of the
    full run; its outputs go to its own run folder."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: expected one of {PROFILES}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r}: expected one of {DATASETS}")
    if dataset != "synthetic" and not data_root:
        raise ValueError(f"--dataset {dataset} needs --data-root (the downloaded dataset)")
    stream = stream if stream is not None else sys.stdout
    # Absolute, as the trainer's --data-root: a run's data root decides whether notebook 04
    # may reuse a finished run (one of a Slurm array, say), whatever spelling reached here.
    data_root = str(Path(data_root).expanduser().resolve()) if data_root else data_root
    device = check_runner(profile, dataset, device, stream)
    if rehearse:
        retrain, seeds = "all", 1
        variants = variants or ",".join(rehearsal.REHEARSAL_VARIANTS)
        run_profile = profiles.rehearsal_name(profile, cpu=device == "cpu")
        output = output or default_run_dir(profile, dataset).with_name(
            f"{profile}-{dataset}-rehearsal"
        )
    else:
        run_profile = profile
    retrain = resolve_retrain(profile, retrain)
    run_dir = (Path(output) if output else default_run_dir(profile, dataset)).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / HEADLINES_FILE).unlink(missing_ok=True)
    if rehearse:  # never figures/, whatever $HANDPOSE_FIGURES_DIR says
        fig_dir = figures_dir(figures or run_dir / "figures").resolve()
    else:
        fig_dir = run_figures_dir(profile, dataset, run_dir, figures).resolve()
    available = {
        "PROFILE": run_profile,
        "DEVICE": device,
        "DATASET": dataset,
        "DATA_ROOT": data_root or "",
        "OUTPUT_DIR": str(fig_dir),
        "RUN_DIR": str(run_dir),
        "HEADLESS": True,
        "CENTERS": centers_option(centers) if centers else "",
    }
    if seeds is not None:
        if seeds < 1:
            raise ValueError(f"--seeds {seeds}: expected at least one seed per variant")
        available["SEEDS"] = seeds
    if variants is not None:
        available["VARIANTS"] = variants
    if notebooks is None:
        notebooks = numbered_notebooks()
    if profile in TABLE1_FIRST_PROFILES:
        notebooks = table1_first(notebooks)
    if jobs is None:
        jobs = ablation.default_jobs(ablation.visible_devices(device))
    check_loaders(run_profile, dataset, jobs)
    available["JOBS"] = jobs
    # The package's own notebooks (not a test's): they need the published files and are timed.
    own_notebooks = bool(notebooks) and all(p.parent == REPO_ROOT / "notebooks" for p in notebooks)
    # A rehearsal on ICVL or NYU reads that dataset's published files only (Table 1's rows of
    # that dataset): a GPU machine without network brings those alone.
    only = dataset if rehearse and dataset in ("icvl", "nyu") else None
    if only:
        available["DATASETS"] = only
    if own_notebooks:
        prefetch_published(stream, only)
    print(f"run folder: {run_dir}\nfigures and tables: {fig_dir}", file=stream, flush=True)
    summary = RunSummary(figures_dir=fig_dir, matmul_gflops=machine.cached_matmul_gflops())
    started = time.time()
    # The environment copies of RUN_DIR and HEADLESS reach code that does not see the
    # parameters (record_headline, helpers in subprocesses).
    kernel_env = {ENV_RUN_DIR: str(run_dir), ENV_HEADLESS: "1"}
    # One crop cache per data source and crop setting for every training of this run
    # (the `paper` profiles; `training.data.shared_cache_root`), unless the user chose one.
    kernel_env[ENV_CROP_CACHE_DIR] = os.environ.get(ENV_CROP_CACHE_DIR) or str(
        run_dir / "crop-cache"
    )
    if rehearse:  # $HANDPOSE_PROFILE (tests: smoke) would replace the rehearsal's profile
        kernel_env[profiles.ENV_PROFILE] = run_profile
    with _environment(**kernel_env):
        for number, notebook in enumerate(notebooks, start=1):
            declared = declared_parameters(notebook)
            if any(name.startswith("OURS_") for name in declared):
                if rehearse:
                    ours = rehearsal.ours_parameters(dataset, run_dir, run_dir / OURS_PREDICTIONS)
                else:
                    ours = ours_parameters(dataset, data_root, run_dir, stream)
                available.update(ours)
            available["RETRAIN"] = retrain_parameter(notebook, retrain)
            parameters = {k: v for k, v in available.items() if k in declared}
            progress = NotebookProgress(
                notebook.stem, count_executed_cells(notebook, parameters), run_dir
            )
            header = f"[{number}/{len(notebooks)}] {notebook.name}"
            print(f"{header} ...", file=stream, flush=True)
            t0 = time.time()
            with ProgressLine(progress, stream):
                run_notebook(
                    notebook,
                    run_dir / notebook.name,
                    parameters,
                    profiles.get_profile(run_profile).cell_timeout_s,
                    on_cell_execute=progress.on_cell_execute,
                )
            seconds = time.time() - t0
            summary.notebook_seconds[notebook.name] = seconds
            print(f"{header} done in {seconds:.1f} s", file=stream, flush=True)
    if own_notebooks:
        write_notebook_times(summary, profile, dataset, fig_dir)
    summary.written = sorted(
        p for p in fig_dir.iterdir() if p.is_file() and p.stat().st_mtime >= started - 1
    )
    headlines_path = run_dir / HEADLINES_FILE
    if headlines_path.exists():
        summary.headlines = json.loads(headlines_path.read_text())
    if rehearse:
        summary.rehearsal_report = finish_rehearsal(
            run_profile, dataset, data_root, device, run_dir, summary, stream
        )
    return summary


def finish_rehearsal(
    run_profile: str,
    dataset: str,
    data_root: str | None,
    device: str,
    run_dir: Path,
    summary: RunSummary,
    stream: TextIO,
) -> rehearsal.Report:
    """After the rehearsal's notebooks: the command-line stages (torchrun, --resume, predict,
    evaluate), then the stage table and the full run's projected cost, written to the run
    folder and printed."""
    print("command-line stages: torchrun, --resume, predict, evaluate", file=stream, flush=True)
    timeout = profiles.get_profile(run_profile).cell_timeout_s or 1800
    cli = rehearsal.cli_stages(run_profile, dataset, data_root, device, run_dir, timeout)
    report = rehearsal.build_report(
        run_profile, dataset, device, run_dir, summary.notebook_seconds, cli, summary.matmul_gflops
    )
    report.write(run_dir)
    print(report.markdown(), file=stream, flush=True)
    return report


def check_runner(profile: str, dataset: str, device: str, stream: TextIO) -> str:
    """The runner's preflight, before any data work: the machine in a few lines, then one
    refusal or warning each (`training.preflight`); returns the device the notebooks use
    ("cuda" or "cpu"). Refuses to run under torchrun: every rank would run every notebook
    into one run folder."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        raise preflight.PreflightError(
            f"the notebook runner is running under torchrun (WORLD_SIZE={world}): each rank "
            "would run every notebook into one run folder. Run it as one process; it spreads "
            "notebook 04's trainings over the visible GPUs itself (--jobs, one per GPU), and "
            "`python -m handpose_lib.slurm` writes a job array for a cluster"
        )
    for line in preflight.machine_lines():
        print(line, file=stream, flush=True)
    config = profiles.get_profile(profile).run_config("attention", dataset)
    return preflight.check_device(profile, device, config=config).type


def check_loaders(profile: str, dataset: str, jobs: int) -> None:
    """/dev/shm for `jobs` trainings at once, each with its DataLoader workers."""
    config = profiles.get_profile(profile).run_config("attention", dataset)
    needed = jobs * preflight.loader_shm_bytes(config)
    preflight.check_shm(needed, workers=config.train.num_workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE)
    parser.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET)
    parser.add_argument("--data-root", help="root of the downloaded ICVL or NYU dataset")
    parser.add_argument("--output", help="run folder for executed notebooks and models")
    parser.add_argument(
        "--centers",
        help="a community centre file of the test split (x y z mm or 'invalid' per frame, as "
        "V2V-PoseNet's center_test_refined.txt): evaluated beside CoM and LocNet in notebook "
        "02 and used as a fourth crop centre in notebooks 03-04",
    )
    parser.add_argument(
        "--retrain",
        choices=RETRAIN_CHOICES,
        help="pose (default): the self-comparison of notebook 04 loads the shipped long-budget "
        "weights and evaluates them; all: it trains every variant as well (default for the "
        "long profile)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="trainings of notebook 04 run at once: one per GPU (the default: as many as "
        "there are GPUs), or on a CPU each with its share of the torch threads (default 1; "
        "2 on a 2-core CPU: 1.24x faster, benchmarks/bench_throughput.py)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="where the notebooks train: auto (CUDA when usable), cuda, or cpu; the paper "
        "profiles refuse a CPU unless it is named here",
    )
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="rehearse the profile instead: every stage at its sizes for a few steps and "
        "frames, then the full run's projected cost (handpose_lib/rehearsal.py); outputs go "
        "to <output> (default outputs/<profile>-<dataset>-rehearsal)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help="notebook 04: training seeds per variant (default: the profile's)",
    )
    parser.add_argument(
        "--variants",
        help="notebook 04: comma-separated variants, at least two (default: "
        "plain,two_branch,direct,attention)",
    )
    parser.add_argument(
        "--notebooks",
        help="comma-separated notebook numbers to run, e.g. 01,02,03,05 (default: all)",
    )
    parser.add_argument(
        "--figures-dir",
        help="where tables and figures go (default: figures/ for the default run, "
        "else <output>/figures)",
    )
    args = parser.parse_args(argv)
    try:
        notebooks = select_notebooks(args.notebooks) if args.notebooks else None
        summary = reproduce(
            args.profile,
            args.dataset,
            args.data_root,
            args.output,
            args.figures_dir,
            centers=args.centers,
            retrain=args.retrain,
            jobs=args.jobs,
            notebooks=notebooks,
            seeds=args.seeds,
            variants=args.variants,
            device=args.device,
            rehearse=args.rehearse,
        )
    except (NotebookFailed, rehearsal.RehearsalFailed, ValueError, OSError) as err:
        # OSError includes published.PublishedUnavailable: one line, no traceback.
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
