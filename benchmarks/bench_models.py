"""Size and speed of the networks: parameters, FLOPs, inference and training throughput.

Prints one row per network (the four PoseNet variants and LocNet) and size preset:
parameters, forward GFLOP per frame (torch.utils.flop_counter), inference frames/s at batch 1
and 32, training samples/s (forward + backward + SGD step with the loss of `pose_loss` /
`location_loss`) and the achieved FLOP/s as a fraction of a large float32 matmul measured
first on the same device.

    python benchmarks/bench_models.py --sizes paper,cpu --device cpu --repeats 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from handpose_lib import machine
from handpose_lib.models import (
    VARIANTS,
    LocNet,
    PoseNet,
    PoseNetConfig,
    hand_center_target,
    location_loss,
    pose_loss,
)
from handpose_lib.profiles import get_profile


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_and_seconds(
    fn: Callable[[], object], device: torch.device, repeats: int
) -> tuple[int, float]:
    """FLOPs of one call (counted on the warm-up call) and the fastest of `repeats` timed
    calls (the minimum is least disturbed by other load on the machine)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return counter.get_total_flops(), min(times)


def matmul_flops_per_s(device: torch.device, repeats: int) -> float:
    return machine.matmul_gflops(device, max(8, repeats)) * 1e9


def synthetic_targets(cfg: PoseNetConfig, batch: int, device: torch.device) -> dict:
    j, h = cfg.num_joints, cfg.heatmap_size
    uvd = torch.rand(batch, j, 3, device=device) * 2 - 1
    return {
        "heatmaps": torch.rand(batch, j, h, h, device=device),
        "depth": uvd[..., 2].clone(),
        "uvd_crop": uvd,
    }


def bench_one(
    name: str,
    net: torch.nn.Module,
    size: int,
    loss_fn: Callable[[Any, int], torch.Tensor],
    device: torch.device,
    repeats: int,
    train_batch: int,
    peak: float,
) -> dict:
    net = net.to(device)
    params = sum(p.numel() for p in net.parameters())
    image1 = torch.rand(1, 1, size, size, device=device) * 2 - 1
    image32 = torch.rand(32, 1, size, size, device=device) * 2 - 1
    image_train = image32[:train_batch]

    net.eval()
    with torch.no_grad():
        # Batch 1 is cheap: more repeats so one descheduled run on a busy machine is not the best.
        flops, t1 = flops_and_seconds(lambda: net(image1), device, 5 * repeats)
        t32 = flops_and_seconds(lambda: net(image32), device, repeats)[1]

    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-5)

    def step() -> None:
        loss = loss_fn(net(image_train), train_batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    train_flops, t_train = flops_and_seconds(step, device, repeats)
    return {
        "net": name,
        "params_M": params / 1e6,
        "GFLOP": flops / 1e9,
        "fps_b1": 1 / t1,
        "fps_b32": 32 / t32,
        "train_sps": train_batch / t_train,
        "train_bs": train_batch,
        "eff_inf": flops * 32 / t32 / peak,
        "eff_train": train_flops / t_train / peak,
    }


def run(sizes: list[str], device: torch.device, repeats: int, paper_train_batch: int) -> None:
    torch.manual_seed(0)
    peak = matmul_flops_per_s(device, repeats)
    threads = torch.get_num_threads()
    print(f"device {device}, {threads} threads, float32 matmul: {peak / 1e9:.1f} GFLOP/s")
    header = (
        f"{'size':6} {'network':11} {'params':>7} {'GFLOP':>7} {'fps b1':>7} {'fps b32':>8} "
        f"{'train/s':>8} {'bs':>3} {'%mm inf':>8} {'%mm trn':>8}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        train_batch = paper_train_batch if size == "paper" else 32
        rows = []
        for variant in VARIANTS:
            cfg = replace(get_profile(size).posenet, variant=variant)

            def loss_fn(out: Any, batch: int, cfg: PoseNetConfig = cfg) -> torch.Tensor:
                return pose_loss(out, synthetic_targets(cfg, batch, device), cfg)[0]

            rows.append(
                bench_one(
                    variant,
                    PoseNet(cfg),
                    cfg.input_size,
                    loss_fn,
                    device,
                    repeats,
                    train_batch,
                    peak,
                )
            )
        loc_cfg = get_profile(size).locnet
        center = hand_center_target(torch.rand(32, 16, 3, device=device))

        def loc_loss_fn(pred: Any, batch: int, center: torch.Tensor = center) -> torch.Tensor:
            return location_loss(pred, center[:batch])

        rows.append(
            bench_one(
                "locnet",
                LocNet(loc_cfg),
                loc_cfg.input_size,
                loc_loss_fn,
                device,
                repeats,
                train_batch,
                peak,
            )
        )
        for r in rows:
            print(
                f"{size:6} {r['net']:11} {r['params_M']:6.2f}M {r['GFLOP']:7.3f} "
                f"{r['fps_b1']:7.1f} {r['fps_b32']:8.1f} {r['train_sps']:8.1f} "
                f"{r['train_bs']:3d} {100 * r['eff_inf']:7.1f}% {100 * r['eff_train']:7.1f}%"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="paper,cpu", help="comma-separated profiles")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per measurement")
    parser.add_argument(
        "--paper-train-batch",
        type=int,
        default=None,
        help="training batch at paper size (default 32 on cuda, 8 on cpu to stay fast)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        get_profile(s)  # fail early on an unknown profile
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    paper_bs = args.paper_train_batch or (32 if device.type == "cuda" else 8)
    run(sizes, device, args.repeats, paper_bs)


if __name__ == "__main__":
    main()
