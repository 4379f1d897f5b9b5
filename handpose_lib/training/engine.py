"""The training loop: one trainer for the four PoseNet variants ("pose") and LocNet ("locnet").

Each epoch writes, atomically (rank 0):

    run_dir/config.json     the RunConfig, with the provenance of the code (`provenance`)
    run_dir/checkpoint.pt   model, optimizer, scheduler, scaler, epoch, RNG states, history
    run_dir/best.pt         weights of the epoch with the best validation error
    run_dir/metrics.csv     epoch, lr, train loss and its parts, val_mean_error_mm, time_s
    run_dir/progress.json   epoch and step with an estimate of the time left (`progress`)
    run_dir/summary.json    (at the end) best / final metrics, world size, replica digests,
                            throughput (`Throughput`), peak memory, data preparation time

Data order and augmentation depend only on (seed, epoch): a DistributedSampler (also with one
process) shuffles by seed + epoch and `HandPoseDataset.set_epoch` selects the augmentation, so
`resume=True` ends with bit-identical weights to an uninterrupted run on CPU. With torchrun, every
process runs `train`; `batch_size` is the batch of one optimizer step, split over the processes
(or, with `batch_scope="per_process"`, each process's; `batch_split`). On CUDA, where the split
leaves fewer than `SYNC_BATCHNORM_BELOW` samples per process, BatchNorm runs synchronised over
the processes (`use_sync_batchnorm`; the saved config is unchanged).

On a GPU the step never waits for it: the loss parts stay on the device and are read every
`sync_every` steps (the NaN / inf check with them), training forwards skip the heatmap decoding,
the loader's workers persist across epochs, convolutions run channels-last where the profile
says so, and cuDNN picks its algorithms once (`benchmarks/step_costs.py` counts the reads).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from handpose_lib import profiles
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.models import (
    PoseNetConfig,
    hand_center_target,
    heatmap_loss,
    location_loss,
    pose_loss_terms,
)
from handpose_lib.training import distributed, provenance
from handpose_lib.training.atomic import atomic_write_json, atomic_write_text
from handpose_lib.training.checkpoint import (
    CHECKPOINT_VERSION,
    check_resumable,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from handpose_lib.training.config import RunConfig, TrainConfig, build_model, load_provenance
from handpose_lib.training.data import build_dataset, run_com_centers, with_run_cache
from handpose_lib.training.distributed import DistInfo, select_device, unwrap
from handpose_lib.training.inference import mean_error_mm, run_inference
from handpose_lib.training.progress import ProgressFile
from handpose_lib.training.schedule import make_scheduler, per_step

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN / inf; the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    """What `train` returns. `metric` is the validation mean error in mm (the training loss
    when the run has no validation data); lower is better."""

    run_dir: Path
    history: pd.DataFrame
    metric: str
    best_epoch: int
    best_metric: float
    final_metric: float
    checkpoint: Path
    best_checkpoint: Path
    replica_digests: list[str]


EpochCallback = Callable[[int, dict[str, Any]], None]

PLATEAU_RATIO = 0.95  # last-stack L_det / all-zero L_det at or above this: on the plateau
# A global batch split into fewer samples per process than this turns SyncBatchNorm on (CUDA).
SYNC_BATCHNORM_BELOW = 16


def plateau_message(name: str, steps: int, ratio: float) -> str:
    """The one line a run on the all-zero-heatmap plateau prints."""
    return (
        f"{name}: after {steps} steps the last stack's L_det is {ratio:.2f} x that of all-zero "
        "heatmaps, so the heatmaps are still ~0 (the zero plateau). Try the `paper` profile's "
        "recipe (Adam 1e-3, Eq. 2 summed over pixels, zero-initialised heads, sigma 2) or a "
        'lower lr with gradient clipping; docs/training.md "Profiles"'
    )


def compute_loss(
    config: RunConfig, model: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one batch (already on the device) and its parts, detached 0-d tensors on the
    device (read them with `float()` only where a host read is affordable)."""
    if isinstance(config.model, PoseNetConfig):  # task "pose" (RunConfig checks)
        # The loss reads heatmaps and depths only: no decoding in a training forward.
        return pose_loss_terms(model(batch["image"], decode=False), batch, config.model)
    loss = location_loss(model(batch["image"]), hand_center_target(batch["uvd_crop"]))
    return loss, {"total": loss.detach()}


def batch_split(tc: TrainConfig, world_size: int) -> tuple[int, int]:
    """(samples per process, samples per optimizer step) of `tc` on `world_size` processes."""
    if tc.batch_scope == "per_process":
        return tc.batch_size, tc.batch_size * world_size
    if tc.batch_size % world_size:
        raise ValueError(
            f"batch_size {tc.batch_size} does not split over {world_size} processes; pass a "
            f"multiple of {world_size}, or train.batch_scope=per_process for {tc.batch_size} "
            "per process"
        )
    return tc.batch_size // world_size, tc.batch_size


def cpu_fallback_warning(config: RunConfig, device: torch.device) -> str:
    """The line a GPU profile's run (`profiles.GPU_PROFILES`, rehearsals included) logs when
    device "auto" fell back to the CPU ("" otherwise). The command line refuses such a run
    before any data work (`training.preflight.check_device`); callers of `train` are warned."""
    gpu_profile = profiles.base_profile_name(config.profile) in profiles.GPU_PROFILES
    if device.type != "cpu" or config.train.device != "auto" or not gpu_profile:
        return ""
    why = "a CPU build of torch" if torch.version.cuda is None else "CUDA sees no usable GPU"
    return (
        f"{config.name}: profile {config.profile!r} is sized for a GPU, but trains on the CPU "
        f"({why}), at ~1 s a sample at 100 GFLOP/s; set train.device='cpu' to mean it, or "
        "install a CUDA build of torch (docs/install-and-tests.md)"
    )


def use_sync_batchnorm(tc: TrainConfig, world_size: int, device: torch.device) -> bool:
    """BatchNorm over the whole step's batch: where `train.sync_batchnorm` says so, and on
    CUDA where a global batch leaves each of several processes fewer than
    `SYNC_BATCHNORM_BELOW` samples (8 per GPU of the paper's 32 on 4 GPUs)."""
    if world_size <= 1:
        return False
    if tc.sync_batchnorm:
        return True
    per_process = batch_split(tc, world_size)[0]
    split = tc.batch_scope == "global" and per_process < SYNC_BATCHNORM_BELOW
    return device.type == "cuda" and split


def split_line(name: str, tc: TrainConfig, world_size: int, sync_batchnorm: bool) -> str:
    """The log line that states how a step's batch is split over the processes."""
    per_process, per_step_batch = batch_split(tc, world_size)
    line = f"{name}: batch of {per_step_batch} per step = {world_size} process(es) x {per_process}"
    if world_size > 1 and tc.batch_scope == "global":
        line += (
            f" (train.batch_size {tc.batch_size} split over the processes; "
            f"train.batch_scope=per_process gives each process {tc.batch_size})"
        )
    elif tc.batch_scope == "per_process":
        line += f" (train.batch_scope=per_process: {tc.batch_size} per process)"
    if sync_batchnorm:
        auto = "" if tc.sync_batchnorm else f" ({per_process} < {SYNC_BATCHNORM_BELOW} per process)"
        line += f", SyncBatchNorm{auto}"
    return line


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    resume: bool = False,
    on_epoch_end: EpochCallback | None = None,
) -> TrainResult:
    """Train `config` into `run_dir`; `resume=True` continues from run_dir/checkpoint.pt
    (or starts fresh when there is none). `on_epoch_end(epoch, record)` runs on rank 0 after
    each epoch's checkpoint is written. Raises TrainingDiverged on a NaN / inf loss."""
    run_dir = Path(run_dir)
    info = distributed.init_distributed(config.train.device)
    try:
        return _train(config, run_dir, resume, on_epoch_end, info)
    finally:
        distributed.finish(info)


def build_optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """The run's optimizer: SGD with momentum (the paper's) or Adam (betas 0.9, 0.999)."""
    fused = tc.fused_optimizer or None  # None: torch's default implementation
    if tc.optimizer == "adam":
        return torch.optim.Adam(
            model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=fused
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=tc.lr,
        momentum=tc.momentum,
        weight_decay=tc.weight_decay,
        fused=fused,
    )


@dataclass
class _Training:
    """What a checkpoint saves and `resume` restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None  # needs the data's size
    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=lambda: {"epoch": 0, "value": math.inf})
    plateau: _PlateauCheck | None = None  # pose runs with heatmaps, until checked
    plateau_warning: str = ""  # checkpointed: a resumed run still reports it

    @classmethod
    def create(cls, config: RunConfig, device: torch.device) -> _Training:
        tc = config.train
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        model = build_model(config).to(device)
        if tc.channels_last:
            to_channels_last(model)
        optimizer = build_optimizer(model, tc)
        fp16 = amp_enabled(tc, device) and amp_dtype(tc, device) == torch.float16
        if fp16 and tc.amp_dtype == "bfloat16":
            log.warning("this GPU has no bfloat16: mixed precision in float16 with a GradScaler")
        scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        return cls(model, optimizer, scaler)

    @property
    def lr_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """The schedule, once `_train` has made it from the data's size."""
        if self.scheduler is None:
            raise RuntimeError("the lr scheduler is made once the data's size is known")
        return self.scheduler

    def state_dict(self, config: RunConfig) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "epoch": self.epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.lr_scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "best": self.best,
            "history": self.history,
            "plateau_warning": self.plateau_warning,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty when saved without AMP
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]
        self.plateau_warning = state.get("plateau_warning", "")


def amp_enabled(tc: TrainConfig, device: torch.device) -> bool:
    """Mixed precision runs on CUDA only (CPU autocast is slower for these networks)."""
    return tc.amp and device.type == "cuda"


def amp_dtype(tc: TrainConfig, device: torch.device) -> torch.dtype:
    """The autocast dtype: `tc.amp_dtype`, or float16 (with a warning) where the GPU has no
    bfloat16 (before Ampere)."""
    wanted = getattr(torch, tc.amp_dtype)
    # Native bfloat16 from Ampere (compute capability 8) on; older GPUs emulate it slowly.
    no_bf16 = amp_enabled(tc, device) and torch.cuda.get_device_capability(device)[0] < 8
    return torch.float16 if wanted == torch.bfloat16 and no_bf16 else wanted


def _provenance(run_dir: Path, resuming: bool) -> dict[str, Any]:
    """The running code's provenance; when resuming, the run's own, with this session added
    under "resumed_by" if it runs other code."""
    now = provenance.current()
    if not resuming:
        return now
    saved = load_provenance(run_dir) or {}
    difference = provenance.code_difference(saved, now)
    if difference is None:
        return saved
    log.warning("resuming %s with other code: %s", run_dir, difference)
    return {**saved, "resumed_by": [*saved.get("resumed_by", []), now]}


def _train(
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    on_epoch_end: EpochCallback | None,
    info: DistInfo,
) -> TrainResult:
    tc = config.train
    device = select_device(tc.device, info.local_rank)
    if info.is_main and (warning := cpu_fallback_warning(config, device)):
        log.warning("%s", warning)
    ckpt_path = run_dir / "checkpoint.pt"
    per_process, per_step_batch = batch_split(tc, info.world_size)
    if tc.sync_batchnorm and info.world_size > 1 and device.type != "cuda":
        raise ValueError(
            "train.sync_batchnorm needs CUDA (torch's SyncBatchNorm runs on CUDA only); "
            f"this run is on {device.type}"
        )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = tc.cudnn_benchmark
    training = _Training.create(config, device)
    resuming = ckpt_path.exists()
    if resuming:
        if not resume:
            raise ValueError(
                f"{run_dir} already holds a checkpoint; pass resume=True (--resume) to continue "
                "it or choose a new run directory"
            )
        check_resumable(RunConfig.load(run_dir), config, run_dir)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json", _provenance(run_dir, resuming))
    prep_started = time.perf_counter()
    train_set, sampler, val_loader, steps = training_data(with_run_cache(config, run_dir), info)
    data_prep_s = time.perf_counter() - prep_started
    training.scheduler = make_scheduler(training.optimizer, tc, steps)
    if resuming:
        training.load_state_dict(load_checkpoint(ckpt_path))
        log.info("resuming %s after epoch %d", run_dir, training.epoch)
    sync_batchnorm = use_sync_batchnorm(tc, info.world_size, device)
    if info.world_size > 1:
        if sync_batchnorm:
            training.model = nn.SyncBatchNorm.convert_sync_batchnorm(training.model)
        training.model = nn.parallel.DistributedDataParallel(
            training.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if info.is_main:
        log.info("%s", split_line(config.name, tc, info.world_size, sync_batchnorm))
    loader = make_loader(train_set, sampler, tc, info, device)
    step_model = cast(nn.Module, torch.compile(training.model)) if tc.compile else training.model
    metric = "val_mean_error_mm" if config.data.val is not None else "train_loss"
    progress = ProgressFile(
        run_dir, config.name, tc.epochs, steps, start_epoch=training.epoch, enabled=info.is_main
    )
    progress.update(training.epoch, 0, force=True)
    if training.plateau_warning:
        progress.warn(training.plateau_warning)
    if _has_heatmaps(config) and tc.plateau_check_steps > training.epoch * steps:
        training.plateau = _PlateauCheck(tc.plateau_check_steps, config, device)
    throughput = Throughput(device)
    val_seconds, val_frames = 0.0, 0  # this session's validations (a resume's own)

    for epoch in range(training.epoch, tc.epochs):
        started = time.perf_counter()
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": training.optimizer.param_groups[0]["lr"],
        }
        try:
            parts = _train_epoch(
                config,
                training,
                step_model,
                loader,
                steps,
                device,
                epoch,
                info,
                progress,
                throughput,
            )
            _check_weights(training.model, epoch)
        except TrainingDiverged as err:
            kept = (
                f"the last good checkpoint {ckpt_path} (epoch {epoch}) is kept"
                if epoch > 0
                else "no checkpoint had been written yet"
            )
            raise TrainingDiverged(f"{err}; {kept}") from None
        if not per_step(tc):
            training.lr_scheduler.step()
        training.epoch = epoch + 1
        record["train_loss"] = parts.pop("total")
        record.update({f"train_{k}": v for k, v in parts.items()})
        if not info.is_main:
            continue
        validate = (epoch + 1) % tc.val_every == 0 or epoch + 1 == tc.epochs
        if val_loader is not None and config.data.val is not None and validate:
            val_started = time.perf_counter()
            pred, gt = run_inference(training.model, val_loader, device)
            record["val_mean_error_mm"] = mean_error_mm(pred, gt, config.data.val.dataset)
            # What a full run's validations cost (a rehearsal projects them from this).
            val_seconds += time.perf_counter() - val_started
            val_frames += len(pred)
        record["time_s"] = time.perf_counter() - started
        _save_epoch(run_dir, config, training, record, metric)
        progress.update(epoch, steps, force=True)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)

    digests = distributed.gather(distributed.parameter_digest(training.model), info)
    if len(set(digests)) > 1:
        raise RuntimeError(f"DDP replicas ended with different weights: {digests}")
    history = pd.DataFrame(training.history)
    result = TrainResult(
        run_dir=run_dir,
        history=history,
        metric=metric,
        best_epoch=int(training.best["epoch"]),
        best_metric=float(training.best["value"]),
        final_metric=float(history[metric].iloc[-1]) if len(history) else math.nan,
        checkpoint=ckpt_path,
        best_checkpoint=run_dir / "best.pt",
        replica_digests=digests,
    )
    if info.is_main:
        summary = {k: v for k, v in asdict(result).items() if k not in ("run_dir", "history")}
        summary.update(
            name=config.name,
            epochs=len(history),
            world_size=info.world_size,
            batch_per_process=per_process,
            batch_per_step=per_step_batch,
            device=str(device),
            sync_batchnorm=sync_batchnorm,
            **throughput.summary(per_step_batch),
            peak_host_rss_mb=peak_host_rss_mb(),
            peak_gpu_mb=peak_gpu_mb(device),
            data_prep_s=data_prep_s,
            data_prep_frames=len(train_set),
            val_s=val_seconds,
            val_frames=val_frames,
        )
        if training.plateau_warning:
            summary["plateau_warning"] = training.plateau_warning
        atomic_write_json(run_dir / "summary.json", summary)
    return result


def make_loader(
    train_set: HandPoseDataset,
    sampler: DistributedSampler,
    tc: TrainConfig,
    info: DistInfo,
    device: torch.device,
) -> DataLoader:
    """This process's training loader: its share of each step's batch (`batch_split`), in
    the sampler's order. Built once: persistent workers keep their processes (and the crop
    cache's open files) from epoch to epoch; `set_epoch` reaches them through the dataset's
    shared epoch."""
    return DataLoader(
        train_set,
        batch_size=batch_split(tc, info.world_size)[0],
        sampler=sampler,
        drop_last=True,  # BatchNorm needs more than one sample per batch
        num_workers=tc.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=tc.num_workers > 0,
        generator=torch.Generator().manual_seed(tc.seed),
    )


def training_data(
    config: RunConfig, info: DistInfo
) -> tuple[HandPoseDataset, DistributedSampler, DataLoader | None, int]:
    """Training set and its sampler (every rank); validation loader (rank 0, if any); optimizer
    steps per epoch."""
    # With a crop cache, rank 0 builds it while the others wait, then they open it.
    cache_race = info.world_size > 1 and config.data.cache_dir is not None
    if cache_race and not info.is_main:
        distributed.barrier(info)
    centers = None
    if config.data.train.centers == "com" and config.data.cache_dir is None:
        # Rank 0 finds the CoM centres once; the others receive them (no cache, no race).
        centers = run_com_centers(config) if info.is_main else None
        centers = distributed.broadcast_object(centers, info)
    train_set = build_dataset(config, "train", centers_uvd=centers)
    if cache_race and info.is_main:
        distributed.barrier(info)
    tc = config.train
    # Shuffled by (seed, epoch) also with one process: the order never depends on history.
    sampler: DistributedSampler = DistributedSampler(
        train_set, info.world_size, info.rank, shuffle=True, seed=tc.seed, drop_last=True
    )
    per_rank, _ = batch_split(tc, info.world_size)
    if len(sampler) < per_rank:
        raise ValueError(
            f"{len(train_set)} training frames give {len(sampler)} per process, fewer than one "
            f"batch of {per_rank}"
        )
    batches = len(sampler) // per_rank  # the loader drops the last partial batch
    steps = min(batches, tc.steps_per_epoch or batches)
    val_loader = None
    if config.data.val is not None and info.is_main:
        val_set = build_dataset(config, "val")
        val_loader = DataLoader(val_set, batch_size=per_rank, num_workers=tc.num_workers)
    return train_set, sampler, val_loader, steps


def _save_epoch(
    run_dir: Path, config: RunConfig, training: _Training, record: dict[str, Any], metric: str
) -> None:
    """Rank 0 after each epoch: best weights if improved, full checkpoint, metrics.csv."""
    training.history.append(record)
    if metric in record and record[metric] < training.best["value"]:
        training.best = {"epoch": record["epoch"], "value": float(record[metric])}
        weights = {"version": CHECKPOINT_VERSION, "config": config.to_dict()}
        weights.update(epoch=record["epoch"], best=training.best)
        weights["model"] = unwrap(training.model).state_dict()
        save_checkpoint(run_dir / "best.pt", weights)
    save_checkpoint(run_dir / "checkpoint.pt", training.state_dict(config))
    history = pd.DataFrame(training.history)
    atomic_write_text(run_dir / "metrics.csv", history.to_csv(index=False))
    log.info(
        "%s epoch %d/%d: %s",
        config.name,
        record["epoch"],
        config.train.epochs,
        ", ".join(f"{k} {_fmt(v)}" for k, v in record.items() if k != "epoch"),
    )


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store the 4-D (convolution) weights channels-last, in place, as
    `Module.to(memory_format=torch.channels_last)` does."""
    for param in model.parameters():
        if param.dim() == 4:
            param.data = param.data.contiguous(memory_format=torch.channels_last)
    return model


def _train_epoch(
    config: RunConfig,
    training: _Training,
    step_model: nn.Module,
    loader: DataLoader,
    steps: int,
    device: torch.device,
    epoch: int,
    info: DistInfo,
    progress: ProgressFile,
    throughput: Throughput | None = None,
) -> dict[str, float]:
    """`steps` optimizer steps over `loader` (forwards through `step_model`: the model, or
    its compiled form); returns the mean loss parts over steps (and processes). `throughput`
    times steps 2 to `steps` (the first step's warm-up excluded).

    Nothing is read from the device per step: the parts are summed there, and every
    `sync_every` steps (and at the last) they are read and checked for NaN / inf.
    """
    tc = config.train
    optimizer, scaler = training.optimizer, training.scaler
    step_model.train()
    amp, dtype = amp_enabled(tc, device), amp_dtype(tc, device)
    names: list[str] = []
    sums = torch.zeros(0, dtype=torch.float64, device=device)
    watch = _NonFinite(device)
    bar = tqdm(
        loader,
        total=steps,
        desc=f"{config.name} epoch {epoch + 1}/{tc.epochs}",
        disable=not (tc.progress and info.is_main),
        leave=False,
    )
    keys = ("image", "heatmaps", "depth", "uvd_crop")
    for step, batch in enumerate(bar, start=1):
        batch = {k: batch[k].to(device, non_blocking=True) for k in keys}
        if tc.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss, parts = compute_loss(config, step_model, batch)
        if not names:
            names = sorted(parts)
            sums = torch.zeros(len(names), dtype=torch.float64, device=device)
        values = torch.stack([parts[k].double() for k in names])
        sums += values
        watch.record(values[names.index("total")], values, step)
        if training.plateau is not None and not training.plateau.done:
            training.plateau.record(parts, batch["heatmaps"], epoch * steps + step)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if tc.grad_clip_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(training.model.parameters(), tc.grad_clip_norm)
        scaler.step(optimizer)
        scaler.update()
        if per_step(tc):
            training.lr_scheduler.step()
        progress.update(epoch, step)
        if step % tc.sync_every == 0 or step >= steps:
            watch.check(names, epoch, info)  # one read of the device every sync_every steps
            plateau, done = training.plateau, epoch * steps + step
            if plateau is not None and not plateau.done and plateau.due(done):
                on_it = plateau.check(done)
                if on_it and info.is_main:
                    training.plateau_warning = plateau.message
                    log.warning(plateau.message)
                    progress.warn(plateau.message)
            bar.set_postfix(loss=f"{float(sums[names.index('total')]) / step:.4g}")
        if throughput is not None and (step == 1 or step >= steps):
            throughput.boundary(step)
        if step >= steps:
            break
    # Each rank's last forward updated its own BatchNorm statistics; DDP would broadcast
    # rank 0's at the next forward. Do it now, so every replica holds the checkpoint.
    distributed.broadcast_buffers(training.model, info)
    totals = distributed.mean_over_processes(sums.cpu(), info, device)
    return {k: float(v) / steps for k, v in zip(names, totals, strict=True)}


class Throughput:
    """Training samples per second over each epoch's steps after its first (the warm-up:
    cuDNN's algorithm search, the loader's first batches, a compile). On CUDA the device is
    synchronised at the two timing boundaries of an epoch only, never per step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0
        self.steps = 0
        self._start: float | None = None

    def boundary(self, step: int) -> None:
        """After step `step` (1-based) of an epoch: the first opens the timing, a later one
        closes it and counts the steps between."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if step == 1:
            self._start = now
        elif self._start is not None:
            self.seconds += now - self._start
            self.steps += step - 1
            self._start = None

    def summary(self, per_step_batch: int) -> dict[str, Any]:
        """samples_per_s (per_step_batch samples of all processes a step; None before any
        timed step) and steps_timed."""
        rate = per_step_batch * self.steps / self.seconds if self.steps and self.seconds else None
        return {"samples_per_s": rate, "steps_timed": self.steps}


def peak_host_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where `resource` is missing)."""
    try:
        import resource  # noqa: PLC0415 (POSIX only)
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes / KiB


def peak_gpu_mb(device: torch.device) -> float | None:
    """Peak memory torch allocated on `device` in MiB (None off CUDA)."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def _has_heatmaps(config: RunConfig) -> bool:
    return isinstance(config.model, PoseNetConfig) and config.model.variant != "plain"


class _PlateauCheck:
    """Sums the last stack's L_det and the all-zero prediction's on the device over the
    `window` steps up to step `after` (and until the next read), then compares them once."""

    def __init__(
        self, after: int, config: RunConfig, device: torch.device, window: int = 20
    ) -> None:
        assert isinstance(config.model, PoseNetConfig)
        self.after, self.name, self.window = after, config.name, window
        self.last = f"det_{config.model.num_stacks - 1}"
        self.reduction = config.model.det_reduction
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)
        self.message = ""
        self.done = False

    def record(self, parts: dict[str, torch.Tensor], target: torch.Tensor, done: int) -> None:
        """Step `done` (1-based, counted over epochs) had these loss parts and targets."""
        if done <= self.after - self.window:
            return
        with torch.no_grad():
            zero = heatmap_loss(torch.zeros_like(target), target, self.reduction)
            self.sums += torch.stack([parts[self.last].double(), zero.double()])

    def due(self, done: int) -> bool:
        return done >= self.after

    def check(self, done: int) -> bool:
        """True (and `message` set) when the run is on the plateau."""
        self.done = True
        det, zero = self.sums.tolist()
        ratio = det / zero if zero > 0 else math.nan
        if ratio >= PLATEAU_RATIO:
            self.message = plateau_message(self.name, done, ratio)
        return bool(self.message)


class _NonFinite:
    """The first step of an epoch whose loss was NaN / inf, kept on the device until `check`."""

    def __init__(self, device: torch.device) -> None:
        self.first_step = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet
        self.parts: torch.Tensor | None = None

    def record(self, total: torch.Tensor, values: torch.Tensor, step: int) -> None:
        new = torch.logical_and(~torch.isfinite(total), self.first_step == 0)
        self.first_step = torch.where(new, step, self.first_step)
        self.parts = values if self.parts is None else torch.where(new, values, self.parts)

    def check(self, names: list[str], epoch: int, info: DistInfo) -> None:
        """Stop every process at once when any one has seen a NaN / inf loss (all check at the
        same steps, so none is left waiting in a gradient all-reduce)."""
        first = int(self.first_step)
        if not distributed.any_process(first > 0, info, self.first_step.device):
            return
        if first == 0:
            raise TrainingDiverged(
                f"loss diverged at epoch {epoch + 1} in another process (rank {info.rank} saw "
                "finite losses)"
            )
        assert self.parts is not None
        parts = dict(zip(names, self.parts.tolist(), strict=True))
        raise TrainingDiverged(
            f"loss diverged at epoch {epoch + 1}, step {first}: loss = {parts['total']} "
            f"(parts {parts}, rank {info.rank})"
        )


def _check_weights(model: nn.Module, epoch: int) -> None:
    """A last step can turn weights to NaN / inf with a finite loss; never checkpoint those."""
    for name, p in unwrap(model).named_parameters():
        if not torch.isfinite(p).all():
            raise TrainingDiverged(
                f"weights diverged in epoch {epoch + 1}: parameter {name} holds NaN / inf"
            )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
