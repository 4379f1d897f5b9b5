"""One trainer for every network: the four PoseNet variants ("pose") and LocNet ("locnet").

The paper's recipe (Section 4): SGD, mini-batch 32, momentum 0.9, weight decay 5e-5, learning
rate 0.1 divided by 10 twice. A run is described by one `RunConfig` (model, crop,
augmentation, optimisation, data), saved as run_dir/config.json. Each epoch writes, atomically:

    run_dir/checkpoint.pt   model, optimizer, scheduler, scaler, epoch, RNG states, history
    run_dir/best.pt         weights of the epoch with the best validation error
    run_dir/metrics.csv     epoch, lr, train loss and its parts, val_mean_error_mm, time_s
    run_dir/summary.json    (at the end) best / final metrics, world size, replica digests

Data order and augmentation depend only on (seed, epoch): a DistributedSampler (also with one
process) shuffles by seed + epoch and `HandPoseDataset.set_epoch` selects the augmentation, so
`resume=True` ends with bit-identical weights to an uninterrupted run on CPU.

Command line (single process, or `torchrun --nproc_per_node N -m handpose_lib.train ...` for
DistributedDataParallel; `batch_size` is the global batch, split over the processes):

    python -m handpose_lib.train --profile cpu --model attention --run-dir runs/attention
    python -m handpose_lib.train --profile cpu --model locnet --run-dir runs/locnet
    python -m handpose_lib.train --run-dir runs/attention --resume
    python -m handpose_lib.train --profile smoke --model plain --run-dir /tmp/r --set train.lr=0.01
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from handpose_lib import uvd_format
from handpose_lib.evaluate import MethodResult, evaluate_uvd
from handpose_lib.joints import num_joints
from handpose_lib.models import (
    LocNet,
    LocNetConfig,
    PoseNet,
    PoseNetConfig,
    hand_center_target,
    location_loss,
    pose_loss,
)
from handpose_lib.models.posenet import VARIANTS
from handpose_lib.predict import read_centers, run_inference, unwrap, write_predictions
from handpose_lib.preprocess import AugmentConfig, CropConfig

log = logging.getLogger(__name__)

TASKS = ("pose", "locnet")
SOURCE_KINDS = ("synthetic", "rendered", "icvl", "nyu")
PROFILES = ("paper", "cpu", "smoke")
MODELS = (*VARIANTS, "locnet")
CHECKPOINT_VERSION = 1
# Fields that may change when a run is resumed: they do not change what is computed.
RESUMABLE_CHANGES = (
    "train.epochs",
    "train.progress",
    "train.num_workers",
    "train.device",
    "data.val.centers",  # changes what validation reports, not the weights
)


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN / inf; the last good checkpoint is left as it was."""


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a run.

    batch_size:      global mini-batch (split evenly over DDP processes).
    lr_milestones:   epochs at which the learning rate is multiplied by lr_gamma.
    grad_clip_norm:  clip the global gradient norm to this value (None: no clipping).
    optimizer:       "sgd" (the paper's, with momentum) or "adam" (betas 0.9, 0.999; used by
                     the short CPU profile, where SGD stays on the all-zero-heatmap plateau).
    amp:             float16 autocast + GradScaler, used on CUDA only.
    device:          "auto" (CUDA when present), "cuda" or "cpu".
    steps_per_epoch: cap on optimizer steps per epoch (None: the whole training set).
    val_every:       validate every this many epochs, and always after the last one.
    """

    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    lr_milestones: tuple[int, ...] = (10, 15)
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None
    seed: int = 0
    num_workers: int = 0
    amp: bool = True
    device: str = "auto"
    progress: bool = True
    steps_per_epoch: int | None = None
    val_every: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.momentum < 0 or self.weight_decay < 0 or not self.lr_gamma > 0:
            raise ValueError(
                "TrainConfig: need lr > 0, lr_gamma > 0, momentum >= 0, weight_decay >= 0; got "
                f"{self.lr}, {self.lr_gamma}, {self.momentum}, {self.weight_decay}"
            )
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)) or any(
            m < 1 for m in self.lr_milestones
        ):
            raise ValueError(
                f"TrainConfig.lr_milestones must be increasing epochs >= 1, got "
                f"{self.lr_milestones}"
            )
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(f"TrainConfig.grad_clip_norm must be > 0, got {self.grad_clip_norm}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"TrainConfig.optimizer must be sgd or adam, got {self.optimizer!r}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers}")
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"TrainConfig.device must be auto, cuda or cpu, got {self.device!r}")
        if self.val_every < 1:
            raise ValueError(f"TrainConfig.val_every must be >= 1, got {self.val_every}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(
                f"TrainConfig.steps_per_epoch must be >= 1, got {self.steps_per_epoch}"
            )


@dataclass(frozen=True)
class SourceSpec:
    """Which frames to read and where to centre the crops.

    kind:       "synthetic" (SyntheticSource), "rendered" (the published ICVL test poses
                rendered, RenderedPosesSource), "icvl" or "nyu" (dataset files).
    num_frames: synthetic: frames to render (>= 1); others: 0 = all, n = n frames evenly
                spaced over the source.
    seed:       synthetic / rendered frames.
    root:       icvl / nyu folder (None: $HANDPOSE_ICVL_ROOT / $HANDPOSE_NYU_ROOT).
    split:      icvl / nyu split ("train", "test", ...).
    centers:    "com" (segmentation centre of mass), "joints" (oracle) or a file of refined
                centres, one uvd per frame (`predict.write_predictions` of a LocNet run).
    """

    kind: str = "synthetic"
    num_frames: int = 0
    seed: int = 0
    root: str | None = None
    split: str = "train"
    centers: str = "com"

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"SourceSpec.kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if self.num_frames < 0 or (self.kind == "synthetic" and self.num_frames < 1):
            raise ValueError(
                f"SourceSpec.num_frames must be >= 1 for synthetic data and >= 0 otherwise, "
                f"got {self.num_frames} for {self.kind!r}"
            )

    @property
    def dataset(self) -> str:
        """Joint layout and camera: "nyu" for NYU files, "icvl" for everything else."""
        return "nyu" if self.kind == "nyu" else "icvl"


@dataclass(frozen=True)
class DataConfig:
    """Training and validation data; `cache_dir` keeps memory-mapped crops (one subfolder per
    role), worth it where rendering, PNG decoding and CoM dominate a CPU epoch. "run" puts
    the cache in the run's own folder."""

    train: SourceSpec = field(default_factory=SourceSpec)
    val: SourceSpec | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.val is not None and self.val.dataset != self.train.dataset:
            raise ValueError(
                f"DataConfig: train data is {self.train.dataset}, validation data is "
                f"{self.val.dataset}; they must share a joint layout"
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run. `task` "pose" takes a PoseNetConfig, "locnet" a
    LocNetConfig; `augment` None trains without augmentation; `profile` is informational."""

    task: str
    model: PoseNetConfig | LocNetConfig
    crop: CropConfig
    augment: AugmentConfig | None
    train: TrainConfig
    data: DataConfig
    profile: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"RunConfig.task must be one of {TASKS}, got {self.task!r}")
        expected = PoseNetConfig if self.task == "pose" else LocNetConfig
        if not isinstance(self.model, expected):
            raise ValueError(
                f"RunConfig: task {self.task!r} needs a {expected.__name__}, "
                f"got {type(self.model).__name__}"
            )
        if self.crop.input_size != self.model.input_size:
            raise ValueError(
                f"RunConfig: crop.input_size={self.crop.input_size} != "
                f"model.input_size={self.model.input_size}"
            )
        if self.task == "pose":
            if self.crop.heatmap_size != self.model.heatmap_size:
                raise ValueError(
                    f"RunConfig: crop.heatmap_size={self.crop.heatmap_size} != "
                    f"model.heatmap_size={self.model.heatmap_size}"
                )
            joints = num_joints(self.data.train.dataset)
            if self.model.num_joints != joints:
                raise ValueError(
                    f"RunConfig: model.num_joints={self.model.num_joints}, but "
                    f"{self.data.train.dataset} data has {joints} joints"
                )

    @property
    def name(self) -> str:
        return self.model.variant if self.task == "pose" else "locnet"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of `to_dict`; unknown or missing fields raise ValueError naming them."""
        _check_keys(data, {f.name for f in fields(cls)}, "config", optional={"profile"})
        task = data["task"]
        model_cls = LocNetConfig if task == "locnet" else PoseNetConfig
        data_dict = data["data"]
        _check_keys(data_dict, {f.name for f in fields(DataConfig)}, "config.data")
        val = data_dict.get("val")
        return cls(
            task=task,
            model=_build(model_cls, data["model"], "config.model"),
            crop=_build(CropConfig, data["crop"], "config.crop"),
            augment=None
            if data["augment"] is None
            else _build(AugmentConfig, data["augment"], "config.augment"),
            train=_build(TrainConfig, data["train"], "config.train"),
            data=DataConfig(
                train=_build(SourceSpec, data_dict["train"], "config.data.train"),
                val=None if val is None else _build(SourceSpec, val, "config.data.val"),
                cache_dir=data_dict.get("cache_dir"),
            ),
            profile=data.get("profile", ""),
        )

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted fields replaced, e.g. {"train.lr": 0.01, "data.val": None}."""
        data = self.to_dict()
        for key, value in overrides.items():
            node, parts = data, key.split(".")
            for i, part in enumerate(parts):
                if not isinstance(node, dict) or part not in node:
                    known = sorted(node) if isinstance(node, dict) else []
                    where = ".".join(parts[:i]) or "config"
                    raise ValueError(f"unknown config field {key!r}: {where} has {known}")
                if i == len(parts) - 1:
                    node[part] = value
                else:
                    node = node[part]
        return RunConfig.from_dict(data)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        _atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        """From a config.json, or from a run directory holding one."""
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: run config not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise uvd_format.FormatError(
                f"{path}:{err.lineno}: not valid JSON ({err.msg})"
            ) from None
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError, KeyError) as err:
            raise uvd_format.FormatError(f"{path}: {err}") from None


def _check_keys(data: Any, names: set[str], where: str, optional: set[str] = frozenset()) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    unknown, missing = sorted(set(data) - names), sorted(names - set(data) - set(optional))
    if unknown or missing:
        problems = [f"unknown fields {unknown}"] * bool(unknown)
        problems += [f"missing fields {missing}"] * bool(missing)
        raise ValueError(f"{where}: {', '.join(problems)}; expected {sorted(names)}")


def _build(cls: type, data: Any, where: str) -> Any:
    """Dataclass from a JSON object; JSON lists become the tuples the configs use."""
    _check_keys(data, {f.name for f in fields(cls)}, where, optional={f.name for f in fields(cls)})
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# Per profile: model preset, training recipe and frames of the default data.
_PROFILE_TRAIN = {
    # Section 4. The paper gives no epoch count; 20 epochs of ~300K frames with drops after
    # 10 and 15 is our choice.
    "paper": TrainConfig(epochs=20, lr_milestones=(10, 15), num_workers=8),
    # A 2-core CPU inside the 30-minute default run (four pose variants + the localization
    # net): 768 steps per network. Adam instead of the paper's SGD: with so few steps
    # SGD stays on the plateau where every heatmap is predicted as zero (measured: L_det stuck
    # at the all-zero value 0.0475 per stack for 8 epochs at lr 0.01 and 0.1).
    "cpu": TrainConfig(
        epochs=6, optimizer="adam", lr=1e-3, lr_milestones=(5,), num_workers=0, val_every=3
    ),
    "smoke": TrainConfig(
        epochs=2, batch_size=4, lr=0.01, lr_milestones=(1, 2), progress=False, amp=False
    ),
}
# Target heatmap std in heatmap pixels: 1 as in Newell et al. at 64x64; wider on the coarse
# 32x32 CPU maps so that each target has enough positive pixels to leave the zero plateau.
_HEATMAP_SIGMA = {"paper": 1.0, "cpu": 2.0, "smoke": 1.0}
# (train frames, validation frames); 0 = all frames of a dataset's files.
_PROFILE_FRAMES = {"paper": (300_000, 0), "cpu": (4096, 0), "smoke": (16, 8)}


def default_data(profile: str, data: str = "synthetic") -> DataConfig:
    """Training / validation sources of a profile.

    data "synthetic": procedural hands for training; validation on the 1596 published ICVL
    test poses rendered (smoke: 8 more procedural hands), so predictions line up with
    Table 1. "icvl" / "nyu": the dataset files, train split for training (a subset at the cpu
    and smoke sizes), test split for validation.
    """
    n_train, n_val = _PROFILE_FRAMES[profile]
    cache_dir = "run" if profile == "cpu" else None
    if data == "synthetic":
        train = SourceSpec("synthetic", num_frames=n_train, seed=0)
        if profile == "smoke":
            return DataConfig(train=train, val=SourceSpec("synthetic", num_frames=n_val, seed=1))
        return DataConfig(train=train, val=SourceSpec("rendered", seed=0), cache_dir=cache_dir)
    if data in ("icvl", "nyu"):
        n_train = 0 if profile == "paper" else n_train
        return DataConfig(
            train=SourceSpec(data, num_frames=n_train, split="train"),
            val=SourceSpec(data, num_frames=n_val, split="test"),
            cache_dir=cache_dir,
        )
    raise ValueError(f"unknown data {data!r}: expected synthetic, icvl or nyu")


def make_run_config(
    profile: str = "cpu", model: str = "attention", data: str = "synthetic"
) -> RunConfig:
    """The named profile ("paper", "cpu", "smoke") for a PoseNet variant or "locnet"."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {PROFILES}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")
    data_config = default_data(profile, data)
    dataset = data_config.train.dataset
    if model == "locnet":
        task, net = "locnet", LocNetConfig.preset(profile)
    else:
        task = "pose"
        net = PoseNetConfig.preset(profile, variant=model, num_joints=num_joints(dataset))
    size = net.input_size
    if task == "pose":
        # Pose networks train on crops around the true hand centre, jittered by the
        # augmentation's translation, and are tested on crops around the CoM or the
        # localization net's centre; the localization net trains on CoM crops.
        data_config = replace(data_config, train=replace(data_config.train, centers="joints"))
    return RunConfig(
        task=task,
        model=net,
        crop=CropConfig.for_dataset(
            dataset, input_size=size, heatmap_size=size // 2, heatmap_sigma=_HEATMAP_SIGMA[profile]
        ),
        augment=AugmentConfig(),
        train=_PROFILE_TRAIN[profile],
        data=data_config,
        profile=profile,
    )


# --------------------------------------------------------------------------------------------
# Data and model


class EvenSubset:
    """FrameSource of `n` frames evenly spaced over another source (keeps its order)."""

    def __init__(self, source: Any, n: int) -> None:
        if not 1 <= n <= len(source):
            raise ValueError(f"subset of {n} frames requested from {len(source)}")
        self.source, self.dataset = source, source.dataset
        self.indices = np.linspace(0, len(source) - 1, n).round().astype(int)
        inner = getattr(source, "cache_key", None)
        self.cache_key = None if inner is None else f"{inner}:subset={n}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.source[int(self.indices[index])]


def build_source(spec: SourceSpec) -> Any:
    """The FrameSource a SourceSpec describes."""
    if spec.kind == "synthetic":
        from handpose_lib.datasets.synthetic import SyntheticSource

        return SyntheticSource(spec.num_frames, seed=spec.seed)
    if spec.kind == "rendered":
        from handpose_lib.datasets.rendered_poses import RenderedPosesSource

        source = RenderedPosesSource(seed=spec.seed)
    elif spec.kind == "icvl":
        from handpose_lib.datasets.icvl import IcvlSource

        source = IcvlSource(spec.root, split=spec.split)
    else:
        from handpose_lib.datasets.nyu import NyuSource

        source = NyuSource(spec.root, split=spec.split)
    return EvenSubset(source, spec.num_frames) if spec.num_frames else source


def build_dataset(config: RunConfig, role: str = "train", spec: SourceSpec | None = None):
    """HandPoseDataset of the run's "train" (augmented) or "val" data, or of any `spec`."""
    from handpose_lib.datasets.torch_dataset import HandPoseDataset

    spec = spec or (config.data.train if role == "train" else config.data.val)
    if spec is None:
        raise ValueError(f"the run config has no {role} data")
    source = build_source(spec)
    centers = spec.centers
    if centers not in ("com", "joints"):
        centers = read_centers(centers, expected_frames=len(source))
    cache_dir = config.data.cache_dir
    if cache_dir == "run":  # only `train` / `evaluate_run` know the run folder; no cache here
        cache_dir = None
    return HandPoseDataset(
        source,
        config.crop,
        centers=centers,
        augment=config.augment if role == "train" else None,
        seed=config.train.seed,
        cache_dir=None if cache_dir is None else Path(cache_dir) / role,
    )


def build_model(config: RunConfig) -> nn.Module:
    return PoseNet(config.model) if config.task == "pose" else LocNet(config.model)


def compute_loss(
    config: RunConfig, model: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch (already on the device) and its parts for logging."""
    outputs = model(batch["image"])
    if config.task == "pose":
        return pose_loss(outputs, batch, config.model)
    loss = location_loss(outputs, hand_center_target(batch["uvd_crop"]))
    return loss, {"total": float(loss.detach())}


def select_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA (this process's GPU) when present or asked for, else CPU."""
    if preference not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cuda or cpu, got {preference!r}")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested, but CUDA is not available here")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# Distributed, checkpoints, RNG


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call created the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE > 1): nccl on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(rank, world, local_rank)
    device = select_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Generous timeout: the other ranks wait while rank 0 validates or builds a crop cache.
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return DistInfo(rank, world, local_rank, owns_group=True)


def parameter_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer, in order: equal digests = identical weights."""
    digest = hashlib.sha256()
    for name, tensor in unwrap(model).state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _rng_state() -> dict[str, Any]:
    # Nothing here draws from numpy's global generator; saved for user code that does.
    np_state = np.random.get_state()  # noqa: NPY002
    state = {
        "torch": torch.get_rng_state(),
        # Lists, so that the checkpoint loads with weights_only=True.
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write via a temporary file in the same folder and os.replace, so a crash never leaves a
    truncated file behind: readers see the old version or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    _atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("version") != CHECKPOINT_VERSION:
        raise uvd_format.FormatError(
            f"{path}: checkpoint version {state.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    return state


def _check_resumable(saved: RunConfig, given: RunConfig, run_dir: Path) -> None:
    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(saved.to_dict()), flat(given.to_dict())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    differ = [k for k in differ if k not in RESUMABLE_CHANGES]
    if differ:
        raise ValueError(
            f"{run_dir / 'config.json'}: cannot resume with a different config; "
            f"fields {differ} differ (only {list(RESUMABLE_CHANGES)} may change)"
        )


# --------------------------------------------------------------------------------------------
# Training


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
    info = init_distributed(config.train.device)
    try:
        return _train(config, run_dir, resume, on_epoch_end, info)
    finally:
        if info.owns_group:
            dist.destroy_process_group()


@dataclass
class _Training:
    """What a checkpoint saves and `resume` restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=lambda: {"epoch": 0, "value": math.inf})

    @classmethod
    def create(cls, config: RunConfig, device: torch.device) -> _Training:
        tc = config.train
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        model = build_model(config).to(device)
        if tc.optimizer == "adam":
            optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay
            )
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(tc.lr_milestones), gamma=tc.lr_gamma
        )
        scaler = torch.amp.GradScaler(device.type, enabled=tc.amp and device.type == "cuda")
        return cls(model, optimizer, scheduler, scaler)

    def state_dict(self, config: RunConfig) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "config": config.to_dict(),
            "epoch": self.epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state["scaler"]:  # empty when saved without AMP
            self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]


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
    if ckpt_path.exists():
        if not resume:
            raise ValueError(
                f"{run_dir} already holds a checkpoint; pass resume=True (--resume) to continue "
                "it or choose a new run directory"
            )
        _check_resumable(RunConfig.load(run_dir), config, run_dir)
        training.load_state_dict(load_checkpoint(ckpt_path))
        log.info("resuming %s after epoch %d", run_dir, training.epoch)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
    if info.world_size > 1:
        training.model = nn.parallel.DistributedDataParallel(
            training.model, device_ids=[device.index] if device.type == "cuda" else None
        )
    train_set, sampler, val_loader = _data(_with_run_cache(config, run_dir), info)
    metric = "val_mean_error_mm" if config.data.val is not None else "train_loss"

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
            parts = _train_epoch(config, training, loader, device, epoch, info)
            _check_weights(training.model, epoch)
        except TrainingDiverged as err:
            kept = (
                f"the last good checkpoint {ckpt_path} (epoch {epoch}) is kept"
                if epoch > 0
                else "no checkpoint had been written yet"
            )
            raise TrainingDiverged(f"{err}; {kept}") from None
        training.scheduler.step()
        training.epoch = epoch + 1
        record["train_loss"] = parts.pop("total")
        record.update({f"train_{k}": v for k, v in parts.items()})
        if not info.is_main:
            continue
        validate = (epoch + 1) % tc.val_every == 0 or epoch + 1 == tc.epochs
        if val_loader is not None and validate:
            pred, gt = run_inference(training.model, val_loader, device)
            record["val_mean_error_mm"] = _mean_error_mm(pred, gt, config.data.val.dataset)
        record["time_s"] = time.perf_counter() - started
        _save_epoch(run_dir, config, training, record, metric)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)

    digests = _gather(parameter_digest(training.model), info)
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
        _atomic_write_text(
            run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n"
        )
    return result


def _with_run_cache(config: RunConfig, run_dir: Path) -> RunConfig:
    """Resolve cache_dir "run" to the run's own folder (rendered / cropped once per run)."""
    if config.data.cache_dir != "run":
        return config
    return config.with_overrides({"data.cache_dir": str(run_dir / "cache")})


def _data(config: RunConfig, info: DistInfo) -> tuple[Any, DistributedSampler, DataLoader | None]:
    """Training set and its sampler (every rank); validation loader (rank 0, if any)."""
    # With a crop cache, rank 0 builds it while the others wait, then they open it.
    cache_race = info.world_size > 1 and config.data.cache_dir is not None
    if cache_race and not info.is_main:
        dist.barrier()
    train_set = build_dataset(config, "train")
    if cache_race and info.is_main:
        dist.barrier()
    tc = config.train
    # Shuffled by (seed, epoch) also with one process: the order never depends on history.
    sampler = DistributedSampler(
        train_set, info.world_size, info.rank, shuffle=True, seed=tc.seed, drop_last=True
    )
    per_rank = tc.batch_size // info.world_size
    if len(sampler) < per_rank:
        raise ValueError(
            f"{len(train_set)} training frames give {len(sampler)} per process, fewer than one "
            f"batch of {per_rank}"
        )
    val_loader = None
    if config.data.val is not None and info.is_main:
        val_set = build_dataset(config, "val")
        val_loader = DataLoader(val_set, batch_size=per_rank, num_workers=tc.num_workers)
    return train_set, sampler, val_loader


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
    _atomic_write_text(run_dir / "metrics.csv", history.to_csv(index=False))
    log.info(
        "%s epoch %d/%d: %s",
        config.name,
        record["epoch"],
        config.train.epochs,
        ", ".join(f"{k} {_fmt(v)}" for k, v in record.items() if k != "epoch"),
    )


def _train_epoch(
    config: RunConfig,
    training: _Training,
    loader: DataLoader,
    device: torch.device,
    epoch: int,
    info: DistInfo,
) -> dict[str, float]:
    """One pass over `loader`; returns the mean loss parts over steps (and processes)."""
    tc = config.train
    model, optimizer, scaler = training.model, training.optimizer, training.scaler
    model.train()
    sums: dict[str, float] = {}
    steps = min(len(loader), tc.steps_per_epoch or len(loader))
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
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{parts['total']:.4g}")
        if step >= steps:
            break
    names = sorted(sums)
    totals = torch.tensor([sums[k] for k in names], dtype=torch.float64)
    if info.world_size > 1:
        # Each rank's last forward updated its own BatchNorm statistics; DDP would broadcast
        # rank 0's at the next forward. Do it now, so every replica holds the checkpoint.
        for buffer in unwrap(model).buffers():
            dist.broadcast(buffer, src=0)
        totals = totals.to(device)
        dist.all_reduce(totals)
        totals = totals.cpu() / info.world_size
    return {k: float(v) / steps for k, v in zip(names, totals, strict=True)}


def _check_loss(
    loss: torch.Tensor, parts: dict[str, float], epoch: int, step: int, info: DistInfo
) -> None:
    """Stop every process at once when any one sees a NaN / inf loss (before backward, whose
    gradient all-reduce would otherwise leave the others waiting)."""
    bad = torch.tensor([0.0 if math.isfinite(parts["total"]) else 1.0], device=loss.device)
    if info.world_size > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    if bad.item():
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


def _mean_error_mm(pred: np.ndarray, gt: np.ndarray, dataset: str) -> float:
    """Mean 3D error in mm of (N, J, 3) joints or (N, 3) centres, in the dataset's camera."""
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    return evaluate_uvd(pred, gt, dataset, name="val").mean_error_mm


def _gather(value: str, info: DistInfo) -> list[str]:
    if info.world_size == 1:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# Using trained runs


def load_model(
    run_dir: str | os.PathLike, which: str = "last", device: str = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """The network of a run ("last" or "best" checkpoint) in eval mode, and its config.

    "last" is the default for reported numbers: with the default synthetic data the
    validation frames are the rendered ICVL test poses, so picking the "best" epoch on them
    would select the model on the test set.
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / ("best.pt" if which == "best" else "checkpoint.pt"))
    config = RunConfig.from_dict(state["config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.to(select_device(device)).eval(), config


def evaluate_run(
    run_dir: str | os.PathLike,
    which: str = "last",
    source: SourceSpec | None = None,
    out_path: str | os.PathLike | None = None,
    device: str = "auto",
    batch_size: int = 32,
) -> MethodResult:
    """Predict the run's validation data (or `source`), optionally write the predictions in
    the community format, and evaluate them: joints for pose runs, centres for LocNet runs."""
    model, config = load_model(run_dir, which, device)
    spec = source or config.data.val
    dataset = build_dataset(_with_run_cache(config, Path(run_dir)), "val", spec)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=config.train.num_workers)
    pred, gt = run_inference(model, loader, next(model.parameters()).device)
    if out_path is not None:
        write_predictions(out_path, pred)
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    name = f"{config.name} ({Path(run_dir).name})"
    return evaluate_uvd(pred, gt, spec.dataset, name=name, file=str(out_path or ""))


# --------------------------------------------------------------------------------------------
# Command line


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--run-dir", required=True, help="where config, checkpoints, logs go")
    parser.add_argument("--profile", choices=PROFILES, default="cpu")
    parser.add_argument("--model", choices=MODELS, default="attention")
    parser.add_argument("--data", choices=("synthetic", "icvl", "nyu"), default="synthetic")
    parser.add_argument("--config", help="a config.json to use instead of the profile")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config fields, values as JSON (train.lr=0.01 data.val=null)",
    )
    parser.add_argument("--resume", action="store_true", help="continue run-dir's checkpoint")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_dir = Path(args.run_dir)
    if args.config:
        config = RunConfig.load(args.config)
    elif args.resume and (run_dir / "config.json").is_file():
        config = RunConfig.load(run_dir)
    else:
        config = make_run_config(args.profile, args.model, args.data)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = _parse_value(value)
    if args.device:
        overrides["train.device"] = args.device
    if args.no_progress:
        overrides["train.progress"] = False
    config = config.with_overrides(overrides) if overrides else config
    try:
        result = train(config, run_dir, resume=args.resume)
    except TrainingDiverged as err:
        print(f"training stopped: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(
            f"{config.name}: best {result.metric} {result.best_metric:.4g} at epoch "
            f"{result.best_epoch}; checkpoints in {run_dir}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
