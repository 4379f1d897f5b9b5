"""Epoch time of the training profiles on this machine, through `handpose_lib.training` itself.

For each profile and model: trains 2 short epochs of `--steps` optimizer steps without
validation (the second epoch is timed, the first pays for warm-up), times `evaluate_run` on
`--val-frames` validation frames, and extrapolates to a full epoch of the profile's data
(training frames / batch size steps + the whole validation set).

    python benchmarks/bench_training.py --profiles smoke,cpu --models attention,locnet
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from handpose_lib.profiles import make_run_config
from handpose_lib.training.data import build_source
from handpose_lib.training.distributed import select_device
from handpose_lib.training.engine import train
from handpose_lib.training.inference import evaluate_run


def bench(profile: str, model: str, steps: int, val_frames: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config = make_run_config(profile, model)
    full_steps = len(build_source(config.data.train)) // config.train.batch_size
    val_spec = config.data.val
    full_val = len(build_source(val_spec)) if val_spec is not None else 0
    assert val_spec is not None, f"profile {profile}: no validation source"
    short_val = replace(val_spec, kind="synthetic", num_frames=val_frames, seed=1)
    short = config.with_overrides(
        {
            "train.epochs": 2,
            "train.steps_per_epoch": min(steps, full_steps),
            "train.progress": False,
            "data.val": None,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train(short, Path(tmp) / "run")
        step_s = result.history["time_s"].iloc[-1] / min(steps, full_steps)
        started = time.perf_counter()
        evaluate_run(Path(tmp) / "run", which="last", source=short_val)
        val_frame_s = (time.perf_counter() - started) / val_frames
    return {
        "profile": profile,
        "model": model,
        "device": str(select_device(config.train.device)),
        "batch": config.train.batch_size,
        "s/step": round(step_s, 3),
        "train frames/s": round(config.train.batch_size / step_s, 1),
        "steps/epoch": full_steps,
        "val frames": full_val,
        "val frames/s": round(1 / val_frame_s, 1),
        "epoch (min)": round((full_steps * step_s + full_val * val_frame_s) / 60, 2),
        "epochs": config.train.epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="smoke,cpu")
    parser.add_argument("--models", default="attention,locnet")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps")
    parser.add_argument("--val-frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    rows = [
        bench(p, m, args.steps, args.val_frames, args.threads)
        for p in args.profiles.split(",")
        for m in args.models.split(",")
    ]
    table = pd.DataFrame(rows)
    table["run (h)"] = (table["epoch (min)"] * table["epochs"] / 60).round(2)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
