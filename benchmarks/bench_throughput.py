"""Training throughput levers of a profile's attention model on this CPU, side by side.

Times one optimizer step (forward, Eq. 1 loss, backward, Adam) on a fixed batch under each
setting, and separately the data side of a step (one batch of augmented crops from the crop
cache, as the trainer's DataLoader delivers it with num_workers=0). Settings: torch threads,
channels_last memory format, torch.compile. Median of `--steps` timed steps after warm-up.

    python benchmarks/bench_throughput.py --profile cpu --steps 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable

import pandas as pd
import torch
from torch.utils.data import DataLoader

from handpose_lib import machine
from handpose_lib.profiles import make_run_config
from handpose_lib.training.config import RunConfig, build_model
from handpose_lib.training.data import build_dataset
from handpose_lib.training.engine import compute_loss

KEYS = ("image", "heatmaps", "depth", "uvd_crop")


def timed(step: Callable[[], None], steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def step_time(
    config: RunConfig, batch: dict, threads: int, channels_last: bool, compiled: bool, steps: int
) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(config).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        batch = {**batch, "image": batch["image"].contiguous(memory_format=torch.channels_last)}
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss, _ = compute_loss(config, forward, batch)  # type: ignore[arg-type]  # compiled
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, steps, warmup=3 if compiled else 2)


def _one_thread_step_time(task: tuple[str, bool, int]) -> float:
    profile, channels_last, steps = task
    config = make_run_config(profile, "attention")
    return step_time(config, random_batch(config), 1, channels_last, False, steps)


def random_batch(config: RunConfig, joints: int = 16) -> dict[str, torch.Tensor]:
    size, hm, batch = config.crop.input_size, config.crop.heatmap_size, config.train.batch_size
    generator = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(batch, 1, size, size, generator=generator),
        "heatmaps": torch.rand(batch, joints, hm, hm, generator=generator),
        "depth": torch.rand(batch, joints, generator=generator),
        "uvd_crop": torch.rand(batch, joints, 3, generator=generator),
    }


def data_time(config: RunConfig, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        small = config.with_overrides({"data.train.num_frames": 512, "data.cache_dir": tmp})
        dataset = build_dataset(small, "train")
        loader = DataLoader(dataset, batch_size=config.train.batch_size, shuffle=True)
        batches = iter(loader)
        return timed(lambda: next(batches), steps, warmup=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile rows")
    args = parser.parse_args(argv)
    config = make_run_config(args.profile, "attention")
    rate = machine.matmul_gflops()
    size = config.crop.input_size
    batch = random_batch(config)
    rows = []
    settings = [(2, False, False), (1, False, False), (2, True, False), (1, True, False)]
    if not args.no_compile:
        settings += [(2, False, True), (2, True, True)]
    for threads, channels_last, compiled in settings:
        seconds = step_time(config, batch, threads, channels_last, compiled, args.steps)
        rows.append(
            {
                "setting": f"{threads} threads"
                + (", channels_last" if channels_last else "")
                + (", torch.compile" if compiled else ""),
                "s/step": round(seconds, 3),
            }
        )
    # Two trainings at once, one thread each (`--jobs 2`): timed side by side in two processes;
    # the row gives the time per step of the pair (each process's median / 2).
    for channels_last in (False, True):
        tasks = [(args.profile, channels_last, args.steps)] * 2
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            medians = pool.map(_one_thread_step_time, tasks)
        rows.append(
            {
                "setting": "2 processes x 1 thread at once, per step of the pair"
                + (", channels_last" if channels_last else ""),
                "s/step": round(max(medians) / 2, 3),
            }
        )
    torch.set_num_threads(2)
    rows.append({"setting": "data: one augmented batch from the crop cache", "s/step": None})
    rows[-1]["s/step"] = round(data_time(config, args.steps), 3)
    table = pd.DataFrame(rows)
    base = table["s/step"].iloc[0]
    table["vs 2 threads eager"] = (table["s/step"] / base).round(2)
    print(
        f"{args.profile} attention, batch {config.train.batch_size}, "
        f"{size}x{size} crops; float32 matmul {rate:.0f} GFLOP/s"
    )
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
