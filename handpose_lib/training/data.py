"""The frames and datasets a run config describes, the crop centres they are cut around, and
where their crop caches live.

A crop cache of "run" (`profiles.Profile.crop_cache`) is resolved when a run starts
(`with_run_cache`), so saved configs keep "run":

- the GPU profiles (`profiles.GPU_PROFILES`, their rehearsals too): one cache per data source
  and crop setting, shared by every run that needs it, in `shared_cache_root()`, in a folder
  named by the digest of its key (`shared_cache_folder`) and built under a lock
  (`preprocess.build_cache(lock=True)`): the trainings of one reproduction crop NYU once,
  not once each;
- every other profile: the run's own folder, `<run_dir>/cache` (`train/`, `val/<digest>/`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from handpose_lib import center_files, conventions, uvd_format
from handpose_lib.camera import camera_for
from handpose_lib.datasets.frame import DepthFrame, FrameSource
from handpose_lib.datasets.icvl import IcvlSource
from handpose_lib.datasets.nyu import NyuSource
from handpose_lib.datasets.parallel import map_frames
from handpose_lib.datasets.rendered_poses import RenderedPosesSource
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.paths import ENV_CROP_CACHE_DIR
from handpose_lib.preprocess import CropConfig, hand_center
from handpose_lib.preprocess.cache import cache_key, key_digest
from handpose_lib.profiles import GPU_PROFILES, base_profile_name
from handpose_lib.training.config import CENTER_REGISTRY, RunConfig, SourceSpec, center_kind
from handpose_lib.verified_files import package_cache_dir

# The dtype of cached crops: part of a cache's key, hence of a shared cache's folder name.
CACHE_DTYPE = "float16"


class EvenSubset:
    """FrameSource of `n` frames evenly spaced over another source (keeps its order)."""

    def __init__(self, source: FrameSource, n: int) -> None:
        if not 1 <= n <= len(source):
            raise ValueError(f"subset of {n} frames requested from {len(source)}")
        self.source, self.dataset = source, source.dataset
        self.indices = np.linspace(0, len(source) - 1, n).round().astype(int)
        inner = getattr(source, "cache_key", None)
        self.cache_key = None if inner is None else f"{inner}:subset={n}"

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> DepthFrame:
        return self.source[int(self.indices[index])]


def build_source(spec: SourceSpec) -> FrameSource:
    """The FrameSource a SourceSpec describes.

    Dataset files are read whatever their frame count (a subset, or another dataset in the
    same format, trains and predicts like the real one); a split whose count differs from
    the distribution's gets a warning naming the folder, and such a test split is scored
    against its own labels (`datasets.published_split` guards the published comparison).
    """
    if spec.kind == "synthetic":
        return SyntheticSource(spec.num_frames, seed=spec.seed, scene=spec.scene)
    source: FrameSource
    if spec.kind == "rendered":
        source = RenderedPosesSource(seed=spec.seed, scene=spec.scene)
    else:
        files: IcvlSource | NyuSource
        if spec.kind == "icvl":
            files = IcvlSource(spec.root, split=spec.split, check_counts=False)
        else:
            files = NyuSource(spec.root, split=spec.split, check_counts=False)
        _warn_unpublished_count(files, spec)
        if spec.num_frames > len(files):
            role = "train" if spec.split == "train" else "val"
            raise ValueError(
                f"{files.root}: the {spec.kind.upper()} {spec.split} split has {len(files)} "
                f"frames, fewer than the {spec.num_frames} the run asks for (its num_frames, "
                f"from the profile); use all of them with --set data.{role}.num_frames=0, or "
                f"name a number up to {len(files)}"
            )
        source = files
    return EvenSubset(source, spec.num_frames) if spec.num_frames else source


def _warn_unpublished_count(source: IcvlSource | NyuSource, spec: SourceSpec) -> None:
    expected = conventions.split_frames(spec.kind, spec.split)
    if len(source) != expected:
        use = "its own labels score it" if spec.split != "train" else "it trains as given"
        warnings.warn(
            f"{source.root}: {spec.kind.upper()} {spec.split} split has {len(source)} frames, "
            f"the distribution's has {expected} (a subset or another set in the same format; "
            f"{use})",
            stacklevel=3,
        )


def read_centers(path: str | os.PathLike, expected_frames: int | None = None) -> np.ndarray:
    """(N, 3) uvd hand centres from a one-joint community-format file
    (`inference.write_predictions` of a LocNet run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: centres file not found")
    return uvd_format.read_uvd(path, 1, expected_frames=expected_frames)[:, 0]


def _for_source(rows: np.ndarray, source: FrameSource, path: str, what: str) -> np.ndarray:
    """Rows of a per-frame file for `source`'s frames: one per frame, or one per frame of the
    whole split when `source` is an `EvenSubset` of it (the published files cover a split)."""
    if len(rows) == len(source):
        return rows
    if isinstance(source, EvenSubset) and len(rows) == len(source.source):
        return rows[source.indices]
    whole = f" (or {len(source.source)}, the whole split)" if isinstance(source, EvenSubset) else ""
    raise uvd_format.FormatError(
        f"{path}: {len(rows)} {what}, expected {len(source)}{whole}: one line per frame"
    )


def com_centers(
    source: FrameSource,
    crop: CropConfig,
    frames: np.ndarray | None = None,
    workers: int = 1,
) -> np.ndarray:
    """(N, 3) uvd CoM crop centres (`preprocess.hand_center`) of `frames` (indices; default
    all), found by `workers` processes; other rows are NaN. A frame without a hand is an
    error naming it."""
    out = np.full((len(source), 3), np.nan)
    indices = np.arange(len(source)) if frames is None else np.asarray(frames, dtype=np.int64)
    if len(indices):
        found = map_frames(_ComOf(crop), source, indices, workers)
        out[indices] = np.asarray(found, dtype=np.float64).reshape(len(indices), 3)
    return out


# Below this many frames a one-off pass runs in-process: starting workers costs more.
PARALLEL_MIN_FRAMES = 512


def data_workers(config: RunConfig, frames: int) -> int:
    """Processes for one-off data work before training (building a crop cache, finding CoM
    centres): `train.num_workers` when set, else every core this process may use for a pass
    over at least `PARALLEL_MIN_FRAMES` frames. The results do not depend on the count."""
    if config.train.num_workers > 0:
        return config.train.num_workers
    if frames < PARALLEL_MIN_FRAMES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def run_com_centers(config: RunConfig) -> np.ndarray | None:
    """The CoM centres of a run's training frames, found once in `data_workers` processes,
    when its crops are cut at the CoM without a crop cache (a cache finds them while it is
    built); else None. Without this, every item of every epoch segments its frame again
    (LocNet's data)."""
    spec = config.data.train
    if spec.centers != "com" or config.data.cache_dir is not None:
        return None
    source = build_source(spec)
    return com_centers(source, config.crop, workers=data_workers(config, len(source)))


@dataclass(frozen=True)
class _ComOf:
    """CoM centres of a chunk of frames (picklable for worker processes)."""

    crop: CropConfig

    def __call__(self, source: FrameSource, indices: list[int]) -> list[np.ndarray]:
        centres = []
        for index in indices:
            frame = source[index]
            try:
                centres.append(hand_center(frame.depth_mm, frame.camera, self.crop))
            except ValueError as err:
                raise ValueError(f"frame {index} ({frame.name!r}): {err}") from None
        return centres


def resolve_spec_centers(
    spec: SourceSpec,
    source: FrameSource,
    crop: CropConfig,
    report: Callable[[str], None] = print,
) -> str | np.ndarray:
    """What `HandPoseDataset(centers=...)` takes for `spec.centers`: "com", "joints", or an
    (N, 3) uvd array read from a file. A community centre file's `invalid` frames are
    cropped at their CoM; `report` gets the message counting them."""
    kind, path = center_kind(spec.centers)
    if path is None:
        return kind
    if kind == "uvd":
        return _for_source(read_centers(path), source, path, "centres")
    centers = community_center_file(spec)
    rows = _for_source(np.arange(len(centers)), source, centers.path, "centres")
    chosen = center_files.CenterFile(centers.path, centers.xyz_mm[rows], centers.valid[rows])
    fallback = com_centers(source, crop, np.flatnonzero(~chosen.valid))
    resolved = center_files.resolve_centers(chosen, fallback, camera_for(source.dataset))
    report(resolved.message)
    return resolved.uvd


def community_center_file(spec: SourceSpec) -> center_files.CenterFile:
    """The community centre file `spec.centers` names, whole (one line per frame of its
    split): "xyz:PATH" read as it is, "registry:SOURCE" the registered file of the frames'
    dataset and split, fetched and verified, its path shown as "registry:SOURCE (FILE)"."""
    kind, value = center_kind(spec.centers)
    if kind == "xyz" and value is not None:
        return center_files.read_center_file(value)
    if kind != CENTER_REGISTRY or value is None:
        raise ValueError(
            f"centres {spec.centers!r}: not a community centre file (xyz:PATH or registry:SOURCE)"
        )
    dataset, split = registry_split(spec)
    registered = center_files.registered_centers(dataset, split, source=value)
    found = registered.as_center_file(camera_for(spec.dataset))
    return center_files.CenterFile(f"{spec.centers} ({registered.path})", found.xyz_mm, found.valid)


def registry_split(spec: SourceSpec) -> tuple[str, str]:
    """(dataset, split) whose registered centre file serves `spec`'s frames: an ICVL / NYU
    split as it is; the rendered ICVL test poses are the published ICVL test frames, in their
    order. Procedural synthetic hands have no registered centres (ValueError says which
    centres they take)."""
    if spec.kind in ("icvl", "nyu"):
        return spec.kind, spec.split
    if spec.kind == "rendered":
        return "icvl", "test"
    raise ValueError(
        f"centres {spec.centers!r}: registered centre files belong to the ICVL / NYU splits "
        f"(and the rendered ICVL test poses), not to {spec.kind!r} frames; use com, joints, "
        "uvd:FILE or xyz:FILE"
    )


def centers_option(value: str) -> str:
    """A `--centers` value as `SourceSpec.centers`: "com", "joints", "registry:SOURCE",
    "uvd:FILE" and "xyz:FILE" as given (paths made absolute), a bare FILE as a community
    centre file."""
    kind, path = center_kind(value)
    if path is None:
        return kind
    if kind == CENTER_REGISTRY:
        return value
    if value == path:  # no prefix: on the command line a bare file is a community centre file
        kind = "xyz"
    return f"{kind}:{Path(path).resolve()}"


def shared_cache_root() -> Path:
    """Folder of the shared crop caches: $HANDPOSE_CROP_CACHE_DIR (an empty value counts as
    unset; the notebook runner sets it to a folder of its run), else `data/cache/crops` of
    this checkout (ignored by git); installed without a checkout, `crops` in the platform's
    user cache folder (`verified_files.package_cache_dir`, as the published files)."""
    env = os.environ.get(ENV_CROP_CACHE_DIR)
    return Path(env).expanduser().absolute() if env else package_cache_dir("crops")


def uses_shared_cache(config: RunConfig) -> bool:
    """Whether the run's crop caches are shared ones: a GPU profile's run (or a rehearsal
    of one, `profiles.base_profile_name`) with a crop cache. Its cache_dir "run" means
    `shared_cache_root()`; a folder given instead holds shared caches the same way."""
    return config.data.cache_dir is not None and base_profile_name(config.profile) in GPU_PROFILES


def with_run_cache(config: RunConfig, run_dir: str | os.PathLike) -> RunConfig:
    """Resolve cache_dir "run": `shared_cache_root()` for the GPU profiles (cropped once for
    every run with the same data and crops), else the run's own folder (once per run)."""
    if config.data.cache_dir != "run":
        return config
    folder = shared_cache_root() if uses_shared_cache(config) else Path(run_dir) / "cache"
    return config.with_overrides({"data.cache_dir": str(folder)})


def cache_root(config: RunConfig, run_dir: str | os.PathLike) -> Path | None:
    """The folder under which the run in `run_dir` keeps its crop caches (`with_run_cache`),
    or None when it caches none (for the preflight's disk check)."""
    cache_dir = with_run_cache(config, run_dir).data.cache_dir
    return None if cache_dir is None else Path(cache_dir)


def shared_cache_folder(
    root: Path, source: FrameSource, crop: CropConfig, centers: str | np.ndarray
) -> Path:
    """`root/<dataset>-<digest of the cache key>`: the shared cache of `source`'s crops at
    `centers`. Runs asking for the same crops (a training role or a validation spec alike)
    open the same folder; any other source, crop setting or centres get another."""
    key = cache_key(source, crop, centers, CACHE_DTYPE)
    return root / f"{source.dataset}-{key_digest(key)[:16]}"


def build_dataset(
    config: RunConfig,
    role: str = "train",
    spec: SourceSpec | None = None,
    report: Callable[[str], None] = print,
    centers_uvd: np.ndarray | None = None,
) -> HandPoseDataset:
    """HandPoseDataset of the run's "train" (augmented) or "val" data, or of any `spec`;
    `report` gets what the centres need saying (invalid frames of a centre file);
    `centers_uvd` (N, 3) replaces the spec's centres when already found (`run_com_centers`)."""
    spec = spec or (config.data.train if role == "train" else config.data.val)
    if spec is None:
        raise ValueError(f"the run config has no {role} data")
    source = build_source(spec)
    centers = resolve_spec_centers(spec, source, config.crop, report)
    if centers_uvd is not None:
        centers = centers_uvd
    return HandPoseDataset(
        source,
        config.crop,
        centers=centers,
        augment=config.augment if role == "train" else None,
        seed=config.train.seed,
        cache_dir=_cache_location(config, role, spec, source, centers),
        cache_dtype=CACHE_DTYPE,
        cache_workers=data_workers(config, len(source)),
        cache_progress=config.train.progress,
        # Other runs may ask for a shared cache at the same time: one builds, they wait.
        cache_lock=uses_shared_cache(config),
    )


def _cache_location(
    config: RunConfig,
    role: str,
    spec: SourceSpec,
    source: FrameSource,
    centers: str | np.ndarray,
) -> Path | None:
    """The folder of the crop cache `build_dataset` opens for `spec`, or None without one."""
    cache_dir = config.data.cache_dir
    if cache_dir is None or cache_dir == "run":  # only with_run_cache knows the run folder
        return None
    if uses_shared_cache(config):
        return shared_cache_folder(Path(cache_dir), source, config.crop, centers)
    return _cache_folder(Path(cache_dir), role, spec)


def _cache_folder(cache_dir: Path, role: str, spec: SourceSpec) -> Path:
    """cache_dir/train, or cache_dir/val/<digest of the spec>: a run is evaluated on several
    validation specs (the three crop centres of notebooks 03-04), each keeps its own crops
    instead of rebuilding one folder in turn."""
    if role == "train":
        return cache_dir / role
    digest = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()
    return cache_dir / role / digest[:12]
