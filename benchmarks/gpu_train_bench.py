"""Training throughput of the real path: files on disk -> DataLoader workers -> `engine.train`
(issue 16, sections 2 and 3).

Writes a real-format ICVL or NYU training split with the package's writers (synthetic hands,
`--frames` of them), then measures:

    data, PNG      samples/s of one loader worker making items from the PNG files
    data, cache    samples/s of one worker making items from the crop cache (built once,
                   in parallel, timed too)
    train          samples/s of `engine.train` (the profile's optimizer, AMP, checks, the
                   loader with `--workers` workers), over an epoch of `--steps` steps after an
                   untimed warm-up epoch
    GPU busy       mean of `torch.cuda.utilization()` sampled every 0.1 s in the timed epoch
    peak memory    `torch.cuda.max_memory_allocated` in the timed epoch
    syncs          host waits the timed epoch caused, counted with
                   `torch.cuda.set_sync_debug_mode("warn")` (CUDA only)

    python benchmarks/gpu_train_bench.py --device cuda --workers 16 --steps 200
    python benchmarks/gpu_train_bench.py --device cuda --dataset nyu --cache
    python benchmarks/gpu_train_bench.py --tiny        # CPU, seconds (tested)

Workers needed to feed the GPU: train samples/s / (data samples/s per worker).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from step_costs import TINY  # the tiny network sizes, beside this script

from handpose_lib import machine
from handpose_lib.datasets import writers
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.synthetic_nyu import SyntheticNyuSource
from handpose_lib.profiles import get_profile
from handpose_lib.training.config import RunConfig
from handpose_lib.training.data import build_dataset
from handpose_lib.training.engine import train


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
        "train.epochs": 2,
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


@dataclass
class _Sampler:
    """GPU utilisation and sync warnings during the timed epoch (on_epoch_end of epoch 1)."""

    device: torch.device
    samples: list[float]
    syncs: int = 0
    _stop: threading.Event | None = None
    _warnings: object = None

    def start(self) -> None:
        if self.device.type != "cuda":
            return
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._stop = threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()
        self._warnings = warnings.catch_warnings(record=True)
        self._log = self._warnings.__enter__()
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")

    def _poll(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                self.samples.append(float(torch.cuda.utilization(self.device)))
            except Exception:  # no NVML: report utilisation as unknown
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.device.type != "cuda" or self._stop is None:
            return
        torch.cuda.set_sync_debug_mode(0)
        self._stop.set()
        self.syncs = sum("synchroniz" in str(w.message) for w in self._log)
        self._warnings.__exit__(None, None, None)  # type: ignore[attr-defined]


def train_rate(config: RunConfig, run_dir: Path) -> dict[str, float]:
    """samples/s of epoch 2 of `engine.train` (epoch 1 warms up: workers, cuDNN, compile)."""
    device = torch.device(config.train.device)
    sampler = _Sampler(device, [])
    times: dict[int, float] = {}

    def on_epoch_end(epoch: int, record: dict) -> None:
        times[epoch] = record["time_s"]
        if epoch == 1:
            sampler.start()
        else:
            sampler.stop()

    train(config, run_dir, on_epoch_end=on_epoch_end)
    # The steps an epoch really ran (steps_per_epoch caps them at the frames' batches).
    steps = json.loads((run_dir / "progress.json").read_text())["steps"]
    result = {"train samples/s": steps * config.train.batch_size / times[2]}
    if device.type == "cuda":
        result["peak GPU memory GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
        result["GPU busy %"] = float(np.mean(sampler.samples)) if sampler.samples else float("nan")
        result["host syncs in timed epoch"] = sampler.syncs
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--dataset", choices=("icvl", "nyu"), default="icvl")
    parser.add_argument("--frames", type=int, default=2048, help="frames written to disk")
    parser.add_argument("--steps", type=int, default=100, help="timed steps (and warm-up)")
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
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*split has .* frames, the distribution's has")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_root or Path(tmp) / args.dataset
        if not (root / ("Training" if args.dataset == "icvl" else "train")).exists():
            started = time.perf_counter()
            write_split(args.dataset, root, args.frames, workers=max(1, args.workers))
            spent = time.perf_counter() - started
            print(f"wrote {args.frames} {args.dataset} frames in {spent:.1f} s")
        png = bench_config(args, root, None)
        started = time.perf_counter()
        cached = bench_config(args, root, Path(tmp) / "cache")
        build_dataset(cached, "train", report=lambda _: None)  # builds the cache
        cache_s = time.perf_counter() - started
        rows = {
            "data, PNG: samples/s per worker": items_per_second(png),
            "data, cache: samples/s per worker": items_per_second(cached),
            f"cache build: s for {args.frames} frames": cache_s,
        }
        if not args.data_only:
            rows.update(train_rate(cached if args.cache else png, Path(tmp) / "run"))
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"device {device}; torch {torch.__version__}; float32 matmul "
        f"{machine.matmul_gflops():.0f} GFLOP/s; profile {args.profile}"
        f"{' (tiny)' if args.tiny else ''}; {args.dataset}; batch {png.train.batch_size}; "
        f"{args.workers} workers; {'cache' if args.cache else 'PNG'}; AMP {args.amp_dtype}; "
        f"compile {args.compile}"
    )
    print("| measure | value |\n|---|---:|")
    for name, value in rows.items():
        print(f"| {name} | {value:.3g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
