"""Train the paper-size attention network for N steps on CUDA with mixed precision and print
throughput (samples/s), peak GPU memory and the loss (issue 8, section 6).

The paper's recipe: 128x128 crops, 2 stacks of 128-channel hourglasses, SGD lr 0.1, momentum
0.9, weight decay 5e-5, batch 32, Eq. 1-2 (`--reduction`). Frames are a fixed pool of
synthetic crops made once on the CPU (`--frames`) and cycled, so the numbers measure the GPU,
not the renderer. `--device cpu --tiny` runs the same loop at a tiny size in seconds (tested).

    python benchmarks/gpu_paper_steps.py --steps 200
    python benchmarks/gpu_paper_steps.py --device cpu --tiny --steps 3
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.models import PoseNet, PoseNetConfig, pose_loss
from handpose_lib.preprocess import AugmentConfig, CropConfig

KEYS = ("image", "heatmaps", "depth", "uvd_crop")
TINY: dict[str, Any] = {
    "input_size": 32,
    "heatmap_size": 16,
    "channels": 8,
    "hourglass_depth": 2,
    "se_reduction": 4,
    "reg_channels": 8,
    "reg_blocks": 2,
    "reg_hidden": 16,
}


def frame_pool(config: PoseNetConfig, frames: int, sigma: float) -> dict[str, torch.Tensor]:
    """`frames` augmented synthetic crops at the network's size, stacked (CPU tensors)."""
    crop = CropConfig(
        input_size=config.input_size, heatmap_size=config.heatmap_size, heatmap_sigma=sigma
    )
    dataset = HandPoseDataset(
        SyntheticSource(frames, seed=0), crop, centers="joints", augment=AugmentConfig()
    )
    items = [dataset[i] for i in range(frames)]
    return {k: torch.stack([item[k] for item in items]) for k in KEYS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=256, help="distinct frames cycled")
    parser.add_argument("--reduction", choices=("mean", "sum"), default="mean")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--no-amp", action="store_true", help="float32 instead of AMP")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="tiny network (CPU test)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu --tiny to test)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    config = PoseNetConfig(det_reduction=args.reduction, **(TINY if args.tiny else {}))
    frames = min(args.frames, 8) if args.tiny else args.frames
    pool = frame_pool(config, frames, sigma=1.0)
    pool = {k: v.to(device) for k, v in pool.items()}
    torch.manual_seed(0)
    net = PoseNet(config).to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)  # type: ignore[call-overload]  # not in the stubs
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-5)
    amp = device.type == "cuda" and not args.no_amp
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    order = torch.Generator().manual_seed(0)

    def step() -> dict[str, float]:
        idx = torch.randint(0, frames, (args.batch,), generator=order).to(device)
        batch = {k: v[idx] for k, v in pool.items()}
        image = batch["image"].contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss, parts = pose_loss(net(image), batch, config)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return parts

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    parts = {}
    for _ in range(args.steps):
        parts = step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    size = "tiny" if args.tiny else "paper"
    print(
        f"device {name}; {size}-size attention net, batch {args.batch}, AMP {amp}, "
        f"channels_last {args.channels_last}, det_reduction {args.reduction}"
    )
    print(
        f"steps {args.steps} in {elapsed:.2f} s: {args.steps * args.batch / elapsed:.1f} samples/s"
    )
    print(f"peak GPU memory {peak:.2f} GiB")
    print("loss " + ", ".join(f"{k} {v:.4g}" for k, v in parts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
