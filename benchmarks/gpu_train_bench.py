"""Training throughput of the real path: files on disk -> DataLoader workers -> `engine.train`
(issue 16, sections 2 and 3).

Writes a real-format ICVL or NYU training split with the package's writers (synthetic hands,
`--frames` of them), then measures, printing each row the moment it is measured (a run killed
by a timeout keeps the rows it had):

    data, PNG      samples/s of one loader worker making items from the PNG files
    data, cache    samples/s of one worker making items from the crop cache (built once,
                   in parallel, timed too)
    train          samples/s of `engine.train` (the profile's optimizer, AMP, checks, the
                   loader with `--workers` workers) over the timed steps: steps 2 to
                   `--steps` of the second epoch (the first epoch and each epoch's first step
                   warm up: workers, cuDNN, compile), between the engine's own timing
                   boundaries (`engine.Throughput`)
    GPU busy       mean of NVML's GPU utilisation (`pynvml`, from nvidia-ml-py) sampled every
                   0.1 s over the timed steps; "n/a (no NVML)" where pynvml is missing
    peak memory    `torch.cuda.max_memory_allocated` over the timed steps
    syncs          host waits for the GPU over the timed steps only, counted with
                   `torch.cuda.set_sync_debug_mode("warn")` (CUDA only): the engine's reads
                   every `sync_every` steps; not the epoch's end (weight check, checkpoint
                   copies, validation), which lies outside the window

    python benchmarks/gpu_train_bench.py --device cuda --workers 16 --steps 200
    python benchmarks/gpu_train_bench.py --device cuda --dataset nyu --cache
    python benchmarks/gpu_train_bench.py --tiny        # CPU, seconds (tested)

Workers needed to feed the GPU: train samples/s / (data samples/s per worker).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from step_costs import TINY  # the tiny network sizes, beside this script

from handpose_lib import machine
from handpose_lib.datasets import writers
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource
from handpose_lib.profiles import get_profile
from handpose_lib.training import engine
from handpose_lib.training.config import RunConfig
from handpose_lib.training.data import build_dataset

NO_NVML = "n/a (no NVML)"
TIMED_EPOCH = 2  # of the bench's two epochs: the first warms up


def row(name: str, value: float | str) -> str:
    """One table row: a count as it is, a rate to 3 digits, a text (NO_NVML) as it is."""
    text = value if isinstance(value, str | int) else f"{value:.3g}"
    return f"| {name} | {text} |"


def emit(name: str, value: float | str) -> None:
    """Print a row now (flushed: a timeout that kills the run keeps it)."""
    print(row(name, value), flush=True)


def write_split(dataset: str, root: Path, frames: int, workers: int) -> Path:
    """A training split of `frames` synthetic hands in the dataset's distributed format."""
    if dataset == "icvl":
        writers.write_icvl_train(root, SyntheticSource(frames, seed=0), workers=workers)
        return root
    source = SyntheticNyuSource(frames, seed=0)
    depth = [source[i].depth_mm for i in range(frames)]
    xyz36 = np.stack([source.joint_xyz36(i) for i in range(frames)])
    writers.write_nyu_split(root, "train", depth, xyz36)
    return root


def bench_config(args: argparse.Namespace, root: Path, cache: Path | None) -> RunConfig:
    config = get_profile(args.profile).run_config("attention", args.dataset)
    overrides: dict = {
        "data.train.root": str(root),
        "data.train.centers": "joints",
        "data.val": None,
        "data.cache_dir": None if cache is None else str(cache),
        "train.epochs": TIMED_EPOCH,
        "train.steps_per_epoch": args.steps,
        "train.num_workers": args.workers,
        "train.device": args.device,
        "train.progress": False,
        "train.amp_dtype": args.amp_dtype,
        "train.compile": args.compile,
    }
    if args.batch:
        overrides["train.batch_size"] = args.batch
    if args.tiny:
        overrides.update(TINY)
    return config.with_overrides(overrides)


def items_per_second(config: RunConfig, seconds: float = 3.0, at_most: int = 200) -> float:
    """One process making training items (augmentation included): a worker's rate."""
    dataset = build_dataset(config, "train", report=lambda _: None)
    n, started = 0, time.perf_counter()
    while n < min(at_most, len(dataset)) and time.perf_counter() - started < seconds:
        dataset[n]
        n += 1
    return n / (time.perf_counter() - started)


def build_cache(config: RunConfig) -> float:
    """Seconds to build `config`'s crop cache (in parallel, as a training does)."""
    started = time.perf_counter()
    build_dataset(config, "train", report=lambda _: None)
    return time.perf_counter() - started


@contextlib.contextmanager
def count_syncs(device: torch.device) -> Iterator[Callable[[], int | None]]:
    """Inside the block, count the host's waits for `device`: CUDA's sync debug mode warns at
    each synchronising call (`.item()`, `float()`, a blocking copy to the host, ...). Yields
    the count so far; None off CUDA (tests count host reads instead: `step_costs`)."""
    if device.type != "cuda":
        yield lambda: None
        return
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield lambda: sum("synchroniz" in str(w.message) for w in log)
        finally:
            torch.cuda.set_sync_debug_mode(0)


def nvml_utilization(device: torch.device) -> Callable[[], float] | None:
    """A reader of `device`'s GPU utilisation (%) through NVML, or None where `pynvml` (the
    nvidia-ml-py package) is not importable or NVML does not start."""
    try:  # optional: only where nvidia-ml-py is installed (the GPU image has it)
        pynvml = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:  # the same GPU as torch's, also under CUDA_VISIBLE_DEVICES
            uuid = str(torch.cuda.get_device_properties(device).uuid)
            handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception:
            handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
    except Exception:  # NVMLError: no driver library, no permission
        return None
    return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)


def gpu_busy(reader: Callable[[], float] | None, samples: list[float]) -> float | str:
    """Mean of the samples, or NO_NVML where there was no reader."""
    if reader is None:
        return NO_NVML
    return float(np.mean(samples)) if samples else "n/a (no sample)"


class StepWindow:
    """The timed steps of epoch TIMED_EPOCH: from the engine's timing boundary after its first
    step to the one after its last (`engine.Throughput.boundary`, which synchronises CUDA at
    both). Over that window: wall time, steps, host syncs (`count_syncs`), GPU busy (NVML) and
    peak GPU memory; nothing of the epoch's end (weight check, checkpoint, validation)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.epoch = 0
        self.seconds = 0.0
        self.steps = 0
        self.syncs: int | None = None
        self.busy: float | str = NO_NVML
        self._stack: contextlib.ExitStack | None = None
        self._count: Callable[[], int | None] = lambda: None
        self._reader: Callable[[], float] | None = None
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._started = 0.0

    def throughput(self, device: torch.device) -> engine.Throughput:
        """The engine's Throughput, with this window's hooks at its boundaries."""
        return _HookedThroughput(device, self)

    def open(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            self._reader = nvml_utilization(self.device)
            if self._reader is not None:
                threading.Thread(target=self._poll, daemon=True).start()
        self._stack = contextlib.ExitStack()
        self._count = self._stack.enter_context(count_syncs(self.device))
        self._started = time.perf_counter()

    def _poll(self) -> None:
        assert self._reader is not None
        while not self._stop.wait(0.1):
            try:
                self._samples.append(self._reader())
            except Exception:  # NVML gone away: keep what was sampled
                return

    def close(self, steps: int) -> None:
        """Before the closing boundary's synchronisation (not counted as a step's sync)."""
        if self._stack is None:
            return
        self.syncs = self._count()
        self._stack.close()
        self._stack = None
        self.steps = steps
        if self.cuda:
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - self._started
        self._stop.set()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                self._samples.append(self._reader())  # one sample also in a short window
        self.busy = gpu_busy(self._reader, self._samples)

    def abort(self) -> None:
        """A run that ended inside the window (an error): undo the counting."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None
        self._stop.set()


class _HookedThroughput(engine.Throughput):
    """`engine.Throughput` that opens and closes a StepWindow at epoch TIMED_EPOCH's
    boundaries (after its first step; after its last)."""

    def __init__(self, device: torch.device, window: StepWindow) -> None:
        super().__init__(device)
        self.window = window

    def boundary(self, step: int) -> None:
        window = self.window
        if step == 1:
            window.epoch += 1
        timed = window.epoch == TIMED_EPOCH
        if timed and step > 1:
            window.close(step - 1)
        super().boundary(step)  # synchronises CUDA
        if timed and step == 1:
            window.open()


def train_rate(config: RunConfig, run_dir: Path) -> None:
    """Trains two epochs and prints the rows of epoch 2's timed steps (`StepWindow`)."""
    device = torch.device(config.train.device)
    window = StepWindow(device)
    try:
        with mock.patch.object(engine, "Throughput", window.throughput):
            engine.train(config, run_dir)
    finally:
        window.abort()
    if not window.steps:
        raise SystemExit("no timed steps: an epoch ran fewer than 2 steps (--steps, --frames)")
    emit("train samples/s", window.steps * config.train.batch_size / window.seconds)
    emit("timed steps", window.steps)
    if window.cuda:
        emit("peak GPU memory GiB", torch.cuda.max_memory_allocated(device) / 2**30)
        emit("GPU busy %", window.busy)
    if window.syncs is not None:
        emit("host syncs in timed steps", window.syncs)
        emit("host syncs per timed step", window.syncs / window.steps)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--dataset", choices=("icvl", "nyu"), default="icvl")
    parser.add_argument("--frames", type=int, default=2048, help="frames written to disk")
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch (>= 2)")
    parser.add_argument("--batch", type=int, help="batch per step (default: the profile's)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--cache", action="store_true", help="train from the crop cache")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp-dtype", choices=("float16", "bfloat16"), default="bfloat16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--data-root", type=Path, help="reuse (or write) the split here")
    parser.add_argument("--tiny", action="store_true", help="tiny network and data (CPU test)")
    parser.add_argument("--data-only", action="store_true", help="measure the data side only")
    args = parser.parse_args(argv)
    if args.tiny:
        args.frames, args.steps, args.workers, args.batch = 16, 2, 1, args.batch or 4
    if args.steps < 2:
        parser.error("--steps: at least 2 (the first step of an epoch is not timed)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*split has .* frames, the distribution's has")
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or Path(tmp) / args.dataset
        if not (root / ("Training" if args.dataset == "icvl" else "train")).exists():
            started = time.perf_counter()
            write_split(args.dataset, root, args.frames, workers=max(1, args.workers))
            spent = time.perf_counter() - started
            print(f"wrote {args.frames} {args.dataset} frames in {spent:.1f} s", flush=True)
        png = bench_config(args, root, None)
        cached = bench_config(args, root, Path(tmp) / "cache")
        print(
            f"device {device}; torch {torch.__version__}; profile {args.profile}"
            f"{' (tiny)' if args.tiny else ''}; {args.dataset}; batch {png.train.batch_size}; "
            f"{args.workers} workers; {'cache' if args.cache else 'PNG'}; AMP {args.amp_dtype}; "
            f"compile {args.compile}",
            flush=True,
        )
        print("| measure | value |\n|---|---:|", flush=True)
        emit("data, PNG: samples/s per worker", items_per_second(png))
        emit(f"cache build: s for {args.frames} frames", build_cache(cached))
        emit("data, cache: samples/s per worker", items_per_second(cached))
        if not args.data_only:
            train_rate(cached if args.cache else png, Path(tmp) / "run")
    emit("host float32 matmul GFLOP/s", machine.matmul_gflops())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
