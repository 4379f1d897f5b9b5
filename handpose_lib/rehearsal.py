"""The paper's route rehearsed before it is paid for: every stage of a full run, at the
profile's sizes and code paths, for a few steps and frames; then what the full run will cost.

    python -m handpose_lib.reproduce --rehearse --profile paper --dataset icvl \\
        --data-root /data/ICVL [--device cuda] [--output DIR]
    make rehearse PROFILE=paper DATASET=icvl DATA_ROOT=/data/ICVL
    python -m handpose_lib.rehearsal write-data --dataset nyu --root DIR   # a small NYU folder

A rehearsal runs, in the full run's order, notebooks 01, 02, 03, 05 and 04 (LocNet, the pose
network, Table 1 with a rehearsal "Ours" row, the self-comparison with one seed and two
variants), then a torchrun training with min(2, GPUs) processes (two gloo processes on a CPU),
its `--resume` with one process, `predict` and `evaluate` on that run. Every training keeps the
profile's networks, crops, recipe, memory format, optimizer, DataLoader workers, crop cache and
mixed precision; only `profiles.REHEARSAL_DIFFERENCES` change (steps, epochs, frames, batch on a
CPU, seeds), and notebook 04 compares `REHEARSAL_VARIANTS`. The learning checks are off (three
steps learn nothing); every other notebook check stays on. Outputs go to the rehearsal's own
run folder (default `outputs/<profile>-<dataset>-rehearsal/`), never to `figures/`.

It ends with a table (`rehearsal.md`, `rehearsal.csv` in the run folder): each stage's wall
time, samples/s (the first step of each epoch excluded), peak host and GPU memory, and the
projected time of that stage in the full run on this machine: the measured rate times the full
run's samples, plus validation at the measured inference rate, plus the crop cache scaled to
the full split (`project_training`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from handpose_lib import ablation, machine, profiles, uvd_format
from handpose_lib.datasets import writers
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource
from handpose_lib.joints import num_joints
from handpose_lib.models.posenet import VARIANTS
from handpose_lib.paths import REPO_ROOT
from handpose_lib.training import preflight
from handpose_lib.training.config import RunConfig, SourceSpec

# Notebook 04 in a rehearsal: one seed of two variants (the full run: every variant, the
# profile's seeds).
REHEARSAL_VARIANTS = ("plain", "attention")
# Run folders the notebooks train into, under the run folder (notebooks 02, 03, 04).
LOCNET_RUN, POSE_RUN, SELFCOMP_DIR = "locnet", "pose_attention", "selfcomp"
TORCHRUN_RUN = "torchrun_attention"
TABLE_NAME = "rehearsal"
# Stages a CPU cannot exercise, said under its table.
NOT_ON_A_CPU = (
    "bfloat16 autocast (CUDA only: a CPU trains in float32)",
    "CUDA kernels, cuDNN's algorithm search and pinned-memory copies",
    "NCCL (torchrun ran gloo processes) and SyncBatchNorm (CUDA only)",
    "the GPU's memory: a batch of 32 at paper size (the CPU rehearsal trains batches of "
    f"{profiles.REHEARSAL.cpu_batch})",
)
NOT_IN_ANY_REHEARSAL = (
    "learning: three steps show that every stage runs, not that the network learns "
    "(the notebooks' learning checks are off)",
    "the whole dataset: only a subset of each split is read (its cache and CoM included); a "
    "damaged file elsewhere in the split is met only by the full run",
)


class RehearsalFailed(RuntimeError):
    """A stage of the rehearsal failed; the message names the stage and its log."""


# --------------------------------------------------------------------------------------------
# The stages


@dataclass
class Stage:
    """One measured stage. samples_per_s: training samples (all processes) per second over
    the timed steps, or frames per second for predict / evaluate; None where not a rate."""

    name: str
    seconds: float | None
    samples_per_s: float | None = None
    peak_host_mb: float | None = None
    peak_gpu_mb: float | None = None
    note: str = ""
    summary: dict | None = None  # a training's summary.json as it was after this stage


def training_summary(run_dir: Path) -> dict:
    """A finished training's summary.json (what `engine.train` measured)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        raise RehearsalFailed(f"{path}: the training wrote no summary (did it finish?)")
    return json.loads(path.read_text())


def training_stage(name: str, run_dir: Path, seconds: float, note: str = "") -> Stage:
    summary = training_summary(run_dir)
    return Stage(
        name,
        seconds,
        summary.get("samples_per_s"),
        summary.get("peak_host_rss_mb"),
        summary.get("peak_gpu_mb"),
        note,
        summary,
    )


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def run_command(
    stage: str, command: list[str], log_path: Path, timeout_s: float, env: dict | None = None
) -> float:
    """Run `command` (output to `log_path`) in a session of its own, so that past the timeout
    it is killed with its children (torchrun's ranks, DataLoader workers); wall seconds.
    RehearsalFailed names the stage, the exit status and the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        ) as process,
    ):
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise RehearsalFailed(
                f"{stage}: ran past {timeout_s:.0f} s and was killed; log: {log_path}"
            ) from None
    if code != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-15:])
        raise RehearsalFailed(f"{stage}: exit status {code}; log: {log_path}\n{tail}")
    return time.perf_counter() - started


def dataset_of(config: RunConfig) -> str:
    """The joint layout of a run's frames: "icvl" (ICVL, synthetic, rendered) or "nyu"."""
    return config.data.train.dataset


def torchrun_processes(device: str) -> int:
    """min(2, GPUs) on CUDA; 2 gloo processes on a CPU."""
    if device == "cuda":
        return max(1, min(2, torch.cuda.device_count()))
    return 2


def rehearsal_config(
    profile_name: str, dataset: str, data_root: str | None, model: str = "attention"
) -> RunConfig:
    """The rehearsal profile's run of `model` on `dataset` (roots filled in)."""
    config = profiles.make_run_config(profile_name, model, dataset)
    if dataset == "synthetic":
        return config
    root = str(Path(data_root).resolve()) if data_root else None
    return config.with_overrides({"data.train.root": root, "data.val.root": root})


def cli_stages(
    profile_name: str,
    dataset: str,
    data_root: str | None,
    device: str,
    run_dir: Path,
    timeout_s: float,
) -> list[Stage]:
    """torchrun (min(2, GPUs) processes), `--resume` of it with one process, `predict` and
    `evaluate` on its predictions: the command-line route a cluster user takes."""
    config = rehearsal_config(profile_name, dataset, data_root)
    train_dir = run_dir / TORCHRUN_RUN
    # A rehearsal starts afresh: a leftover checkpoint would be resumed.
    shutil.rmtree(train_dir, ignore_errors=True)
    train_dir.mkdir(parents=True)
    config_path = run_dir / "logs" / "torchrun_config.json"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config.save(config_path)
    processes = torchrun_processes(device)
    common = ["--run-dir", str(train_dir), "--device", device, "--no-progress"]
    torchrun = _python("-m", "torch.distributed.run", "--standalone")
    torchrun += ["--nproc_per_node", str(processes), "-m", "handpose_lib.train"]
    # The ranks share the machine's cores; torchrun's own default is 1 thread per rank.
    threads = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes))}
    logs = run_dir / "logs"
    seconds = run_command(
        "torchrun",
        [*torchrun, "--config", str(config_path), *common],
        logs / "torchrun.log",
        timeout_s,
        threads,
    )
    stages = [
        training_stage(
            f"torchrun, {processes} process{'es' if processes > 1 else ''}",
            train_dir,
            seconds,
            "gloo" if device == "cpu" else "nccl",
        )
    ]
    epochs = config.train.epochs + 1
    seconds = run_command(
        "resume",
        _python("-m", "handpose_lib.train", "--resume", "--set", f"train.epochs={epochs}", *common),
        logs / "resume.log",
        timeout_s,
    )
    stages.append(training_stage("--resume with 1 process", train_dir, seconds, "epoch 2"))
    predictions = run_dir / "predictions" / f"{TORCHRUN_RUN}.txt"
    labels = logs / f"{TORCHRUN_RUN}_labels.txt"
    seconds = run_command(
        "predict",
        _python(
            "-m", "handpose_lib.predict", str(train_dir), str(predictions),
            "--device", device, "--labels-out", str(labels),
        ),
        logs / "predict.log",
        timeout_s,
    )  # fmt: skip
    frames = len(uvd_format.read_uvd(predictions, num_joints(dataset_of(config))))
    stages.append(Stage("predict", seconds, frames / seconds, note=f"{frames} frames"))
    seconds = run_command(
        "evaluate",
        _python(
            "-m", "handpose_lib.evaluate", dataset_of(config),
            str(predictions), "--gt", str(labels),
        ),
        logs / "evaluate.log",
        timeout_s,
    )  # fmt: skip
    stages.append(Stage("evaluate", seconds, frames / seconds, note=f"{frames} frames"))
    return stages


# --------------------------------------------------------------------------------------------
# What the full run will cost


@dataclass(frozen=True)
class Projection:
    """The full run's time of one training, from a rehearsal's measured rates.

    samples:      training samples the full run draws (epochs x steps x batch per step).
    train_s:      samples / the measured samples per second.
    val_s:        the validations (every `val_every` epochs and after the last) of the full
                  validation set at the measured inference rate (frames / s).
    cache_s:      the crop cache (or CoM centres) of the full training split, scaled from the
                  rehearsal's data preparation time per frame.
    """

    samples: int
    train_s: float
    val_s: float
    cache_s: float

    @property
    def total_s(self) -> float:
        return self.train_s + self.val_s + self.cache_s


def full_frames(spec: SourceSpec) -> int:
    """Frames a full run reads from `spec`: its count, or the whole split
    (`preflight.source_frames`, the estimate the disk check uses too)."""
    frames = preflight.source_frames(spec)
    if frames is None:
        raise ValueError(f"{spec.kind} {spec.split}: the split's size is not known")
    return frames


def full_samples(config: RunConfig) -> int:
    """Training samples of the full run `config`: epochs x optimizer steps x batch."""
    tc, spec = config.train, config.data.train
    steps = full_frames(spec) // tc.batch_size
    if tc.steps_per_epoch:
        steps = min(steps, tc.steps_per_epoch)
    return tc.epochs * steps * tc.batch_size


def inference_rate(summary: dict) -> float | None:
    """Validation frames per second a training measured (its summary's val_frames / val_s)."""
    seconds, frames = summary.get("val_s"), summary.get("val_frames")
    return frames / seconds if seconds and frames else None


def project_training(
    full: RunConfig, summary: dict, inference_frames_per_s: float | None = None
) -> Projection:
    """The full run `full`'s time from a rehearsal training's `summary` (its samples_per_s,
    data_prep_s over data_prep_frames) and an inference rate (default: the validation rate
    the same training measured, `inference_rate`)."""
    rate = summary.get("samples_per_s")
    if not rate or rate <= 0:
        raise ValueError(f"no training rate measured ({summary.get('name', '?')}: {rate!r})")
    if inference_frames_per_s is None:
        inference_frames_per_s = inference_rate(summary)
    samples = full_samples(full)
    val_s = 0.0
    val = full.data.val
    if val is not None and inference_frames_per_s:
        passes = math.ceil(full.train.epochs / full.train.val_every)
        val_s = passes * full_frames(val) / inference_frames_per_s
    cache_s = 0.0
    prep_s, prep_frames = summary.get("data_prep_s"), summary.get("data_prep_frames")
    if prep_s and prep_frames:
        cache_s = prep_s / prep_frames * full_frames(full.data.train)
    return Projection(samples, samples / rate, val_s, cache_s)


def selfcomp_trainings(profile: profiles.Profile) -> int:
    """Trainings notebook 04 runs in a full run: every variant x the profile's seeds, less the
    attention seed-0 run notebook 03 trained."""
    return len(VARIANTS) * len(profile.seeds) - 1


def format_hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def projection_rows(
    base: profiles.Profile,
    dataset: str,
    summaries: dict[str, dict],
    notebook_s: dict[str, float],
    inference_frames_per_s: float | None,
    devices: int,
    torchrun_summary: dict | None,
) -> list[dict[str, object]]:
    """Rows of the full run's projected times: LocNet, the pose network, Table 1 reached after
    both (plus the measured wall time of notebooks 01 and 05, which train nothing), and the
    self-comparison on 1 device, on `devices` (one job each), and under torchrun over
    `devices` with the batch split (as today) or 32 per process (ideal scaling assumed)."""
    rows: list[dict[str, object]] = []

    def add(stage: str, seconds: float, how: str) -> None:
        rows.append(
            {
                "stage": stage,
                "projected": format_hours(seconds),
                "seconds": round(seconds),
                "how": how,
            }
        )

    locnet = project_training(
        base.run_config("locnet", dataset), summaries[LOCNET_RUN], inference_frames_per_s
    )
    pose_full = base.run_config("attention", dataset)
    pose = project_training(pose_full, summaries[POSE_RUN], inference_frames_per_s)
    for name, p in (("LocNet (notebook 02)", locnet), ("pose network (notebook 03)", pose)):
        add(
            name,
            p.total_s,
            f"{p.samples:,} samples at the measured rate ({format_hours(p.train_s)}) + "
            f"validation {format_hours(p.val_s)} + crop cache / CoM {format_hours(p.cache_s)}",
        )
    fixed = sum(s for n, s in notebook_s.items() if n.startswith(("01_", "05_")))
    add(
        "Table 1 reached after",
        locnet.total_s + pose.total_s + fixed,
        f"LocNet + pose network + notebooks 01 and 05 as measured ({fixed:.0f} s)",
    )
    runs = selfcomp_trainings(base)
    selfcomp = [s for k, s in summaries.items() if k.startswith(SELFCOMP_DIR)]
    per_run = float(
        np.mean([project_training(pose_full, s, inference_frames_per_s).total_s for s in selfcomp])
        if selfcomp
        else pose.total_s
    )
    add(
        "self-comparison (notebook 04), 1 device",
        runs * per_run,
        f"{runs} trainings ({len(VARIANTS)} variants x {len(base.seeds)} seeds, one reused "
        f"from notebook 03) x {format_hours(per_run)}",
    )
    if devices > 1:
        add(
            f"self-comparison, {devices} GPUs, one job each",
            math.ceil(runs / devices) * per_run,
            f"ceil({runs} / {devices}) rounds x {format_hours(per_run)}",
        )
    if torchrun_summary and torchrun_summary.get("samples_per_s"):
        world = int(torchrun_summary.get("world_size", 1))
        split = project_training(pose_full, torchrun_summary, inference_frames_per_s)
        add(
            f"self-comparison, torchrun {world} processes, batch {base.train.batch_size} split",
            runs * split.total_s,
            f"the torchrun stage's rate ({torchrun_summary['samples_per_s']:.2f} samples/s over "
            f"{world} processes): the step's batch split, {base.train.batch_size // world} each",
        )
        per_process = dataclasses.replace(pose, train_s=pose.train_s / world)
        add(
            f"self-comparison, torchrun {world} processes, {base.train.batch_size} per process",
            runs * per_process.total_s,
            f"train.batch_scope=per_process: {world} x the samples per step, so 1/{world} of "
            "the steps; ideal scaling assumed (the all-reduce is not measured here)",
        )
    return rows


def cache_disk_rows(base: profiles.Profile, dataset: str) -> list[dict[str, object]]:
    """The crop caches a full run builds (shared by its runs where the profile caches this
    dataset), with their size from `training.preflight.crop_cache_bytes`."""
    if base.crop_cache is None or dataset not in base.cache_data:
        return [{"cache": f"none ({base.name} caches no {dataset} crops)", "GiB": 0.0}]
    rows = []
    for what, model in (("pose training crops", "attention"), ("LocNet training crops", "locnet")):
        config = base.run_config(model, dataset)
        frames = full_frames(config.data.train)
        rows.append(
            {
                "cache": f"{what} ({frames:,} frames)",
                "GiB": preflight.crop_cache_bytes(config, frames) / 2**30,
            }
        )
    config = base.run_config("attention", dataset)
    val = config.data.val
    if val is not None:
        frames = full_frames(val)
        rows.append(
            {
                "cache": f"test crops at 3 centres (LocNet, CoM, oracle; {frames:,} frames each)",
                "GiB": 3 * preflight.crop_cache_bytes(config, frames) / 2**30,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# Table 1's "Ours" row in a rehearsal


def ours_parameters(dataset: str, run_dir: Path, predictions: Path) -> dict[str, object]:
    """Notebook 05's parameters for a rehearsal "Ours" row: the attention model's predictions
    (notebook 03, at LocNet's centres), the labels of the same frames (written beside them),
    and the note that marks the row. {} on synthetic data (Table 1 is ICVL and NYU)."""
    if dataset not in ("icvl", "nyu") or not predictions.is_file():
        return {}
    val = RunConfig.load(run_dir / POSE_RUN).data.val
    if val is None:
        return {}
    labels = ablation.validation_labels(val)
    frames = len(uvd_format.read_uvd(predictions, labels.shape[1]))
    if frames != len(labels):
        raise RehearsalFailed(
            f"{predictions}: {frames} frames, the rehearsal's test frames {len(labels)}"
        )
    labels_path = predictions.with_name(predictions.stem + "_labels.txt")
    uvd_format.write_uvd(labels_path, labels)
    note = (
        f"rehearsal: {frames} test frames of {val.root} after {profiles.REHEARSAL.steps} "
        "steps; not a result (it needs the full test set and the full training)"
    )
    key = dataset.upper()
    return {
        f"OURS_{key}_PREDICTIONS": str(predictions),
        f"OURS_{key}_LABELS": str(labels_path),
        "OURS_NOTE": note,
    }


# --------------------------------------------------------------------------------------------
# The report


@dataclass
class Report:
    """What a rehearsal measured and projects, and where it wrote them."""

    profile: str
    dataset: str
    device: str
    stages: list[Stage]
    projections: list[dict[str, object]]
    disk: list[dict[str, object]]
    matmul_gflops: float | None
    files: list[Path] = dataclasses.field(default_factory=list)

    def stage_table(self) -> pd.DataFrame:
        def rounded(value: float | None, digits: int = 1) -> float | None:
            return None if value is None else round(float(value), digits)

        return pd.DataFrame(
            [
                {
                    "stage": s.name,
                    "wall (s)": rounded(s.seconds),
                    "samples/s": rounded(s.samples_per_s, 2),
                    "peak host (MB)": rounded(s.peak_host_mb, 0),
                    "peak GPU (MB)": rounded(s.peak_gpu_mb, 0),
                    "note": s.note,
                }
                for s in self.stages
            ]
        )

    def markdown(self) -> str:
        rate = f"{self.matmul_gflops:.0f} GFLOP/s" if self.matmul_gflops else "not measured"
        total = sum(s.seconds for s in self.stages if s.seconds is not None)
        lines = [
            f"# Rehearsal of the `{self.profile}` profile on {self.dataset} ({self.device})",
            "",
            f"Machine: float32 matmul {rate}. Rehearsal wall time {total:.0f} s "
            f"({machine.at_reference_rate(total, self.matmul_gflops) / 60:.1f} min at "
            f"{machine.REFERENCE_GFLOPS:.0f} GFLOP/s)."
            if self.matmul_gflops
            else f"Machine: float32 matmul {rate}. Rehearsal wall time {total:.0f} s.",
            "",
            "## Stages",
            "",
            _markdown(self.stage_table()),
            "",
            "samples/s: training samples (all processes) per second, the first step of each "
            "epoch excluded; predict / evaluate: frames per second.",
            "",
            "## The full run on this machine (projected)",
            "",
            _markdown(pd.DataFrame(self.projections)),
            "",
            "## Disk for the crop caches (one per data source and crop setting, shared)",
            "",
            _markdown(pd.DataFrame(self.disk).round({"GiB": 2})),
            "",
            "## Not exercised by this rehearsal",
            "",
        ]
        missing = list(NOT_IN_ANY_REHEARSAL)
        if self.device == "cpu":
            missing = list(NOT_ON_A_CPU) + missing
        lines += [f"- {item}" for item in missing]
        return "\n".join(lines) + "\n"

    def write(self, run_dir: Path) -> list[Path]:
        md, csv = run_dir / f"{TABLE_NAME}.md", run_dir / f"{TABLE_NAME}.csv"
        md.write_text(self.markdown())
        stages = self.stage_table().assign(kind="stage")
        projected = pd.DataFrame(self.projections).assign(kind="projection")
        pd.concat([stages, projected], ignore_index=True).to_csv(csv, index=False)
        self.files = [md, csv]
        return self.files


def _markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which the lock need not hold)."""
    if table.empty:
        return "(none)"
    cells = table.astype(object).where(table.notna(), "")
    header = "| " + " | ".join(map(str, cells.columns)) + " |"
    rule = "|" + "|".join("---" for _ in cells.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def build_report(
    profile_name: str,
    dataset: str,
    device: str,
    run_dir: Path,
    notebook_s: dict[str, float],
    cli: Sequence[Stage],
    matmul_gflops: float | None,
) -> Report:
    """The stage table and projections of a finished rehearsal in `run_dir`."""
    base_name = profiles.base_profile_name(profile_name)
    base = profiles.get_profile(base_name)
    summaries = {LOCNET_RUN: training_summary(run_dir / LOCNET_RUN)}
    summaries[POSE_RUN] = training_summary(run_dir / POSE_RUN)
    for folder in sorted((run_dir / SELFCOMP_DIR).glob("*/summary.json")):
        summaries[f"{SELFCOMP_DIR}/{folder.parent.name}"] = json.loads(folder.read_text())
    stages: list[Stage] = []
    trained_in = {
        "02_": [LOCNET_RUN],
        "03_": [POSE_RUN],
        "04_": [k for k in summaries if k.startswith(SELFCOMP_DIR)],
    }
    for notebook, seconds in notebook_s.items():
        stages.append(Stage(f"notebook {notebook}", seconds))
        for key in trained_in.get(notebook[:3], []):
            s = summaries[key]
            stages.append(
                Stage(
                    f"  training {key}",
                    None,
                    s.get("samples_per_s"),
                    s.get("peak_host_rss_mb"),
                    s.get("peak_gpu_mb"),
                    f"{s.get('steps_timed', '?')} steps timed, batch {s.get('batch_per_step')}",
                )
            )
    stages += cli
    # The torchrun stage's own summary: the resume after it rewrote summary.json.
    torchrun = next((s.summary for s in cli if s.name.startswith("torchrun")), None)
    devices = torch.cuda.device_count() if device == "cuda" else 1
    projections = projection_rows(base, dataset, summaries, notebook_s, None, devices, torchrun)
    return Report(
        base_name,
        dataset,
        device,
        stages,
        projections,
        cache_disk_rows(base, dataset),
        matmul_gflops,
    )


# --------------------------------------------------------------------------------------------
# A small dataset in the real on-disk formats, to rehearse with before downloading the real one


def write_data(
    dataset: str, root: str | os.PathLike, train_frames: int = 96, test_frames: int = 64
) -> Path:
    """An ICVL root (Training/, Testing/ with test_seq_1 and test_seq_2) or an NYU root
    (train/, test/) of rendered synthetic hands, written by the package's own writers
    (`datasets.writers`): the real on-disk formats, to rehearse with where the real dataset is
    not there yet (a GPU machine checked before the download)."""
    if train_frames < 1 or test_frames < 2:
        raise ValueError(
            f"write-data: need >= 1 training and >= 2 test frames, got {train_frames}, "
            f"{test_frames}"
        )
    root = Path(root)
    if dataset == "icvl":
        half = test_frames // 2
        subsets = {"test_seq_1": range(half), "test_seq_2": range(half, test_frames)}
        return writers.write_icvl_dataset(
            root,
            SyntheticSource(train_frames, seed=11),
            SyntheticSource(test_frames, seed=12),
            test_subsets={k: list(v) for k, v in subsets.items()},
        )
    if dataset == "nyu":
        for split, frames, seed in (("train", train_frames, 13), ("test", test_frames, 14)):
            source = SyntheticNyuSource(frames, seed=seed)
            depth = [source[i].depth_mm for i in range(frames)]
            xyz36 = np.stack([source.joint_xyz36(i) for i in range(frames)])
            writers.write_nyu_split(root, split, depth, xyz36)
        return root
    raise ValueError(f"write-data --dataset {dataset!r}: expected icvl or nyu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.rehearsal",
        description="A small dataset in the real ICVL / NYU formats to rehearse with; the "
        "rehearsal itself: python -m handpose_lib.reproduce --rehearse ...",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write-data", help="write a small ICVL or NYU dataset folder")
    write.add_argument("--dataset", choices=("icvl", "nyu"), required=True)
    write.add_argument("--root", required=True, help="the dataset root to create")
    write.add_argument("--train-frames", type=int, default=96)
    write.add_argument("--test-frames", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        root = write_data(args.dataset, args.root, args.train_frames, args.test_frames)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"wrote an {args.dataset.upper()} dataset root with {args.train_frames} training and "
        f"{args.test_frames} test frames: {root}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
