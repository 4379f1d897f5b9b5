"""What decides a run: `RunConfig` (model, crop, augmentation, optimisation, data), its JSON
file, and the one rule saying which fields change the weights.

Each config field carries its effect in its dataclass metadata (`field_effect`):

    "weights"     (the default) changes what training computes;
    "validation"  steers only the validation during training: the logged validation error and
                  the choice of best.pt, never the last epoch's weights (validation runs in
                  eval mode and draws no random numbers);
    "none"        bookkeeping: progress bars, loader workers, device, the profile's name.

Resuming accepts changes of "validation" and "none" fields and of fields marked resumable
(`train.epochs`: a run can be continued for more epochs); reusing a finished run accepts
changes of "none" fields, and of "validation" fields for the last epoch's weights.

One module (about 500 lines) for one concept: the rule reads the effect each field declares
here, and the fields, the JSON round trip and the rule change together.
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Set as AbstractSet
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from torch import nn

from handpose_lib.datasets.scene import SceneConfig
from handpose_lib.joints import num_joints
from handpose_lib.models import LocNet, LocNetConfig, PoseNet, PoseNetConfig
from handpose_lib.models.posenet import VARIANTS
from handpose_lib.preprocess import AugmentConfig, CropConfig
from handpose_lib.training import provenance
from handpose_lib.training.atomic import atomic_write_json

TASKS = ("pose", "locnet")
SOURCE_KINDS = ("synthetic", "rendered", "icvl", "nyu")
RENDERED_KINDS = ("synthetic", "rendered")
CENTER_FILE_KINDS = ("xyz", "uvd")  # SourceSpec.centers "xyz:PATH" / "uvd:PATH"
# SourceSpec.centers "registry:SOURCE": the registered community centre file of the source's
# dataset and split (`center_files.registered_centers`), e.g. "registry:v2v".
CENTER_REGISTRY = "registry"
MODELS = (*VARIANTS, "locnet")
LR_SCHEDULES = ("step", "cosine")
EFFECTS = ("weights", "validation", "none")


class ConfigError(ValueError):
    """A run configuration (or a run folder's record of one) is invalid; the message names the
    file and the field."""


def _field(default: Any = MISSING, *, effect: str = "weights", resumable: bool = False, **kw):
    """A dataclass field with its effect on the weights (see the module docstring)."""
    assert effect in EFFECTS
    return field(default=default, metadata={"effect": effect, "resumable": resumable}, **kw)


# --------------------------------------------------------------------------------------------
# The dataclasses


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a run.

    batch_size:      the mini-batch of one optimizer step, split evenly over DDP processes
                     (or each process's, with batch_scope "per_process").
    lr_schedule:     "step": the learning rate is multiplied by lr_gamma at each epoch of
                     lr_milestones (the paper's); "cosine": per optimizer step, a linear
                     warm-up from 0 over warmup_steps, then a cosine from lr to 0 at the end of
                     the last epoch (lr_milestones, lr_gamma unused).
    warmup_steps:    optimizer steps of the cosine schedule's warm-up (0: none).
    grad_clip_norm:  clip the global gradient norm to this value (None: no clipping).
    optimizer:       "sgd" (the paper's, with momentum) or "adam" (betas 0.9, 0.999; used by
                     the short CPU profile, where SGD stays on the all-zero-heatmap plateau).
    amp:             mixed-precision autocast (`amp_dtype`), used on CUDA only.
    device:          "auto" (CUDA when present), "cuda" or "cpu".
    steps_per_epoch: cap on optimizer steps per epoch (None: the whole training set).
    val_every:       validate every this many epochs, and always after the last one.
    channels_last:   train in the channels-last (NHWC) memory format: 8-16% faster steps of
                     the cpu-size networks on a CPU (`benchmarks/bench_throughput.py`).
                     Like the thread count it changes only the order of float sums, so it
                     counts as bookkeeping, not as a change of the weights.
    amp_dtype:       "float16" (with a GradScaler, whose inf check reads the GPU once per
                     step; configs written before this field load as float16) or "bfloat16"
                     (float32's range: no loss scaling, no read of the GPU; the GPU profiles;
                     float16 on GPUs before Ampere).
    sync_every:      read the loss parts back and check them for NaN / inf every this many
                     steps and at the end of each epoch; on a GPU every read waits for all
                     queued work, so reading every step idles it. A NaN is reported with the
                     step it first appeared in; the epoch's checkpoint is then not written.
    plateau_check_steps: after this many optimizer steps (0: never), say in one line (the
                     log, progress.json, summary.json) when the last stack's L_det is still
                     >= 0.95 x that of all-zero heatmaps: the run sits on the zero plateau.
    cudnn_benchmark: let cuDNN time its convolution algorithms for the (fixed) input shape.
    fused_optimizer: the optimizer's fused implementation: one kernel for all parameters, and
                     its step counters stay on the device (the default implementation reads
                     each one back to the host every step). Same update, other float order.
    compile:         `torch.compile` the network for training (a measured option:
                     `benchmarks/gpu_train_bench.py --compile`).
    batch_scope:     "global": batch_size is the batch of one optimizer step, split evenly
                     over the DDP processes (the paper's 32 stays 32 on any number of GPUs);
                     "per_process": each process takes batch_size, so a step sees
                     batch_size x processes samples. Scaling the batch by k usually wants the
                     lr scaled by k too (the linear scaling rule of Goyal et al., 2017, with a
                     warm-up): set train.lr yourself; nothing is rescaled silently.
    sync_batchnorm:  BatchNorm statistics over the whole step's batch instead of each
                     process's part (`nn.SyncBatchNorm`, CUDA only); matters when a process's
                     part is small (8 per GPU on 4 GPUs with the global 32).
    """

    epochs: int = _field(20, resumable=True)
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    lr_milestones: tuple[int, ...] = (10, 15)
    lr_gamma: float = 0.1
    grad_clip_norm: float | None = None
    seed: int = 0
    num_workers: int = _field(0, effect="none")
    amp: bool = True
    device: str = _field("auto", effect="none")
    progress: bool = _field(True, effect="none")
    steps_per_epoch: int | None = None
    val_every: int = _field(1, effect="validation")
    channels_last: bool = _field(False, effect="none")
    lr_schedule: str = "step"
    warmup_steps: int = 0
    amp_dtype: str = "float16"
    sync_every: int = _field(25, effect="none")
    cudnn_benchmark: bool = _field(True, effect="none")
    plateau_check_steps: int = _field(200, effect="none")
    compile: bool = _field(False, effect="none")
    fused_optimizer: bool = False  # a resume keeps the saved optimizer's: refuse a change
    batch_scope: str = "global"
    sync_batchnorm: bool = False

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
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(
                f"TrainConfig.amp_dtype must be float16 or bfloat16, got {self.amp_dtype!r}"
            )
        if self.sync_every < 1:
            raise ValueError(f"TrainConfig.sync_every must be >= 1, got {self.sync_every}")
        if self.batch_scope not in ("global", "per_process"):
            raise ValueError(
                f"TrainConfig.batch_scope must be global or per_process, got {self.batch_scope!r}"
            )
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
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.warmup_steps < 0 or (self.warmup_steps and self.lr_schedule != "cosine"):
            raise ValueError(
                f"TrainConfig.warmup_steps must be >= 0, and 0 unless lr_schedule is 'cosine'; "
                f"got {self.warmup_steps} with {self.lr_schedule!r}"
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
    centers:    where each crop is centred; the kind of a file is said by its prefix:
                "com"        segmentation centre of mass;
                "joints"     the labelled joints' centroid (oracle);
                "xyz:PATH"   a community centre file (V2V-PoseNet / DeepPrior++
                             `center_*_refined.txt`: `x y z` camera-space mm per frame, or
                             `invalid`; invalid frames are cropped at the CoM instead, and
                             the count is printed);
                "uvd:PATH"   one uvd per frame in the community uvd format (what
                             `python -m handpose_lib.predict LOCNET_RUN FILE` writes);
                "registry:SOURCE"  the centre file of SOURCE registered for this
                             dataset and split ("registry:v2v": V2V-PoseNet's refined
                             centres; ICVL test, NYU train and test), fetched and verified
                             like the published files, used like "xyz:PATH"; the rendered
                             ICVL test poses take the ICVL test file;
                "PATH"       without a prefix: a uvd file, as "uvd:PATH" (configs written
                             before the prefixes existed).
                Either file holds one line per frame of this source (after num_frames).
    scene:      synthetic / rendered only: what surrounds the hand (`datasets.scene`:
                a torso or wall behind it, a forearm reaching the frame edge); None renders
                the hand alone.
    """

    kind: str = "synthetic"
    num_frames: int = 0
    seed: int = 0
    root: str | None = None
    split: str = "train"
    centers: str = "com"
    scene: SceneConfig | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"SourceSpec.kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if self.num_frames < 0 or (self.kind == "synthetic" and self.num_frames < 1):
            raise ValueError(
                f"SourceSpec.num_frames must be >= 1 for synthetic data and >= 0 otherwise, "
                f"got {self.num_frames} for {self.kind!r}"
            )
        if isinstance(self.scene, dict):  # from JSON
            scene = _build(SceneConfig, self.scene, "SourceSpec.scene")
            object.__setattr__(self, "scene", scene)
        if self.scene is not None:
            if not isinstance(self.scene, SceneConfig):
                raise ValueError(
                    f"SourceSpec.scene must be a SceneConfig or None, got "
                    f"{type(self.scene).__name__}"
                )
            if self.kind not in RENDERED_KINDS:
                raise ValueError(
                    f"SourceSpec.scene applies to rendered frames {RENDERED_KINDS}, not to "
                    f"{self.kind!r} files"
                )
        center_kind(self.centers)  # a clear error for a malformed value

    @property
    def dataset(self) -> str:
        """Joint layout and camera: "nyu" for NYU files, "icvl" for everything else."""
        return "nyu" if self.kind == "nyu" else "icvl"


def center_kind(centers: str) -> tuple[str, str | None]:
    """("com" | "joints", None), ("xyz" | "uvd", path) or ("registry", source) for a
    `SourceSpec.centers` value."""
    if not isinstance(centers, str) or not centers:
        raise ValueError(f"SourceSpec.centers must be a non-empty string, got {centers!r}")
    if centers in ("com", "joints"):
        return centers, None
    prefix, sep, rest = centers.partition(":")
    if sep and prefix == CENTER_REGISTRY:
        if not rest:
            raise ValueError(
                f"SourceSpec.centers={centers!r}: expected registry:SOURCE, e.g. registry:v2v"
            )
        return CENTER_REGISTRY, rest
    if sep and prefix in CENTER_FILE_KINDS:
        if not rest:
            raise ValueError(f"SourceSpec.centers={centers!r}: expected {prefix}:PATH")
        return prefix, rest
    return "uvd", centers


@dataclass(frozen=True)
class DataConfig:
    """Training and validation data; `cache_dir` keeps memory-mapped crops (one subfolder per
    role), worth it where rendering, PNG decoding and CoM dominate a CPU epoch. "run" puts
    the cache in the run's own folder, or, for the `paper` profiles, in one cache per data
    source and crop setting shared by every run (`training.data.shared_cache_root`). Cached
    crops are stored as float16, so the cache changes the numbers and counts as a "weights"
    field."""

    train: SourceSpec = field(default_factory=SourceSpec)
    val: SourceSpec | None = _field(None, effect="validation")  # noqa: RUF009 (a field())
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
    profile: str = _field("", effect="none")

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
        if isinstance(self.model, PoseNetConfig):  # task "pose", checked above
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
        return self.model.variant if isinstance(self.model, PoseNetConfig) else "locnet"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of `to_dict`; unknown or missing fields raise ValueError naming them. A
        "provenance" entry (as `save` writes it) is accepted and ignored."""
        names = {f.name for f in fields(cls)} | {"provenance"}
        _check_keys(data, names, "config", optional={"profile", "provenance"})
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

    def save(self, path: str | os.PathLike, provenance_: dict[str, Any] | None = None) -> Path:
        """Write config.json with a "provenance" entry: `provenance_`, or the running code's
        (`provenance.current()`)."""
        record = {**self.to_dict(), "provenance": provenance_ or provenance.current()}
        return atomic_write_json(path, record)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunConfig:
        """From a config.json, or from a run directory holding one."""
        path = _config_path(path)
        try:
            return cls.from_dict(_read_json(path))
        except (ValueError, TypeError, KeyError) as err:
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(f"{path}: {err}") from None


def load_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The "provenance" entry of a config.json (or a run directory's); None when absent."""
    path = _config_path(path)
    found = _read_json(path).get("provenance")
    if found is not None and not isinstance(found, dict):
        raise ConfigError(f"{path}: provenance: expected an object, got {type(found).__name__}")
    return found


def _config_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run config not found")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _check_keys(
    data: Any, names: set[str], where: str, optional: AbstractSet[str] = frozenset()
) -> None:
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


def build_model(config: RunConfig) -> nn.Module:
    """The (untrained) network a run config describes."""
    model = config.model  # its type follows config.task (RunConfig checks)
    return PoseNet(model) if isinstance(model, PoseNetConfig) else LocNet(model)


# --------------------------------------------------------------------------------------------
# The rule: which fields change the weights


def _nested(cls: type) -> dict[str, list[type]]:
    """Field name -> the dataclasses its value can be (the parts of `A | B | None`)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, list[type]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        out[f.name] = [a for a in args if isinstance(a, type) and is_dataclass(a)]
    return out


def _lookup(name: str) -> dict[str, Any]:
    """Metadata deciding the dotted field `name`: that of its first ancestor field (from the
    top) whose effect is not "weights", else that of the field itself ({} when unknown)."""
    classes: list[type] = [RunConfig]
    meta: dict[str, Any] = {}
    for part in name.split("."):
        found = [f for cls in classes for f in fields(cls) if f.name == part]
        if not found:
            return {}
        meta = dict(found[0].metadata)
        if meta.get("effect", "weights") != "weights":
            return meta
        classes = [c for cls in classes if part in _nested(cls) for c in _nested(cls)[part]]
    return meta


def field_effect(name: str) -> str:
    """ "weights", "validation" or "none" for a dotted config field ("train.lr", "data.val.seed");
    unknown names count as "weights"."""
    return _lookup(name).get("effect", "weights")


def is_resumable_change(name: str) -> bool:
    """May this field differ between a run's saved config and the config resuming it?"""
    return field_effect(name) != "weights" or bool(_lookup(name).get("resumable"))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}; tuples become lists (JSON's view)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def _differing(a: RunConfig, b: RunConfig) -> list[str]:
    flat_a, flat_b = flatten(a.to_dict()), flatten(b.to_dict())
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """Dotted names of the fields in which two configs differ, except "none" fields."""
    return [k for k in _differing(a, b) if field_effect(k) != "none"]


def validation_differences(saved: RunConfig, config: RunConfig) -> list[str]:
    return [k for k in _differing(saved, config) if field_effect(k) == "validation"]


def weight_differences(saved: RunConfig, config: RunConfig, which: str = "last") -> list[str]:
    """Fields of `config` differing from `saved` that change the `which` ("last" or "best")
    checkpoint's weights: `config_differences`, less the "validation" fields for "last"."""
    if which not in ("last", "best"):
        raise ValueError(f"unknown checkpoint {which!r}: expected one of ('last', 'best')")
    differ = config_differences(saved, config)
    return differ if which == "best" else [k for k in differ if field_effect(k) != "validation"]


def resume_differences(saved: RunConfig, given: RunConfig) -> list[str]:
    """Fields that forbid resuming `saved` with `given` (empty: resumable). The cosine
    schedule's length depends on the epochs, so there they may not change either."""
    differ = [k for k in _differing(saved, given) if not is_resumable_change(k)]
    cosine = "cosine" in (saved.train.lr_schedule, given.train.lr_schedule)
    if cosine and saved.train.epochs != given.train.epochs:
        differ.append("train.epochs")
    return sorted(differ)


def validation_fields() -> list[str]:
    """Top-most dotted names of the "validation" fields: ["data.val", "train.val_every"]."""
    out = []

    def walk(cls: type, prefix: str) -> None:
        for f in fields(cls):
            name = prefix + f.name
            if f.metadata.get("effect") == "validation":
                out.append(name)
            else:
                for inner in _nested(cls)[f.name]:
                    walk(inner, name + ".")

    walk(RunConfig, "")
    return sorted(set(out))
