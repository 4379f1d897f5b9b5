"""Does the paper's recipe leave the all-zero-heatmap plateau? (issue 8, section 6)

A CPU run at reduced width with the paper's optimizer (SGD lr 0.1, momentum 0.9, weight
decay 5e-5, batch 32), its loss (Eq. 1-2; `--reduction` "sum" is Eq. 2 as written, "mean"
the package's default) and its schedule shape (lr / 10 at 50 % and 75 % of the steps, as the
paper's two drops at epochs 10 and 15 of 20). Every `--log-every` steps it prints the loss
parts, L_det of the last stack as a fraction of the all-zero prediction's L_det on the same
batch (1.0 = on the plateau), and the mean heatmap peak (0 on the plateau, 1 for the targets).

    python benchmarks/paper_plateau.py --steps 300 --reduction sum mean
    python benchmarks/paper_plateau.py --steps 20 --width 16 --frames 64   # seconds

Built directly on the datasets and models (no training package): synthetic frames with the
default augmentation, cropped once into a memory-mapped cache (`--cache-dir`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.models import PoseNet, PoseNetConfig, heatmap_loss, pose_loss
from handpose_lib.preprocess import AugmentConfig, CropConfig

KEYS = ("image", "heatmaps", "depth", "uvd_crop")


def net_config(width: int, input_size: int, reduction: str) -> PoseNetConfig:
    """The paper's topology (2 stacks, hourglass down to 4x4) at a reduced width / input."""
    heatmap = input_size // 2
    return PoseNetConfig(
        input_size=input_size,
        heatmap_size=heatmap,
        channels=width,
        num_stacks=2,
        hourglass_depth=max(1, heatmap.bit_length() - 3),
        se_reduction=min(16, max(1, width // 4)),
        reg_channels=width,
        reg_blocks=3 if heatmap >= 32 else 2,
        reg_hidden=max(32, 4 * width),
        det_reduction=reduction,
    )


def lr_at(step: int, steps: int, lr: float) -> float:
    """The paper's shape: lr, then lr / 10 after half the steps, lr / 100 after three quarters."""
    return lr * (0.1 ** ((step >= steps // 2) + (step >= (3 * steps) // 4)))


def run(args: argparse.Namespace, reduction: str, dataset: HandPoseDataset) -> list[dict]:
    torch.manual_seed(args.seed)
    cfg = net_config(args.width, args.input_size, reduction)
    net = PoseNet(cfg)
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-5)
    loader = DataLoader(
        dataset,
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    history: list[dict[str, float]] = []
    step, epoch, started = 0, 0, time.perf_counter()
    print(f"\n== det_reduction {reduction!r}, width {args.width}, input {args.input_size}")
    print("step     lr  det_0     det_1     reg      det_1/zero  peak   s")
    while step < args.steps:
        dataset.set_epoch(epoch)
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, args.steps, args.lr)
            batch = {k: batch[k] for k in KEYS}
            out = net(batch["image"])
            loss, parts = pose_loss(out, batch, cfg)
            if not torch.isfinite(loss):
                print(f"-> {reduction}: diverged at step {step + 1} (loss {parts['total']})")
                return history
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            with torch.no_grad():
                zero = heatmap_loss(
                    torch.zeros_like(batch["heatmaps"]), batch["heatmaps"], reduction
                )
                peak = out["heatmaps"][-1].amax(dim=(-2, -1)).mean()
            record = {
                "step": step,
                "lr": optimizer.param_groups[0]["lr"],
                **{k: parts[k] for k in ("det_0", "det_1", "reg")},
                "det_1/zero": parts["det_1"] / float(zero),
                "peak": float(peak),
                "time_s": time.perf_counter() - started,
            }
            history.append(record)
            if step % args.log_every == 0 or step in (1, args.steps):
                print(
                    f"{step:4d} {record['lr']:.0e} {record['det_0']:.3e} {record['det_1']:.3e} "
                    f"{record['reg']:.3e} {record['det_1/zero']:10.3f} {record['peak']:6.3f} "
                    f"{record['time_s']:5.0f}",
                    flush=True,
                )
            if step >= args.steps:
                break
        epoch += 1
    left = next((r["step"] for r in history if r["det_1/zero"] < 0.9 and r["peak"] > 0.2), None)
    verdict = f"left the plateau at step {left}" if left else "still on the plateau"
    print(f"-> {reduction}: {verdict} (det_1/zero < 0.9 and mean peak > 0.2)")
    return history


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=32, help="channels (paper: 128)")
    parser.add_argument("--input-size", type=int, default=64, help="crop side (paper: 128)")
    parser.add_argument("--reduction", nargs="+", default=["sum", "mean"], choices=["sum", "mean"])
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=2048, help="synthetic training frames")
    parser.add_argument("--sigma", type=float, default=1.0, help="heatmap sigma (paper-like: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--cache-dir", type=Path, help="crop cache (default: a temporary one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    crop = CropConfig(
        input_size=args.input_size, heatmap_size=args.input_size // 2, heatmap_sigma=args.sigma
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp)
        dataset = HandPoseDataset(
            SyntheticSource(args.frames, seed=0),
            crop,
            centers="joints",
            augment=AugmentConfig(),
            seed=args.seed,
            cache_dir=cache / f"synthetic_{args.frames}_{args.input_size}_{args.sigma}",
        )
        for reduction in args.reduction:
            run(args, reduction, dataset)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
