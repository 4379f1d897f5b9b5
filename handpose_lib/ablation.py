"""Self-comparisons of Section 4.1 (Fig. 3 a-b): the paper's model against three baselines.

The four PoseNet variants (`ablation_verdict.PAPER_ORDER`, worst to best in mean error) are
each trained with the same data and budget for the profile's seeds (`profiles.Profile.seeds`),
predict the same validation frames, and are evaluated from their community-format prediction
files by `evaluate.evaluate_file`, the code path of Table 1. The statistics over seeds and the
verdict on the paper's ordering are `ablation_verdict`'s; its names are importable from here.

A finished run is reused only when its config (`training.config.weight_differences`) and its
code (`training.provenance`) match; otherwise `train_or_reuse` says why and trains again.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from handpose_lib import evaluate, pretrained
from handpose_lib.ablation_verdict import (
    PAPER_ORDER,
    VARIANT_LABELS,
    VARIANT_REMOVES,
    VERDICTS,
    OrderingVerdict,
    PairComparison,
    check_variant,
    compare_pairs,
    holm,
    ordering_verdict,
    pool_seeds,
    success_auc,
    summary_table,
    write_self_comparison,
)
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.evaluate import MethodResult
from handpose_lib.models import PoseNetConfig
from handpose_lib.profiles import get_profile
from handpose_lib.training import provenance
from handpose_lib.training.config import (
    ConfigError,
    RunConfig,
    SourceSpec,
    load_provenance,
    resume_differences,
    validation_differences,
    validation_fields,
    weight_differences,
)
from handpose_lib.training.data import EvenSubset, build_source
from handpose_lib.training.engine import EpochCallback, train
from handpose_lib.training.inference import evaluate_run
from handpose_lib.verified_files import ChecksumError

CHECKPOINTS = ("last", "best")
# Largest difference (mm) between evaluating the run in memory and its 3-decimal file.
FILE_ROUNDING_TOLERANCE_MM = 0.01
# Suffix of the folder a run made by other code is moved to before training again.
STALE_SUFFIX = ".stale"
# The shipped set of the self-comparison (pretrained/long): the long profile's runs.
SHIPPED_SET = "long"
# The variable restricting a process (and its children) to some GPUs; a worker of
# `train_all` sets it to its one GPU (`pin_device`).
CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"

__all__ = [
    "CHECKPOINTS",
    "FILE_ROUNDING_TOLERANCE_MM",
    "PAPER_ORDER",
    "STALE_SUFFIX",
    "VARIANT_LABELS",
    "VARIANT_REMOVES",
    "VERDICTS",
    "AblationRun",
    "OrderingVerdict",
    "PairComparison",
    "compare_pairs",
    "cuda_index",
    "default_jobs",
    "holm",
    "load_all_shipped",
    "load_all_shipped_predictions",
    "load_shipped",
    "materialize_shipped",
    "ordering_verdict",
    "per_seed_table",
    "pin_device",
    "pool_seeds",
    "pooled",
    "predictions_name",
    "reusable_run",
    "reuse_problem",
    "run_name",
    "seeds_for_profile",
    "self_comparisons",
    "shipped_base",
    "shipped_locnet_problem",
    "shipped_problem",
    "shipped_seeds",
    "steps_per_epoch",
    "success_auc",
    "summary_table",
    "train_all",
    "train_or_reuse",
    "validation_histories",
    "validation_labels",
    "variant_config",
    "visible_devices",
    "write_self_comparison",
]


def seeds_for_profile(profile: str) -> tuple[int, ...]:
    """Training seeds of a profile (`Profile.seeds`): smoke (0, 1), cpu (0,), paper (0, 1, 2)."""
    return get_profile(profile).seeds


def run_name(variant: str, seed: int) -> str:
    """Name of a run's folder under RUN_DIR/selfcomp/ and its predictions' stem."""
    check_variant(variant)
    return f"{variant}_seed{seed}"


def predictions_name(variant: str, seed: int, which: str = "last") -> str:
    """File name of a run's predictions: "<variant>_seed<k>.txt" for the last epoch's weights
    (as notebook 03 writes attention_seed0.txt), "<variant>_seed<k>_best.txt" for best.pt."""
    _check_checkpoint(which)
    return f"{run_name(variant, seed)}{'' if which == 'last' else '_' + which}.txt"


def _check_checkpoint(which: str) -> None:
    if which not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {which!r}: expected one of {CHECKPOINTS}")


# --------------------------------------------------------------------------------------------
# Configs and runs


def variant_config(base: RunConfig, variant: str, seed: int) -> RunConfig:
    """`base` (a pose run config) with `model.variant` and `train.seed` replaced: same data,
    crop, augmentation and budget for every variant."""
    check_variant(variant)
    if base.task != "pose":
        raise ValueError(f"variant_config needs a pose run config, got task {base.task!r}")
    return base.with_overrides({"model.variant": variant, "train.seed": seed})


def reuse_problem(
    run_dir: str | os.PathLike,
    config: RunConfig,
    which: str = "last",
    reuse_other_code: bool = False,
) -> str | None:
    """Why `run_dir` cannot stand in for training `config` (None: it can). It can when it
    holds a finished run (summary.json with all epochs) whose `which` checkpoint is what
    training `config` would give (`weight_differences` empty), made by this code
    (`provenance.code_difference`; skipped with `reuse_other_code`)."""
    _check_checkpoint(which)
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if not (run_dir / "config.json").is_file():
        return "it holds no run"
    if not summary.is_file():
        return "the run there is not finished"
    differ = weight_differences(RunConfig.load(run_dir), config, which)
    if differ:
        return f"its config differs in {differ}"
    try:
        epochs = json.loads(summary.read_text())["epochs"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ConfigError(f"{summary}: no readable 'epochs' field ({err})") from None
    if epochs != config.train.epochs:
        return f"it trained {epochs} of {config.train.epochs} epochs"
    if not reuse_other_code:
        return provenance.code_difference(load_provenance(run_dir), provenance.current())
    return None


def reusable_run(
    run_dir: str | os.PathLike,
    config: RunConfig,
    which: str = "last",
    reuse_other_code: bool = False,
) -> bool:
    """True when `reuse_problem` finds none."""
    return reuse_problem(run_dir, config, which, reuse_other_code) is None


def _with_validation_of(config: RunConfig, saved: RunConfig) -> RunConfig:
    """`config` with the validation settings of `saved`, so that a run started with other
    validation data (e.g. before notebook 02 wrote its centres) can be resumed."""
    saved_dict = saved.to_dict()
    return config.with_overrides({f: _get(saved_dict, f) for f in validation_fields()})


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def validation_labels(spec: SourceSpec) -> np.ndarray:
    """(N, J, 3) uvd ground truth of a validation source, in its frame order.

    Rendered ICVL test poses and full ICVL / NYU test splits give the published test labels
    (the Table 1 ground truth); other sources give their frames' labels.
    """
    source = build_source(spec)
    uvd = _labels_of(source)
    if uvd is None:  # procedural frames: labels exist only by rendering them
        uvd = np.stack([source[i].uvd for i in range(len(source))])
    return np.asarray(uvd, dtype=np.float64)


def _labels_of(source: FrameSource) -> np.ndarray | None:
    if isinstance(source, EvenSubset):
        inner = _labels_of(source.source)
        return None if inner is None else inner[source.indices]
    return getattr(source, "uvd", None)


@dataclass(frozen=True)
class AblationRun:
    """One trained variant / seed and its evaluation on the validation frames.

    origin: "trained" (trained, or an interrupted run continued, in `run_dir`), "loaded
    (finished earlier)" or "reused <folder>" (the same run finished elsewhere, e.g. notebook
    03's attention run).
    """

    variant: str
    seed: int
    run_dir: Path
    predictions: Path
    result: MethodResult
    origin: str


def train_or_reuse(
    base: RunConfig,
    variant: str,
    seed: int,
    run_root: str | os.PathLike,
    predictions_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    reuse: Sequence[str | os.PathLike] = (),
    which: str = "last",
    on_epoch_end: EpochCallback | None = None,
    reuse_other_code: bool = False,
    report: Callable[[str], None] = print,
) -> AblationRun:
    """Train `variant_config(base, variant, seed)` into run_root/<variant>_seed<k>/, unless a
    `reuse` folder or that folder holds the run finished (`reuse_problem`); an interrupted run
    continues (resume=True). Then write the `which` checkpoint's predictions on base's
    validation frames to predictions_dir/`predictions_name(...)` and evaluate that file with
    `evaluate.evaluate_file` against `labels` (default `validation_labels(base.data.val)`).

    With which="last", a run that validated on other frames or centres during training still
    counts (only best.pt depends on them); with "best" the validation settings must match.

    A run in run_root made by other code (or before provenance was recorded) is never
    continued or reused: `report` says so, the folder is moved to "<name>.stale" and the run
    trained again. `reuse_other_code=True` accepts finished runs of other code (the config
    must still match). A finished run of another config in run_root is refused (ValueError
    naming the fields); `reuse` folders that do not fit are reported and skipped.
    """
    config = variant_config(base, variant, seed)
    spec = config.data.val
    if spec is None:
        raise ValueError("the base config has no validation data (data.val is None)")
    own_dir = Path(run_root) / run_name(variant, seed)
    run_dir = None
    for folder in map(Path, reuse):
        problem = reuse_problem(folder, config, which, reuse_other_code)
        if problem is None:
            run_dir, origin = folder, f"reused {folder}"
            break
        report(f"not reusing {folder}: {problem}")
    if run_dir is None and reusable_run(own_dir, config, which, reuse_other_code):
        run_dir, origin = own_dir, "loaded (finished earlier)"
    if run_dir is None:
        train_config = _resumable_config(config, own_dir, which, reuse_other_code, report)
        # A run of another config in own_dir is refused by the trainer, naming the fields.
        train(train_config, own_dir, resume=True, on_epoch_end=on_epoch_end)
        run_dir, origin = own_dir, "trained"
    out_path = Path(predictions_dir) / predictions_name(variant, seed, which)
    return _evaluated(variant, seed, run_dir, spec, out_path, labels, origin, which)


def _evaluated(
    variant: str,
    seed: int,
    run_dir: Path,
    spec: SourceSpec,
    out_path: Path,
    labels: np.ndarray | None,
    origin: str,
    which: str = "last",
) -> AblationRun:
    """Write the run's predictions on `spec` to out_path and evaluate that file against
    `labels` (default: the spec's), checking it against the in-memory evaluation."""
    in_memory = evaluate_run(run_dir, which=which, source=spec, out_path=out_path)
    labels = validation_labels(spec) if labels is None else labels
    name = f"{VARIANT_LABELS[variant]}, seed {seed}"
    result = evaluate.evaluate_file(out_path, spec.dataset, labels, name=name)
    if abs(result.mean_error_mm - in_memory.mean_error_mm) > FILE_ROUNDING_TOLERANCE_MM:
        raise ValueError(
            f"{out_path}: evaluates to {result.mean_error_mm:.4f} mm against the given labels, "
            f"but the run's own frames give {in_memory.mean_error_mm:.4f} mm; the labels do not "
            "belong to the validation frames (or are in another order)"
        )
    return AblationRun(variant, seed, run_dir, out_path, result, origin)


def shipped_seeds(variant: str, entries: pretrained.Registry | None = None) -> tuple[int, ...]:
    """Seeds of `variant` in the shipped set (pretrained/long), ascending."""
    prefix = f"{variant}_seed"
    names = pretrained.run_names(SHIPPED_SET, entries)
    return tuple(sorted(int(n[len(prefix) :]) for n in names if n.startswith(prefix)))


def shipped_base(entries: pretrained.Registry | None = None) -> RunConfig:
    """The config of the shipped attention run with the lowest seed (the shipped budget)."""
    seeds = shipped_seeds("attention", entries)
    if not seeds:
        raise KeyError(
            f"no shipped attention run in set {SHIPPED_SET!r} ({pretrained.REGISTRY_FILE})"
        )
    return pretrained.shipped_config(SHIPPED_SET, run_name("attention", seeds[0]), entries)


def _shipped_differences(shipped: RunConfig, ours: RunConfig, our_model: object) -> list[str]:
    """What keeps a shipped run from standing in for `ours`: the names among "model" (compared
    with `our_model`), "crop", "training data" and "test data" (their kinds) that differ.
    Only the budget and the seed may differ."""
    checks = {
        "model": (shipped.model, our_model),
        "crop": (shipped.crop, ours.crop),
        "training data": (shipped.data.train.kind, ours.data.train.kind),
        "test data": (
            None if shipped.data.val is None else shipped.data.val.dataset,
            None if ours.data.val is None else ours.data.val.dataset,
        ),
    }
    return [name for name, (theirs, mine) in checks.items() if theirs != mine]


def shipped_problem(
    base: RunConfig,
    variants: Sequence[str],
    which: str = "last",
    entries: pretrained.Registry | None = None,
) -> str | None:
    """Why the shipped long-budget runs cannot stand in for the self-comparison of `base`
    (None: they can). They can when every variant has a shipped seed and the networks, crops
    and data kinds are `base`'s (only the budget and seeds differ)."""
    if which != "last":
        return f"the shipped weights are the last epoch's; CHECKPOINT={which!r} needs training"
    missing = [v for v in variants if not shipped_seeds(v, entries)]
    if missing:
        return f"no shipped weights for {missing} ({pretrained.REGISTRY_FILE} lists none)"
    if base.data.train.kind != "synthetic":
        return f"they were trained on synthetic frames, this run trains on {base.data.train.kind}"
    try:
        shipped = shipped_base(entries)
    except (OSError, ChecksumError) as err:  # listed but not readable here: say why, train
        return f"their files cannot be read ({err})"
    if not isinstance(base.model, PoseNetConfig) or not isinstance(shipped.model, PoseNetConfig):
        raise ValueError("shipped_problem compares pose runs (PoseNetConfig models)")
    differ = _shipped_differences(shipped, base, replace(base.model, variant=shipped.model.variant))
    if differ:
        return (
            f"they were trained with the {shipped.profile} profile, whose {differ} differ from "
            f"the {base.profile} profile's on this data"
        )
    return None


SHIPPED_LOCNET = "locnet"


def shipped_locnet_problem(
    config: RunConfig, which: str = "last", entries: pretrained.Registry | None = None
) -> str | None:
    """Why the shipped LocNet (pretrained/long/locnet) cannot stand in for `config`'s LocNet
    run (None: it can): same network, crops and kinds of training and test data; only the
    budget may differ."""
    if which != "last":
        return f"the shipped weights are the last epoch's; CHECKPOINT={which!r} needs training"
    if SHIPPED_LOCNET not in pretrained.run_names(SHIPPED_SET, entries):
        return f"no shipped LocNet ({pretrained.REGISTRY_FILE} lists none)"
    try:
        shipped = pretrained.shipped_config(SHIPPED_SET, SHIPPED_LOCNET, entries)
    except (OSError, ChecksumError) as err:
        return f"its files cannot be read ({err})"
    differ = _shipped_differences(shipped, config, config.model)
    if differ:
        return f"it was trained with the {shipped.profile} profile, whose {differ} differ"
    return None


def materialize_shipped(
    variant: str, seed: int, run_dir: str | os.PathLike, entries: pretrained.Registry | None = None
) -> Path:
    """The shipped run of `variant` / `seed` as a run folder run_dir/shipped/<variant>_seed<k>/
    (`pretrained.materialize`); the shipped runs share one crop cache, run_dir/shipped/cache."""
    name, root = run_name(variant, seed), Path(run_dir) / "shipped"
    return pretrained.materialize(SHIPPED_SET, name, root / name, entries, cache_dir=root / "cache")


def load_shipped(
    base: RunConfig,
    variant: str,
    seed: int,
    run_dir: str | os.PathLike,
    predictions_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    entries: pretrained.Registry | None = None,
) -> AblationRun:
    """The shipped run of `variant` / `seed` (`materialize_shipped` under run_dir), evaluated
    afresh on base's validation frames, its predictions written to
    predictions_dir/long_<variant>_seed<k>.txt. Check `shipped_problem` first."""
    spec = base.data.val
    if spec is None:
        raise ValueError("the base config has no validation data (data.val is None)")
    name = run_name(variant, seed)
    shipped_dir = materialize_shipped(variant, seed, run_dir, entries)
    out_path = Path(predictions_dir) / f"{SHIPPED_SET}_{name}.txt"
    origin = f"shipped (pretrained/{SHIPPED_SET})"
    return _evaluated(variant, seed, shipped_dir, spec, out_path, labels, origin)


def _resumable_config(
    config: RunConfig,
    own_dir: Path,
    which: str,
    reuse_other_code: bool,
    report: Callable[[str], None],
) -> RunConfig:
    """The config to train (or continue) `config` with in `own_dir`: with the saved run's
    validation settings (which="last"); a run there made by other code is moved aside."""
    if not (own_dir / "config.json").is_file():
        return config
    saved = RunConfig.load(own_dir)
    if which == "best" and validation_differences(saved, config):
        raise ValueError(
            f"{own_dir}: best.pt was chosen with other validation settings "
            f"({validation_differences(saved, config)}); evaluate which='last' or "
            "train into another run_root"
        )
    train_config = _with_validation_of(config, saved) if which == "last" else config
    if resume_differences(saved, train_config):
        return train_config  # the trainer refuses it, naming the fields
    code = provenance.code_difference(load_provenance(own_dir), provenance.current())
    if code is None or reuse_other_code:
        return train_config
    stale = own_dir.with_name(own_dir.name + STALE_SUFFIX)
    report(f"{own_dir}: not reused, {code}; moved to {stale.name}, training again")
    shutil.rmtree(stale, ignore_errors=True)
    own_dir.rename(stale)
    return config


# --------------------------------------------------------------------------------------------
# Devices: where the trainings of `train_all` run


def visible_devices(preference: str = "auto") -> list[str]:
    """The devices `train_all` spreads its trainings over: "cuda:0" ... "cuda:<n-1>" for the
    n GPUs torch sees here (after $CUDA_VISIBLE_DEVICES), or ["cpu"] where CUDA is not usable
    or `preference` (a `TrainConfig.device`: auto, cuda, cpu) is "cpu". "cuda" without CUDA
    gives ["cpu"] too: the trainer then refuses it, saying why."""
    if preference not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cuda or cpu, got {preference!r}")
    if preference == "cpu" or not torch.cuda.is_available():
        return ["cpu"]
    return [f"cuda:{index}" for index in range(torch.cuda.device_count())]


def default_jobs(devices: Sequence[str]) -> int:
    """Trainings at once unless the caller says: one per GPU among `devices`, 1 on a CPU (two
    CPU trainings share its cores, a choice the caller makes with `jobs`)."""
    return max(1, len(_gpus(devices)))


def _gpus(devices: Sequence[str]) -> list[str]:
    """The GPUs among `devices`, each once (each device checked: "cuda:<index>" or "cpu")."""
    gpus = [device for device in devices if device != "cpu"]
    for device in gpus:
        cuda_index(device)
    return list(dict.fromkeys(gpus))


def cuda_index(device: str) -> int:
    """1 for "cuda:1"; a ValueError naming the device for anything else."""
    prefix, sep, index = device.partition(":")
    if prefix != "cuda" or not sep or not index.isdigit():
        raise ValueError(f"device {device!r}: expected 'cpu' or 'cuda:<index>', e.g. 'cuda:0'")
    return int(index)


def pin_device(device: str) -> None:
    """Make `device` ("cuda:<i>", the i-th GPU this process's parent sees) the only GPU of
    this process and of the processes it starts; "cpu": nothing to do.

    Called once, first thing in a fresh (spawned) worker. Through $CUDA_VISIBLE_DEVICES, not
    torch.cuda.set_device: the trainer asks for "cuda" (`distributed.select_device` gives
    cuda:0), so with one GPU visible everything it and its DataLoader workers (which inherit
    the environment) put on "cuda" or cuda:0 lands on the pinned GPU, and the run's config
    keeps its device. A CUDA build of torch must then see exactly one GPU: CUDA reads the
    variable once, when it initialises, so a process that had initialised it still sees every
    GPU, and an index past the last GPU shows none ("auto" would train on the CPU); both are
    refused rather than left training on GPU 0 or on the CPU."""
    if device == "cpu":
        return
    index = cuda_index(device)
    inherited = os.environ.get(CUDA_VISIBLE)
    # The parent's cuda:i is the i-th entry of the list it was given (an index, a UUID or a
    # MIG instance), or the i-th GPU when it was given none.
    entries = [e.strip() for e in inherited.split(",")] if inherited else None
    if entries is not None and index >= len(entries):
        raise ValueError(f"device {device!r}: {CUDA_VISIBLE}={inherited!r} lists {len(entries)}")
    os.environ[CUDA_VISIBLE] = entries[index] if entries is not None else str(index)
    if torch.version.cuda is not None and torch.cuda.device_count() != 1:
        raise RuntimeError(
            f"cannot pin {device}: with {CUDA_VISIBLE}={os.environ[CUDA_VISIBLE]!r} this "
            f"process sees {torch.cuda.device_count()} GPUs, not 1 (CUDA initialised before "
            "the pin sees them all; a GPU that is not there shows none)"
        )


def _job_slots(devices: Sequence[str], jobs: int, runs: int) -> list[str]:
    """The device of each training that runs at once: each GPU at most once (a second run
    would share its memory and compute), or "cpu" `jobs` times; at most one per run."""
    gpus = _gpus(devices)
    at_once = max(1, min(jobs, runs))
    return gpus[:at_once] if gpus else ["cpu"] * at_once


# --------------------------------------------------------------------------------------------
# Training every variant and seed


def train_all(
    base: RunConfig,
    variants: Sequence[str],
    seeds: Sequence[int],
    run_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    which: str = "last",
    report: Callable[[str], None] = print,
    jobs: int | None = None,
    devices: Sequence[str] | None = None,
) -> list[AblationRun]:
    """`train_or_reuse` every variant and seed into run_dir/selfcomp/, predictions to
    run_dir/predictions/; notebook 03's run (run_dir/pose_attention) stands in for attention
    seed 0 when it fits. Reports one line per run: origin, mean error, seconds.

    devices: where trainings may run (default `visible_devices(base.train.device)`); jobs:
    how many at once (default `default_jobs(devices)`: one per GPU, 1 on a CPU).
    jobs > 1 first trains the runs that need training, each in a worker process of its own
    device: on GPUs one run per GPU at a time (a run waits for a free GPU; `pin_device`), on
    a CPU `jobs` at a time, each with torch.get_num_threads() // jobs threads (on a 2-core CPU
    two one-thread trainings side by side are 1.24x faster than one with two threads:
    `benchmarks/bench_throughput.py`); then it evaluates in order. A run trained with fewer
    threads is not bit-identical to one trained with more (float sums in another order), and
    is reported as "trained (parallel)". The device is bookkeeping: no run's config changes."""
    devices = visible_devices(base.train.device) if devices is None else list(devices)
    jobs = default_jobs(devices) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    run_dir = Path(run_dir)
    nb03_run = run_dir / "pose_attention"
    problem = reuse_problem(nb03_run, variant_config(base, "attention", 0), which)
    report(f"notebook 03's run {nb03_run}: {problem or 'reused for attention seed 0'}")
    pairs = [(v, s) for v in variants for s in seeds]
    in_parallel = set()
    if jobs > 1:
        needed = [
            (v, s)
            for v, s in pairs
            if not ((v, s) == ("attention", 0) and problem is None)
            and not reusable_run(
                run_dir / "selfcomp" / run_name(v, s), variant_config(base, v, s), which
            )
        ]
        _train_in_workers(base, needed, run_dir / "selfcomp", which, devices, jobs, report)
        in_parallel = set(needed)
    runs = []
    for variant, seed in pairs:
        started = time.perf_counter()
        run = train_or_reuse(
            base,
            variant,
            seed,
            run_dir / "selfcomp",
            run_dir / "predictions",
            labels=labels,
            reuse=[nb03_run] if (variant, seed) == ("attention", 0) else [],
            which=which,
            report=report,
        )
        if (variant, seed) in in_parallel:
            run = replace(run, origin="trained (parallel)")
        runs.append(run)
        report(_run_line(run, time.perf_counter() - started))
    return runs


@dataclass(frozen=True)
class _Job:
    """One training of `train_all(jobs > 1)`, as sent to a worker process. `device` is the
    worker's (`pin_device`), for the record: the run's config keeps its own."""

    base: dict[str, Any]
    variant: str
    seed: int
    run_root: str
    which: str
    threads: int
    device: str = "cpu"


def _train_in_workers(
    base: RunConfig,
    needed: Sequence[tuple[str, int]],
    run_root: Path,
    which: str,
    devices: Sequence[str],
    jobs: int,
    report: Callable[[str], None],
) -> None:
    """Train the (variant, seed) runs `needed` on the slots of `_job_slots`, one line as each
    ends; a RuntimeError naming every failed run once all have ended."""
    slots = _job_slots(devices, jobs, len(needed))
    threads = max(1, torch.get_num_threads() // len(slots))
    on_gpus = f", one per GPU ({', '.join(slots)})" if slots[0] != "cpu" else ""
    report(
        f"training {len(needed)} runs, {len(slots)} at a time with {threads} thread(s) "
        f"each{on_gpus}"
    )
    queue = [_Job(base.to_dict(), v, s, str(run_root), which, threads) for v, s in needed]
    failures = _run_on_slots(queue, slots, report) if queue else []
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(queue)} trainings failed: {failures}")


def _run_on_slots(
    queue: Sequence[_Job], slots: Sequence[str], report: Callable[[str], None]
) -> list[str]:
    """Run every job of `queue`, in order, each on the first free slot (a device with its own
    worker process, one job at a time); returns "<run>: <error>" of the failed ones."""
    pending, failures = deque(queue), []
    with ExitStack() as stack:
        pools = [stack.enter_context(_slot_pool(device)) for device in slots]
        free = list(range(len(slots)))  # the longest idle first
        running: dict[Future, tuple[int, str]] = {}
        while pending or running:
            while pending and free:
                slot = free.pop(0)
                job = replace(pending.popleft(), device=slots[slot])
                future = pools[slot].submit(_train_in_process, job)
                running[future] = (slot, run_name(job.variant, job.seed))
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                slot, name = running.pop(future)
                crashed = future.exception()  # not the training's error: its worker's
                if crashed is not None:
                    # The worker died (or could not pin its device): a fresh one for the next.
                    pools[slot] = stack.enter_context(_slot_pool(slots[slot]))
                    error: str | None = f"{type(crashed).__name__}: {crashed}"
                else:
                    error = future.result()[1]
                free.append(slot)
                report(f"{name}: {'failed: ' + error if error else 'trained'}")
                if error:
                    failures.append(f"{name}: {error}")
    return failures


def _slot_pool(device: str) -> Executor:
    """A worker process pinned to `device` (`pin_device`), started by spawn: a fresh
    interpreter, in which CUDA is not initialised before the pin (a forked child would
    inherit the parent's CUDA state). Not multiprocessing.Pool: its workers are daemonic and
    cannot start the DataLoader workers of a profile with train.num_workers > 0."""
    spawn = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(1, mp_context=spawn, initializer=pin_device, initargs=(device,))


def _train_in_process(job: _Job) -> tuple[str, str | None]:
    """One run of `train_all(jobs > 1)`, in a worker process with its own thread count;
    returns the run's name and None, or the error it stopped with."""
    try:
        _train_one(job.base, job.variant, job.seed, job.run_root, job.which, job.threads)
    except Exception as err:  # reported by the parent with the run's name
        return run_name(job.variant, job.seed), f"{type(err).__name__}: {err}"
    return run_name(job.variant, job.seed), None


def _train_one(
    base_dict: dict, variant: str, seed: int, run_root: str, which: str, threads: int
) -> None:
    torch.set_num_threads(threads)
    config = variant_config(RunConfig.from_dict(base_dict), variant, seed)
    # A worker's progress bar would print to the Jupyter server's console, not to the cell;
    # progress.json (the runner's progress line) is written either way.
    config = config.with_overrides({"train.progress": False})
    own_dir = Path(run_root) / run_name(variant, seed)
    train_config = _resumable_config(config, own_dir, which, False, print)
    train(train_config, own_dir, resume=True)


def load_all_shipped(
    base: RunConfig,
    variants: Sequence[str],
    run_dir: str | os.PathLike,
    labels: np.ndarray | None = None,
    entries: pretrained.Registry | None = None,
    report: Callable[[str], None] = print,
) -> list[AblationRun]:
    """`load_shipped` every shipped seed of every variant (run_dir/shipped/, predictions to
    run_dir/predictions/long_*.txt), evaluated on base's validation frames."""
    runs = []
    for variant in variants:
        for seed in shipped_seeds(variant, entries):
            started = time.perf_counter()
            run = load_shipped(
                base, variant, seed, run_dir, Path(run_dir) / "predictions", labels, entries
            )
            runs.append(run)
            report(_run_line(run, time.perf_counter() - started))
    return runs


SHIPPED_CENTRES = f"{SHIPPED_SET}/centers/val_locnet.txt"  # where the shipped predictions crop
# Centres within this (3D, mm) of the shipped ones are the shipped LocNet's own: its float16
# weights move a centre by up to 0.05 mm (0.049 measured over the 1596 test frames); another
# LocNet, crop or decoding moves it by millimetres.
SHIPPED_CENTRE_TOLERANCE_MM = 0.1


def load_all_shipped_predictions(
    base: RunConfig,
    variants: Sequence[str],
    run_dir: str | os.PathLike,
    labels: np.ndarray,
    entries: pretrained.Registry | None = None,
) -> list[AblationRun]:
    """Every shipped run of `variants` with the predictions committed beside its weights
    (`pretrained/long/predictions/`, cropped at the shipped LocNet centres
    `SHIPPED_CENTRES`), scored against `labels` (N, J, 3): the self-comparison without running
    a network (seconds). The runs are materialized under run_dir/shipped/ for their
    histories; `load_all_shipped` evaluates them afresh at this run's own centres instead."""
    spec = base.data.val
    if spec is None:
        raise ValueError("the base config has no validation data (data.val is None)")
    runs = []
    for variant in variants:
        for seed in shipped_seeds(variant, entries):
            name = run_name(variant, seed)
            path = pretrained.fetch(f"{SHIPPED_SET}/predictions/{name}.txt", entries=entries)
            result = evaluate.evaluate_file(
                path, spec.dataset, labels, name=f"{VARIANT_LABELS[variant]}, seed {seed}"
            )
            run_folder = materialize_shipped(variant, seed, run_dir, entries)
            origin = f"shipped (pretrained/{SHIPPED_SET}), committed predictions"
            runs.append(AblationRun(variant, seed, run_folder, path, result, origin))
    return runs


def self_comparisons(
    base: RunConfig,
    variants: Sequence[str],
    seeds: Sequence[int],
    run_dir: str | os.PathLike,
    labels: np.ndarray,
    which: str = "last",
    retrain: bool = False,
    jobs: int | None = None,
    fresh: bool = True,
    report: Callable[[str], None] = print,
    devices: Sequence[str] | None = None,
) -> dict[str, tuple[list[AblationRun], RunConfig]]:
    """Notebook 04's comparisons, label -> (runs, the config that fixes their budget and
    data), the one Fig. 3 shows first: the shipped long-budget runs when they fit `base`
    (evaluated afresh at `base`'s validation frames when `fresh`, else their committed
    predictions at the shipped LocNet centres), and the runs trained here when `retrain` or
    when the shipped ones do not fit (`train_all`: `jobs` at once over `devices`, by default
    one per visible GPU)."""
    comparisons: dict[str, tuple[list[AblationRun], RunConfig]] = {}
    problem = shipped_problem(base, variants, which)
    if problem is None:
        shipped = shipped_base()
        if fresh:
            runs = load_all_shipped(base, variants, run_dir, labels, report=report)
            label = f"{shipped.profile} budget, shipped weights"
        else:
            runs = load_all_shipped_predictions(base, variants, run_dir, labels)
            label = f"{shipped.profile} budget, shipped weights, committed predictions"
        comparisons[label] = (runs, shipped)
    else:
        report(f"The shipped long-budget runs are not used: {problem}.")
    if retrain or problem is not None:
        runs = train_all(base, variants, seeds, run_dir, labels, which, report, jobs, devices)
        comparisons[f"{base.profile or 'this'} budget, trained here"] = (runs, base)
    report(f"comparisons: {list(comparisons)}; Fig. 3 shows {next(iter(comparisons))!r}")
    return comparisons


def pooled(results: Sequence[MethodResult], variant: str) -> MethodResult:
    """A variant's seeds pooled over the same frames (`pool_seeds`), named for legends."""
    seeds = f" ({len(results)} seeds)" if len(results) > 1 else ""
    return pool_seeds(results, VARIANT_LABELS[variant] + seeds)


def _run_line(run: AblationRun, seconds: float) -> str:
    name = run_name(run.variant, run.seed)
    return f"{name:<20s} {run.origin:<40s} {run.result.mean_error_mm:8.3f} mm  {seconds:6.1f} s"


def validation_histories(runs: Sequence[AblationRun]) -> dict[str, list[pd.DataFrame]]:
    """Variant -> the metrics.csv history of each of its runs, in the order of `runs`."""
    out: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        out.setdefault(run.variant, []).append(pd.read_csv(run.run_dir / "metrics.csv"))
    return out


def per_seed_table(runs: Sequence[AblationRun]) -> pd.DataFrame:
    """One row per run: variant, seed, frames, mean error, success-curve area, origin, file."""
    return pd.DataFrame(
        {
            "variant": r.variant,
            "seed": r.seed,
            "frames": r.result.frames,
            "mean error (mm)": r.result.mean_error_mm,
            "AUC max": success_auc(r.result.errors_mm, "max"),
            "origin": r.origin,
            "predictions": r.predictions.name,
        }
        for r in runs
    )


def steps_per_epoch(config: RunConfig) -> int | None:
    """Optimizer steps per epoch of a run when its config fixes them (a frame count or a
    cap), as the trainer takes them; None for "all frames of a dataset" without a cap."""
    frames, tc = config.data.train.num_frames, config.train
    steps = frames // tc.batch_size if frames else None
    if tc.steps_per_epoch is not None:
        steps = tc.steps_per_epoch if steps is None else min(steps, tc.steps_per_epoch)
    return steps
