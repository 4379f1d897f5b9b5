"""What one training step of the real `engine.train` path costs the host (issue 16, section 2).

Counts, per optimizer step, at paper size (or `--tiny`):

    aten ops      operators dispatched to the backend (forward, backward and optimizer), a
                  proxy for GPU kernel launches: each one is at least one launch on CUDA
    host reads    `.item()`, `float()`, `int()`, `bool()` and `.tolist()` of a tensor on the
                  step path: on CUDA each one waits for the GPU to finish all queued work

Both are measured as the difference between a run of `k + 1` steps and one of `k` steps of
one epoch (no validation), so the epoch's own set-up and end (the weight check, the checkpoint's
copies, the last `sync_every` read) cancel: what is left is the training steps' own. Each row is
printed (flushed) as soon as its profile is measured.

    python benchmarks/step_costs.py --profile paper paper_faithful
    python benchmarks/step_costs.py --tiny        # seconds (tested)

On a GPU, `torch.cuda.set_sync_debug_mode("warn")` shows the same: `gpu_train_bench.py` counts
the syncs over a second epoch's timed steps with it (the steps alone, as here).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from handpose_lib.profiles import get_profile
from handpose_lib.training.config import RunConfig
from handpose_lib.training.engine import train

HOST_READS = ("item", "__float__", "__int__", "__bool__", "tolist")
TINY = {
    "model.input_size": 32,
    "model.heatmap_size": 16,
    "model.channels": 8,
    "model.hourglass_depth": 2,
    "model.se_reduction": 4,
    "model.reg_channels": 8,
    "model.reg_blocks": 2,
    "model.reg_hidden": 16,
    "crop.input_size": 32,
    "crop.heatmap_size": 16,
}


class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_host_reads() -> Iterator[dict[str, int]]:
    """Counts calls of the tensor methods that read a value back to Python."""
    counts = dict.fromkeys(HOST_READS, 0)
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            counts[name] += 1
            return original(self, *args, **kwargs)

        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def step_config(profile: str, tiny: bool, batch: int) -> RunConfig:
    """One epoch of `profile`'s attention run on a few synthetic frames, no validation."""
    config = get_profile(profile).run_config("attention", "synthetic")
    overrides: dict = {
        "data.val": None,
        "data.cache_dir": None,
        "data.train.num_frames": 4 * batch,
        "train.epochs": 1,
        "train.batch_size": batch,
        "train.num_workers": 0,
        "train.progress": False,
        "train.device": "cpu",
    }
    if tiny:
        overrides.update(TINY)
    return config.with_overrides(overrides)


def costs(config: RunConfig, steps: int) -> dict[str, int]:
    """Ops and host reads of `engine.train` over one epoch of `steps` steps."""
    config = config.with_overrides({"train.steps_per_epoch": steps})
    with tempfile.TemporaryDirectory() as tmp:
        counter = _OpCounter()
        with count_host_reads() as reads, counter:
            train(config, Path(tmp) / "run")
    return {"aten ops": counter.ops, "host reads": sum(reads.values())}


def per_step(config: RunConfig, k: int = 1) -> dict[str, int]:
    """Per-step costs: costs(k + 1 steps) - costs(k steps)."""
    short, long = costs(config, k), costs(config, k + 1)
    return {name: long[name] - short[name] for name in short}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", nargs="+", default=["paper", "paper_faithful"])
    parser.add_argument("--tiny", action="store_true", help="tiny networks, batch 4 (seconds)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    size = "tiny" if args.tiny else "paper size"
    print(f"| profile ({size}) | aten ops per step | host reads per step |", flush=True)
    print("|---|---:|---:|", flush=True)
    for profile in args.profile:
        result = per_step(step_config(profile, args.tiny, 4 if args.tiny else 32))
        print(f"| {profile} | {result['aten ops']} | {result['host reads']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
