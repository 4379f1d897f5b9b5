"""Checks a run passes before any data work: the machine it runs on, the device its profile
needs, the shared memory its DataLoaders keep in flight and the disk its crop cache takes.

Each refusal is a `PreflightError` (a ValueError, so the command line ends in one line
`error: ...`, exit status 2) saying what was found, what the run needs and the fix.

    machine_lines()                      the log's first lines: torch, CUDA, GPUs / CPU
    check_device(profile, device)        the GPU profiles refuse a silent CPU fallback
    loader_shm_bytes(config)             /dev/shm the DataLoaders keep in flight
    check_shm(needed, workers=...)       refuse where /dev/shm is smaller (Docker's 64 MiB)
    crop_cache_bytes(config, frames)     the crop cache's files
    check_disk(path, needed)             refuse where the disk has less room
    check_run(config, run_dir)           all of them, as `python -m handpose_lib.train` runs them
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import torch

from handpose_lib import conventions, machine, profiles
from handpose_lib.joints import num_joints
from handpose_lib.preprocess import context_pad
from handpose_lib.training.config import RunConfig, SourceSpec
from handpose_lib.training.data import with_run_cache
from handpose_lib.training.engine import batch_split

# CPU cost of the GPU profiles' paper-size step, measured (docs/training.md "Profiles"): 11 s a
# step of 32 samples on the project's 2-core machine, float32 matmul about 300 GFLOP/s.
PAPER_STEP_S = 11.0
PAPER_STEP_BATCH = 32
PAPER_STEP_GFLOPS = 300.0

TORCH_PREFETCH_FACTOR = 2  # DataLoader's default: batches in flight per worker
SHM_MARGIN = 1.5
SHM_PATH = "/dev/shm"
CACHE_DTYPE = "float16"  # what `data.build_dataset` stores (HandPoseDataset's default)
CUDA_FIX = (
    "install a CUDA build of torch (make setup TORCH_INDEX=https://download.pytorch.org/whl/"
    "cu<XYZ>, the CUDA build your driver supports, or pip install torch --index-url the same URL)"
)
CPU_FIX = (
    'pass --device cpu (DEVICE="cpu" for the runner and notebooks) to run it on the CPU knowingly'
)


class PreflightError(ValueError):
    """A run refused before any data work: the message says why, the numbers and the fix."""


# ------------------------------------------------------------------------------------------
# The machine


def machine_lines() -> list[str]:
    """What the log's first lines say: torch and its CUDA build, then each visible GPU and
    the NVIDIA driver, or, without CUDA, the CPU and its float32 matmul rate."""
    lines = [f"torch {torch.__version__}, {_build()}"]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            lines.append(
                f"GPU {index}: {props.name}, {props.total_memory / 2**30:.1f} GiB, compute "
                f"capability {props.major}.{props.minor}"
            )
        lines.append(f"driver: {driver_version() or 'unknown'}")
        return lines
    if torch.version.cuda is not None:
        lines.append(f"GPU: none usable ({cuda_unusable_reason()})")
    lines.append(f"CPU: {cpu_model()}, {_cores()} cores, torch threads {torch.get_num_threads()}")
    lines.append(f"CPU float32 matmul: {machine.cached_matmul_gflops():.0f} GFLOP/s")
    return lines


def _build() -> str:
    if torch.version.cuda is not None:
        return f"CUDA {torch.version.cuda} build"
    hip = getattr(torch.version, "hip", None)
    return f"ROCm {hip} build" if hip else "CPU build"


def driver_version() -> str | None:
    """The NVIDIA driver's version: through pynvml where importable, else nvidia-smi where
    on PATH; None where neither answers."""
    try:
        pynvml = importlib.import_module("pynvml")  # optional: not a dependency
        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = done.stdout.strip().splitlines()
    return first[0].strip() if first else None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------
# The device


def is_gpu_profile(profile_name: str) -> bool:
    """A profile sized for a GPU (`profiles.GPU_PROFILES`), or a rehearsal of one."""
    return profiles.base_profile_name(profile_name) in profiles.GPU_PROFILES


def cuda_unusable_reason() -> str:
    """Why torch cannot use CUDA here ("" where it can)."""
    if torch.cuda.is_available():
        return ""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU build"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    why = (
        f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU"
        if hidden is not None and hidden.strip() in ("", "-1")
        else "no GPU is visible, or the NVIDIA driver "
        f"({driver_version() or 'not found'}) is older than CUDA {torch.version.cuda} needs"
    )
    return f"torch {torch.__version__} is built for CUDA {torch.version.cuda}, but {why}"


def source_frames(spec: SourceSpec) -> int | None:
    """Frames a source holds, known without reading it: its `num_frames`, else the size of
    the distribution's split (`conventions`; a subset on disk is smaller); None if unknown."""
    if spec.num_frames > 0:
        return spec.num_frames
    if spec.kind == "rendered":  # the published ICVL test poses
        return conventions.split_frames("icvl", "test")
    try:
        return conventions.split_frames(spec.kind, spec.split)
    except (KeyError, ValueError):
        return None


def cpu_step_seconds(samples: int, gflops: float) -> float:
    """Seconds of a paper-size training step of `samples` on a CPU of `gflops` (scaled from
    the measured `PAPER_STEP_S`)."""
    return PAPER_STEP_S * samples / PAPER_STEP_BATCH * PAPER_STEP_GFLOPS / gflops


def _cpu_cost(config: RunConfig, gflops: float) -> str:
    tc = config.train
    step_s = cpu_step_seconds(tc.batch_size, gflops)
    measured = (
        f"measured: {PAPER_STEP_S:.0f} s a step of {PAPER_STEP_BATCH} at "
        f"{PAPER_STEP_GFLOPS:.0f} GFLOP/s"
    )
    head = (
        f"on this CPU (float32 matmul {gflops:.0f} GFLOP/s) a step of {tc.batch_size} takes "
        f"~{duration(step_s)} ({measured})"
    )
    frames = source_frames(config.data.train)
    if frames is None or frames < tc.batch_size:
        return head
    steps = frames // tc.batch_size
    steps = min(steps, tc.steps_per_epoch or steps)
    return (
        f"{head}, so an epoch of {steps} steps ~{duration(steps * step_s)} and its "
        f"{tc.epochs} epoch(s) ~{duration(tc.epochs * steps * step_s)}"
    )


def check_device(
    profile_name: str,
    device: str,
    *,
    config: RunConfig | None = None,
    local_rank: int = 0,
    gflops: float | None = None,
) -> torch.device:
    """The device a run of `profile_name` computes on for `device` ("auto", "cuda", "cpu").

    A GPU profile (`profiles.GPU_PROFILES`, rehearsals included) with "auto" where CUDA is not
    usable is refused: why, what the CPU would cost (from `config`'s steps, default the
    profile's run; at `gflops`, default this CPU's measured rate) and the fixes. "cuda"
    without CUDA is refused for every profile; "cpu" is always allowed, and other profiles
    take "auto" as CUDA where usable, else the CPU (`distributed.select_device`)."""
    if device not in ("auto", "cuda", "cpu"):
        raise PreflightError(f"device must be auto, cuda or cpu, got {device!r}")
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank)
    why = cuda_unusable_reason()
    if device == "cuda":
        raise PreflightError(
            f"device cuda requested, but CUDA is not usable here: {why}. Fix: {CUDA_FIX}, or "
            f"{CPU_FIX}"
        )
    if not is_gpu_profile(profile_name):
        return torch.device("cpu")
    if config is None:
        config = profiles.get_profile(profile_name).run_config()
    rate = machine.cached_matmul_gflops() if gflops is None else gflops
    raise PreflightError(
        f"profile {profile_name!r} is sized for a GPU, but CUDA is not usable here: {why}; "
        f"{_cpu_cost(config, rate)}. Fix: {CUDA_FIX}, or {CPU_FIX}"
    )


# ------------------------------------------------------------------------------------------
# Shared memory


def sample_bytes(config: RunConfig) -> int:
    """Bytes of one `HandPoseDataset` item of `config` (its module docstring): image S x S
    float32, heatmaps J x H x H float32, depth and uvd_crop float32, uvd, center_uvd,
    crop_transform and cube_mm float64, index int64."""
    size, heat = config.crop.input_size, config.crop.heatmap_size
    joints = num_joints(config.data.train.dataset)
    float32 = size * size + joints * heat * heat + joints + joints * 3
    float64 = joints * 3 + 3 + 9 + 1
    return 4 * float32 + 8 * float64 + 8


def loader_shm_bytes(
    config: RunConfig, local_world_size: int | None = None, world_size: int | None = None
) -> int:
    """Bytes of shared memory the DataLoaders keep in flight: workers x prefetch factor x one
    batch for each local process's training loader (`LOCAL_WORLD_SIZE`, default 1), plus
    rank 0's validation loader (same workers, the per-process batch). 0 without workers."""
    tc = config.train
    if tc.num_workers == 0:
        return 0
    local = local_world_size or int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    world = world_size or int(os.environ.get("WORLD_SIZE", str(local)))
    loaders = local + (config.data.val is not None)
    batch = batch_split(tc, world)[0] * sample_bytes(config)
    return loaders * tc.num_workers * TORCH_PREFETCH_FACTOR * batch


def check_shm(
    needed: int,
    path: str | os.PathLike | None = None,
    *,
    workers: int = 0,
    margin: float = SHM_MARGIN,
) -> None:
    """Refuse where `path` (shared memory, default `SHM_PATH`) exists and has less than
    `margin` x `needed` bytes free; the fix names a container flag and the worker count (of
    `workers`, the loaders' worker count `needed` is for) that fits. No such folder (macOS):
    no check."""
    path = SHM_PATH if path is None else path
    if needed <= 0 or not Path(path).exists():
        return
    free = shutil.disk_usage(path).free
    if free >= margin * needed:
        return
    size = max(2, math.ceil(margin * needed / 2**30))
    fixes = [f"docker run --shm-size={size}g (or --ipc=host)"]
    if workers > 0:
        fit = int(free / (margin * needed / workers))
        fit = min(fit, workers - 1)
        fixes.append(
            f"fewer loader workers: --set train.num_workers={fit}"
            + (" (loading in the training process, slower)" if fit == 0 else "")
        )
    raise PreflightError(
        f"{path} has {_size(free)} free, but the DataLoaders keep ~{_size(needed)} of batches "
        f"in flight ({workers} worker(s) per loader, {TORCH_PREFETCH_FACTOR} batches each; "
        f"with a {margin:g}x margin {_size(margin * needed)}): their workers would die with a "
        "bus error. Fix: " + ", or ".join(fixes)
    )


# ------------------------------------------------------------------------------------------
# Disk


def crop_cache_bytes(config: RunConfig, frames: int) -> int:
    """Bytes of a crop cache of `frames` frames of `config` (`preprocess.build_cache`'s .npy
    files, headers included): images float16 S' x S' (S' = S + 2 `context_pad`), uvd J x 3,
    center_uvd 3, matrix 3 x 3 and cube_mm float64."""
    size = config.crop.input_size
    stored = size + 2 * context_pad(size, config.crop.context)
    joints = num_joints(config.data.train.dataset)
    shapes = {
        CACHE_DTYPE: (frames, 1, stored, stored),
        "uvd": (frames, joints, 3),
        "center_uvd": (frames, 3),
        "matrix": (frames, 3, 3),
        "cube_mm": (frames,),
    }
    total = 0
    for name, shape in shapes.items():
        dtype = np.dtype(CACHE_DTYPE if name == CACHE_DTYPE else np.float64)
        total += _npy_header_bytes(dtype, shape) + dtype.itemsize * math.prod(shape)
    return total


def _npy_header_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    """Bytes of the .npy header `np.lib.format.open_memmap` writes (format 1.0)."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
    return len(buffer.getvalue())


def check_disk(path: str | os.PathLike, needed: int) -> None:
    """Refuse where the disk of `path` (its nearest existing parent) has less than `needed`
    bytes free."""
    if needed <= 0:
        return
    parent = Path(path).absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free >= needed:
        return
    raise PreflightError(
        f"{path}: the crop cache needs ~{_size(needed)}, but the disk of {parent} has "
        f"{_size(free)} free. Fix: free space, put the run (--run-dir) or the cache "
        "(--set data.cache_dir=DIR) on a disk with room, or crop every step instead "
        "(--set data.cache_dir=null, slower)"
    )


def cache_needs(config: RunConfig) -> tuple[Path, int] | None:
    """(cache folder, bytes it still needs) of a config whose cache_dir is resolved
    (`data.with_run_cache`): the train and validation caches of their sources' frames
    (`source_frames`: for dataset files read whole, the distribution's split size), less
    those already complete under the folder (a resumed run, or a shared cache, reuses them);
    None without a cache or where the frames are unknown."""
    if config.data.cache_dir is None or config.data.cache_dir == "run":
        return None
    folder = Path(config.data.cache_dir)
    built = _complete_caches(folder)
    needed = 0
    for spec in (config.data.train, config.data.val):
        if spec is not None:
            frames = source_frames(spec)
            if frames is None:
                return None
            crop = (frames, config.crop.input_size, config.crop.context)
            if crop in built:
                built.remove(crop)  # one cache serves one source
            else:
                needed += crop_cache_bytes(config, frames)
    return folder, needed


def _complete_caches(folder: Path) -> list[tuple[int, int, float]]:
    """(frames, input size, context) of each complete crop cache under `folder` (its
    meta.json), without opening its arrays."""
    found = []
    for meta_path in sorted(folder.rglob("meta.json")) if folder.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text())
            key = meta["key"]
            crop = (int(key["num_frames"]), int(key["config"]["input_size"]))
            context = float(key["config"].get("context", 1.0))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if meta.get("complete"):
            found.append((*crop, context))
    return found


# ------------------------------------------------------------------------------------------
# All of them


def check_run(
    config: RunConfig, run_dir: str | os.PathLike | None = None, local_rank: int | None = None
) -> torch.device:
    """The device `config` trains on, after its checks: the device (`check_device`, profile
    from `config.profile`, device from `config.train.device`), /dev/shm (`check_shm`) and
    the crop cache's disk (`check_disk`; `run_dir` resolves a cache_dir of "run" as the run
    will, `data.with_run_cache`)."""
    rank = int(os.environ.get("LOCAL_RANK", "0")) if local_rank is None else local_rank
    device = check_device(config.profile, config.train.device, config=config, local_rank=rank)
    check_shm(loader_shm_bytes(config), workers=config.train.num_workers)
    if run_dir is not None:
        config = with_run_cache(config, run_dir)
    needs = cache_needs(config)
    if needs is not None:
        check_disk(*needs)
    return device


def duration(seconds: float) -> str:
    """ "42 s", "17 min", "31.6 h", "26.3 days"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _size(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.1f} GiB"
    return f"{nbytes / 2**20:.1f} MiB"
