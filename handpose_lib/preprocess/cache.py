"""Cache of preprocessed crops: memory-mapped arrays keyed by everything a crop depends on.

A cache several processes may ask for at once (the crop caches the GPU profiles' runs share,
`training.data.shared_cache_root`) is built under an exclusive lock on a file beside its
folder (`build_cache(lock=True)`): one process builds it, the others wait and then open it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from handpose_lib.datasets.frame import DepthFrame, FrameSource
from handpose_lib.datasets.parallel import map_frames
from handpose_lib.preprocess.crop import (
    Crop,
    CropConfig,
    context_crop,
    context_pad,
    crop_depth,
    make_crop,
    recrop_normalized,
)
from handpose_lib.preprocess.segmentation import hand_center, joints_center

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

CACHE_VERSION = 1
_ARRAYS = ("images", "uvd", "center_uvd", "matrix", "cube_mm")
_IN_MEMORY = ("center_uvd", "matrix", "cube_mm")
LOCK_SUFFIX = ".lock"  # `<folder>.lock`, beside the cache folder it guards
_LOCK_POLL_S = 0.5  # Windows only: msvcrt has no blocking lock that waits without a limit

log = logging.getLogger(__name__)


@dataclass
class CropCache:
    """Memory-mapped crops of every frame of a source, at the centres chosen when built.

    images (N, 1, S', S') float16/float32 normalized crops, S' = S + 2 `context_pad` (S when
    the config's context is 1); uvd (N, J, 3) image joints; center_uvd (N, 3); matrix
    (N, 3, 3) image -> pixels of the network's S x S cube crop; cube_mm (N,) its cube side.
    Arrays open lazily and are dropped on pickling, so DataLoader workers map the files
    themselves instead of copying them.
    """

    directory: Path
    meta: dict = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, directory: str | Path) -> CropCache:
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: no crop cache here (missing meta.json)")
        meta = json.loads(meta_path.read_text())
        if not meta.get("complete"):
            raise ValueError(f"{meta_path}: cache was never completed; rebuild it")
        return cls(directory=directory, meta=meta)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The images memory-mapped; the crop geometry (13 floats a frame) read into memory
        once per process, so that an item does not page in four more files."""
        if self._arrays is None:
            self._arrays = {
                name: np.load(
                    self.directory / f"{name}.npy", mmap_mode=None if name in _IN_MEMORY else "r"
                )
                for name in _ARRAYS
            }
        return self._arrays

    def __getstate__(self) -> dict:
        return {"directory": self.directory, "meta": self.meta, "_arrays": None}

    def __len__(self) -> int:
        return int(self.meta["key"]["num_frames"])

    @property
    def context(self) -> float:
        return float(self.meta["key"]["config"].get("context", 1.0))

    def crop(self, index: int) -> Crop:
        """The network's S x S cube crop of frame `index` (what augmentation starts from)."""
        a = self.arrays
        return Crop(
            matrix=a["matrix"][index].astype(np.float64),
            center_uvd=a["center_uvd"][index].astype(np.float64),
            cube_mm=float(a["cube_mm"][index]),
            size=int(self.meta["key"]["config"]["input_size"]),
        )

    def stored_crop(self, index: int) -> Crop:
        """The crop the stored image was taken with: `crop(index)` grown by the context."""
        return context_crop(self.crop(index), self.context)

    def image(self, index: int) -> np.ndarray:
        """(S', S') float32 normalized stored crop (S' = S without context)."""
        return np.array(self.arrays["images"][index, 0], dtype=np.float32)

    def image_for(self, index: int, crop: Crop) -> np.ndarray:
        """(S, S) float32 normalized image of any `crop` of frame `index` (e.g. augmented),
        re-sampled from the stored crop; the stored image itself when `crop` is it."""
        stored = self.stored_crop(index)
        image = self.image(index)
        if (
            crop.size == stored.size
            and np.array_equal(crop.matrix, stored.matrix)
            and crop.cube_mm == stored.cube_mm
            and crop.center_uvd[2] == stored.center_uvd[2]
        ):
            return image
        return recrop_normalized(image, stored, crop)

    def uvd(self, index: int) -> np.ndarray:
        return np.array(self.arrays["uvd"][index], dtype=np.float64)


def _source_fingerprint(source: FrameSource) -> dict:
    """What identifies a source's content: its own cache_key if it has one, else a hash of a
    few frames (first, middle, last), so a changed seed or file is noticed."""
    key = getattr(source, "cache_key", None)
    if key is not None:
        return {"cache_key": str(key)}
    digest = hashlib.sha256()
    n = len(source)
    for i in sorted({0, n // 2, n - 1}):
        frame = source[i]
        digest.update(np.ascontiguousarray(frame.depth_mm, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(frame.uvd, dtype=np.float64).tobytes())
    return {"type": type(source).__name__, "frames_sha256": digest.hexdigest()}


def _centers_key(centers: str | np.ndarray) -> str:
    if isinstance(centers, str):
        return centers
    array = np.ascontiguousarray(centers, dtype=np.float64)
    return "array:" + hashlib.sha256(array.tobytes()).hexdigest()


def _config_key(config: CropConfig) -> dict:
    """The config's fields; `context` only when it is not the default, so caches built before
    the field existed keep their key (their crops are exactly the context-1 crops)."""
    data = config.to_dict()
    if data["context"] == 1.0:
        del data["context"]
    return data


def cache_key(
    source: FrameSource, config: CropConfig, centers: str | np.ndarray, dtype: str
) -> dict:
    """Everything a cached crop depends on; any difference means the cache is stale."""
    return {
        "version": CACHE_VERSION,
        "dataset": source.dataset,
        "num_frames": len(source),
        "config": _config_key(config),
        "centers": _centers_key(centers),
        "dtype": np.dtype(dtype).name,
        "source": _source_fingerprint(source),
    }


def key_digest(key: dict) -> str:
    """sha256 (hex) of a `cache_key`, serialized as meta.json stores it (keys sorted): the
    same key always gives the same digest, in any process."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def lock_path(directory: str | Path) -> Path:
    """The lock file of a cache folder: `<folder>.lock` beside it (not inside it, so that
    the folder itself holds only the cache)."""
    directory = Path(directory)
    return directory.with_name(directory.name + LOCK_SUFFIX)


if sys.platform == "win32":

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(fd: int) -> None:
        while not _try_lock(fd):
            time.sleep(_LOCK_POLL_S)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created, with its folder, if missing) for
    the block; another process entering it for the same file waits until the holder leaves.

    The operating system drops a lock when its holder dies, so a killed holder never blocks
    the next one. POSIX: `fcntl.flock` (on Linux also over NFS, as a byte-range lock).
    Windows, which has no fcntl: `msvcrt.locking` of the file's first byte, retried every
    `_LOCK_POLL_S` seconds while another process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            log.info("%s: another process holds this lock; waiting for it", path)
            _lock(fd)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, eq=False)  # holds an array: compared by identity
class _CenterOf:
    """(index, frame) -> (3,) uvd crop centre. A module-level class, not a closure, so that a
    dataset holding it pickles: DataLoader workers started by spawn or forkserver (macOS,
    Python 3.14 on Linux, a worker of `ablation.train_all(jobs > 1)`) receive it pickled."""

    centers: str | np.ndarray
    config: CropConfig

    def __call__(self, index: int, frame: DepthFrame) -> np.ndarray:
        if not isinstance(self.centers, str):
            return self.centers[index]
        if self.centers == "joints":
            return joints_center(frame.uvd, frame.camera)
        try:
            return hand_center(frame.depth_mm, frame.camera, self.config)
        except ValueError as err:
            raise ValueError(f"frame {index} ({frame.name!r}): {err}") from None


def resolve_centers(
    source: FrameSource, centers: str | np.ndarray, config: CropConfig
) -> Callable[[int, DepthFrame], np.ndarray]:
    """A function (index, frame) -> (3,) uvd centre for centres "com", "joints" or an array."""
    if isinstance(centers, str):
        if centers not in ("com", "joints"):
            raise ValueError(
                f"centers must be 'com', 'joints' or an (N, 3) uvd array, got {centers!r}"
            )
        return _CenterOf(centers, config)
    array = np.asarray(centers, dtype=np.float64)
    if array.shape != (len(source), 3):
        raise ValueError(
            f"centers array must have shape ({len(source)}, 3) (one uvd per frame), "
            f"got {array.shape}"
        )
    return _CenterOf(array, config)


@dataclass(frozen=True, eq=False)
class _FillCache:
    """Crops frames into the cache's open files (one chunk of rows; picklable for workers)."""

    directory: Path
    config: CropConfig
    center_of: Callable[[int, DepthFrame], np.ndarray]

    def __call__(self, source: FrameSource, indices: list[int]) -> list[int]:
        self.write({i: source[i] for i in indices})
        return indices

    def write(self, frames: dict[int, DepthFrame]) -> None:
        """Crop `frames` (index -> frame) into their rows."""
        arrays = {name: np.load(self.directory / f"{name}.npy", mmap_mode="r+") for name in _ARRAYS}
        size = self.config.input_size
        for i, frame in frames.items():
            crop = make_crop(self.center_of(i, frame), frame.camera, self.config.cube_mm, size)
            arrays["images"][i, 0] = crop_depth(
                frame.depth_mm, context_crop(crop, self.config.context)
            )
            arrays["uvd"][i] = frame.uvd
            arrays["center_uvd"][i] = crop.center_uvd
            arrays["matrix"][i] = crop.matrix
            arrays["cube_mm"][i] = crop.cube_mm
        for array in arrays.values():
            array.flush()


def build_cache(
    source: FrameSource,
    directory: str | Path,
    config: CropConfig,
    centers: str | np.ndarray = "com",
    dtype: str = "float16",
    progress: bool = False,
    workers: int = 1,
    lock: bool = False,
) -> CropCache:
    """Open the cache in `directory`, building it first if missing, incomplete or stale;
    `workers` processes crop the frames (each frame's bytes are the same whatever the count),
    `progress` shows a bar.

    A cache whose key (source fingerprint, config, centres, dtype, format version) differs
    from the requested one is rebuilt with a warning, never reused. `lock`: check and build
    under `exclusive_lock(lock_path(directory))`, for a folder other processes may ask for
    at the same time: one builds, the others wait and then open the finished cache (a
    cache's meta.json says "complete" only once every row is written, so a build killed
    midway is found incomplete and rebuilt, never opened).
    """
    directory = Path(directory)
    key = cache_key(source, config, centers, dtype)
    guard = exclusive_lock(lock_path(directory)) if lock else contextlib.nullcontext()
    with guard:
        meta = _reusable_meta(directory, key)
        if meta is not None:
            return CropCache(directory=directory, meta=meta)
        return _write_cache(source, directory, config, centers, dtype, key, progress, workers)


def _reusable_meta(directory: Path, key: dict) -> dict | None:
    """The meta of a complete cache of `key` in `directory`, else None; a cache there of
    another key, or an incomplete one, is announced with a warning and its arrays removed."""
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        meta = {}
    if meta.get("complete") and meta.get("key") == key:
        return meta
    reason = "incomplete" if meta.get("key") == key else "stale (built for another key)"
    warnings.warn(f"{directory}: crop cache is {reason}; rebuilding", stacklevel=3)
    # Only our own files: the directory may be shared with other things.
    for name in _ARRAYS:
        (directory / f"{name}.npy").unlink(missing_ok=True)
    return None


def _write_cache(
    source: FrameSource,
    directory: Path,
    config: CropConfig,
    centers: str | np.ndarray,
    dtype: str,
    key: dict,
    progress: bool,
    workers: int,
) -> CropCache:
    """Crop every frame of `source` into a new cache of `key` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    meta_path = directory / "meta.json"
    meta = {"key": key, "complete": False}
    meta_path.write_text(json.dumps(meta, indent=1))

    n, size = len(source), config.input_size
    stored = size + 2 * context_pad(size, config.context)
    first = source[0]
    joints = first.uvd.shape[0]
    shapes = {
        "images": (np.dtype(dtype), (n, 1, stored, stored)),
        "uvd": (np.dtype(np.float64), (n, joints, 3)),
        "center_uvd": (np.dtype(np.float64), (n, 3)),
        "matrix": (np.dtype(np.float64), (n, 3, 3)),
        "cube_mm": (np.dtype(np.float64), (n,)),
    }
    for name, (array_dtype, shape) in shapes.items():
        np.lib.format.open_memmap(directory / f"{name}.npy", "w+", array_dtype, shape).flush()
    fill = _FillCache(directory, config, resolve_centers(source, centers, config))
    fill.write({0: first})
    # Workers write disjoint rows of the same memory-mapped files.
    desc = f"caching crops in {directory}" if progress else None
    map_frames(fill, source, range(1, n), workers, desc)
    meta["complete"] = True
    meta_path.write_text(json.dumps(meta, indent=1))
    return CropCache(directory=directory, meta=meta)
