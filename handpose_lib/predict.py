"""Predictions of a trained network in full-image uvd, written in the community format.

A pose network predicts normalized crop coordinates (B, J, 3); the crop transform of each item
(`crop_transform`, `center_uvd`, `cube_mm`) maps them back to image pixels and millimetres, so
the result is comparable with the published methods' files. The localization network predicts
the hand centre's offset in the crop (B, 3), decoded the same way to a refined centre (N, 3).
Centres are written as a one-joint uvd file and read back by `read_centers`, which is what a
pose run's `SourceSpec.centers` accepts.

    python -m handpose_lib.predict RUN_DIR preds.txt            # the run's validation data
    python -m handpose_lib.predict RUN_DIR preds.txt --source rendered --which last
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from handpose_lib import uvd_format
from handpose_lib.preprocess import crop_to_image


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def decode_to_image(uvd_crop: np.ndarray, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """(B, K, 3) normalized crop uvd -> (B, K, 3) image uvd, by each item's crop transform."""
    size = batch["image"].shape[-1]
    return crop_to_image(
        uvd_crop,
        batch["crop_transform"].numpy(),
        batch["center_uvd"][:, 2].numpy(),
        batch["cube_mm"].numpy(),
        size,
    )


def hand_center_uvd(uvd: np.ndarray) -> np.ndarray:
    """(..., J, 3) image joints -> (..., 3) hand centre: the LocNet target mapped to the image.

    `locnet.hand_center_target` averages the joints in crop coordinates; the crop map is affine
    in (u, v) and in d, so that average maps back to the plain mean of the image joints.
    """
    return np.asarray(uvd, dtype=np.float64).mean(axis=-2)


@torch.no_grad()
def run_inference(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and ground truth over a loader, in loader order, in image uvd.

    PoseNet (dict output): (N, J, 3) joints. LocNet (tensor output): (N, 3) hand centres,
    ground truth `hand_center_uvd` of the labelled joints. Always float32, also after AMP
    training: sub-pixel heatmap decoding takes logarithms of small heatmap values.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    preds, truths = [], []
    try:
        for batch in loader:
            image = batch["image"].to(device, non_blocking=True)
            out = net(image)
            if isinstance(out, dict):
                crop_uvd = out["uvd_crop"].float().cpu().numpy()
                preds.append(decode_to_image(crop_uvd, batch))
                truths.append(batch["uvd"].numpy())
            else:
                offset = out.float().cpu().numpy()[:, None, :]
                preds.append(decode_to_image(offset, batch)[:, 0])
                truths.append(hand_center_uvd(batch["uvd"].numpy()))
    finally:
        net.train(was_training)
    return np.concatenate(preds), np.concatenate(truths)


def predict(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    num_workers: int = 0,
) -> np.ndarray:
    """Full-image predictions for every item of a `HandPoseDataset`, in dataset order.

    PoseNet: (N, J, 3) joints uvd. LocNet: (N, 3) refined hand centres uvd.
    `device` defaults to where the model's parameters are.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    pred, _ = run_inference(model, loader, device)
    return pred


def write_predictions(path: str | os.PathLike, pred_uvd: np.ndarray) -> Path:
    """Write (N, J, 3) joints or (N, 3) centres (as one joint) in the community uvd format."""
    pred_uvd = np.asarray(pred_uvd, dtype=np.float64)
    if pred_uvd.ndim == 2:
        pred_uvd = pred_uvd[:, None, :]
    return uvd_format.write_uvd(path, pred_uvd)


def read_centers(path: str | os.PathLike, expected_frames: int | None = None) -> np.ndarray:
    """(N, 3) uvd hand centres from a one-joint community-format file (`write_predictions`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: centres file not found")
    return uvd_format.read_uvd(path, 1, expected_frames=expected_frames)[:, 0]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m handpose_lib.predict",
        description="Write a trained run's predictions in the community uvd format.",
    )
    parser.add_argument("run_dir", help="run directory written by handpose_lib.train")
    parser.add_argument("out", help="prediction file to write")
    parser.add_argument("--which", choices=("best", "last"), default="last")
    parser.add_argument(
        "--source",
        choices=("synthetic", "rendered", "icvl", "nyu"),
        help="data to predict (default: the run's validation data)",
    )
    parser.add_argument("--split", default="test", help="icvl / nyu split")
    parser.add_argument("--num-frames", type=int, default=0, help="0 = all (synthetic: >0)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic / rendered seed")
    parser.add_argument("--root", help="icvl / nyu root (default: the environment variable)")
    parser.add_argument("--centers", default="com", help="'com', 'joints' or a centres file")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # Imported here: train imports this module for validation.
    from handpose_lib.train import SourceSpec, evaluate_run

    args = _parse_args(argv)
    spec = None
    if args.source is not None:
        spec = SourceSpec(
            kind=args.source,
            num_frames=args.num_frames,
            seed=args.seed,
            root=args.root,
            split=args.split,
            centers=args.centers,
        )
    result = evaluate_run(
        args.run_dir, which=args.which, source=spec, out_path=args.out, device=args.device
    )
    print(f"wrote {args.out}: {result.frames} frames, mean error {result.mean_error_mm:.3f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
