"""The training loop: one trainer for the four PoseNet variants ("pose") and LocNet ("locnet").

Each epoch writes, atomically (rank 0):

    run_dir/config.json     the RunConfig, with the provenance of the code (`provenance`)
    run_dir/checkpoint.pt   model, optimizer, scheduler, scaler, epoch, RNG states, history
    run_dir/best.pt         weights of the epoch with the best validation error
    run_dir/metrics.csv     epoch, lr, train loss and its parts, val_mean_error_mm, time_s
    run_dir/progress.json   epoch and step with an estimate of the time left (`progress`)
    run_dir/summary.json    (at the end) best / final metrics, world size, replica digests

Data order and augmentation depend only on (seed, epoch): a DistributedSampler (also with one
process) shuffles by seed + epoch and `HandPoseDataset.set_epoch` selects the augmentation, so
`resume=True` ends with bit-identical weights to an uninterrupted run on CPU. With torchrun, every
process runs `train`; `batch_size` is the global batch, split over the processes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.models import PoseNetConfig, hand_center_target, location_loss, pose_loss
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
from handpose_lib.training.config import RunConfig, build_model, load_provenance
from handpose_lib.training.data import build_dataset, with_run_cache
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


def compute_loss(
    config: RunConfig, model: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch (already on the device) and its parts for logging."""
    outputs = model(batch["image"])
    if isinstance(config.model, PoseNetConfig):  # task "pose" (RunConfig checks)
        return pose_loss(outputs, batch, config.model)
    loss = location_loss(outputs, hand_center_target(batch["uvd_crop"]))
    return loss, {"total": float(loss.detach())}


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

    @classmethod
    def create(cls, config: RunConfig, device: torch.device) -> _Training:
        tc = config.train
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        model = build_model(config).to(device)
        if tc.channels_last:
            to_channels_last(model)
        optimizer: torch.optim.Optimizer
        if tc.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay
            )
        scaler = torch.amp.GradScaler(device.type, enabled=tc.amp and device.type == "cuda")
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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty when saved without AMP
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]


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
    ckpt_path = run_dir / "checkpoint.pt"
    if tc.batch_size % info.world_size:
        raise ValueError(
            f"batch_size {tc.batch_size} does not split over {info.world_size} processes"
        )
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
    train_set, sampler, val_loader, steps = _data(with_run_cache(config, run_dir), info)
    training.scheduler = make_scheduler(training.optimizer, tc, steps)
    if resuming:
        training.load_state_dict(load_checkpoint(ckpt_path))
        log.info("resuming %s after epoch %d", run_dir, training.epoch)
    if info.world_size > 1:
        training.model = nn.parallel.DistributedDataParallel(
            training.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    metric = "val_mean_error_mm" if config.data.val is not None else "train_loss"
    progress = ProgressFile(
        run_dir, config.name, tc.epochs, steps, start_epoch=training.epoch, enabled=info.is_main
    )
    progress.update(training.epoch, 0, force=True)

    for epoch in range(training.epoch, tc.epochs):
        started = time.perf_counter()
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = DataLoader(
            train_set,
            batch_size=tc.batch_size // info.world_size,
            sampler=sampler,
            drop_last=True,  # BatchNorm needs more than one sample per batch
            num_workers=tc.num_workers,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(tc.seed * 100_003 + epoch),
        )
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": training.optimizer.param_groups[0]["lr"],
        }
        try:
            parts = _train_epoch(config, training, loader, steps, device, epoch, info, progress)
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
            pred, gt = run_inference(training.model, val_loader, device)
            record["val_mean_error_mm"] = mean_error_mm(pred, gt, config.data.val.dataset)
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
            name=config.name, epochs=len(history), world_size=info.world_size, device=str(device)
        )
        atomic_write_json(run_dir / "summary.json", summary)
    return result


def _data(
    config: RunConfig, info: DistInfo
) -> tuple[HandPoseDataset, DistributedSampler, DataLoader | None, int]:
    """Training set and its sampler (every rank); validation loader (rank 0, if any); optimizer
    steps per epoch."""
    # With a crop cache, rank 0 builds it while the others wait, then they open it.
    cache_race = info.world_size > 1 and config.data.cache_dir is not None
    if cache_race and not info.is_main:
        distributed.barrier(info)
    train_set = build_dataset(config, "train")
    if cache_race and info.is_main:
        distributed.barrier(info)
    tc = config.train
    # Shuffled by (seed, epoch) also with one process: the order never depends on history.
    sampler: DistributedSampler = DistributedSampler(
        train_set, info.world_size, info.rank, shuffle=True, seed=tc.seed, drop_last=True
    )
    per_rank = tc.batch_size // info.world_size
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
    loader: DataLoader,
    steps: int,
    device: torch.device,
    epoch: int,
    info: DistInfo,
    progress: ProgressFile,
) -> dict[str, float]:
    """`steps` optimizer steps over `loader`; returns the mean loss parts over steps (and
    processes)."""
    tc = config.train
    model, optimizer, scaler = training.model, training.optimizer, training.scaler
    model.train()
    sums: dict[str, float] = {}
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
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
            loss, parts = compute_loss(config, model, batch)
        _check_loss(loss, parts, epoch, step, info)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if tc.grad_clip_norm is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip_norm)
        scaler.step(optimizer)
        scaler.update()
        if per_step(tc):
            training.lr_scheduler.step()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{parts['total']:.4g}")
        progress.update(epoch, step)
        if step >= steps:
            break
    names = sorted(sums)
    totals = torch.tensor([sums[k] for k in names], dtype=torch.float64)
    # Each rank's last forward updated its own BatchNorm statistics; DDP would broadcast
    # rank 0's at the next forward. Do it now, so every replica holds the checkpoint.
    distributed.broadcast_buffers(model, info)
    totals = distributed.mean_over_processes(totals, info, device)
    return {k: float(v) / steps for k, v in zip(names, totals, strict=True)}


def _check_loss(
    loss: torch.Tensor, parts: dict[str, float], epoch: int, step: int, info: DistInfo
) -> None:
    """Stop every process at once when any one sees a NaN / inf loss (before backward, whose
    gradient all-reduce would otherwise leave the others waiting)."""
    if distributed.any_process(not math.isfinite(parts["total"]), info, loss.device):
        raise TrainingDiverged(
            f"loss diverged at epoch {epoch + 1}, step {step}: loss = {parts['total']} "
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
