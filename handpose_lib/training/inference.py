"""Predictions of a trained network in full-image uvd, and trained runs loaded and evaluated.

A pose network predicts normalized crop coordinates (B, J, 3); the crop transform of each item
(`crop_transform`, `center_uvd`, `cube_mm`) maps them back to image pixels and millimetres, so
the result is comparable with the published methods' files. The localization network predicts
the hand centre's offset in the crop (B, 3), decoded the same way to a refined centre (N, 3).
Centres are written as a one-joint uvd file (`write_predictions`) and read back by
`data.read_centers`, which is what a pose run's `SourceSpec.centers` accepts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from handpose_lib import uvd_format
from handpose_lib.evaluate import MethodResult, evaluate_uvd
from handpose_lib.preprocess import crop_to_image
from handpose_lib.training.checkpoint import load_checkpoint
from handpose_lib.training.config import RunConfig, SourceSpec, build_model
from handpose_lib.training.data import build_dataset, with_run_cache
from handpose_lib.training.distributed import select_device, unwrap


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


@dataclass(frozen=True)
class Inference:
    """One pass of a network over a loader, in loader order, image uvd.

    pred_uvd:         PoseNet: (N, J, 3) joints; LocNet: (N, 3) refined hand centres.
    joints_uvd:       (N, J, 3) labelled joints.
    crop_centers_uvd: (N, 3) centres the crops were cut around (the CoM for "com" data).
    """

    pred_uvd: np.ndarray
    joints_uvd: np.ndarray
    crop_centers_uvd: np.ndarray

    @property
    def is_pose(self) -> bool:
        return self.pred_uvd.ndim == 3

    @property
    def truth_uvd(self) -> np.ndarray:
        """What pred_uvd estimates: the joints (N, J, 3), or the hand centres (N, 3)."""
        return self.joints_uvd if self.is_pose else hand_center_uvd(self.joints_uvd)


@torch.no_grad()
def infer(model: nn.Module, loader: DataLoader, device: torch.device) -> Inference:
    """Run `model` over `loader` in eval mode (restoring its mode after).

    A dict output (PoseNet) gives joints from "uvd_crop"; a (B, 3) tensor (LocNet) gives
    centres. Always float32, also after AMP training: sub-pixel heatmap decoding takes
    logarithms of small heatmap values.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    preds, joints, centers = [], [], []
    try:
        for batch in loader:
            out = net(batch["image"].to(device, non_blocking=True))
            if isinstance(out, dict):
                preds.append(decode_to_image(out["uvd_crop"].float().cpu().numpy(), batch))
            elif isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == 3:
                offset = out.float().cpu().numpy()[:, None, :]
                preds.append(decode_to_image(offset, batch)[:, 0])
            else:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    "expected a pose network (dict output) or a localization network returning "
                    f"(B, 3) offsets, got {shape}"
                )
            joints.append(batch["uvd"].numpy())
            centers.append(batch["center_uvd"].numpy())
    finally:
        net.train(was_training)
    return Inference(
        pred_uvd=np.concatenate(preds),
        joints_uvd=np.concatenate(joints).astype(np.float64),
        crop_centers_uvd=np.concatenate(centers).astype(np.float64),
    )


def run_inference(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, ground truth) of `infer`: (N, J, 3) joints for a PoseNet, (N, 3) hand
    centres (truth: `hand_center_uvd` of the labelled joints) for a LocNet."""
    result = infer(model, loader, device)
    return result.pred_uvd, result.truth_uvd


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
    return infer(model, loader, device).pred_uvd


def write_predictions(path: str | os.PathLike, pred_uvd: np.ndarray) -> Path:
    """Write (N, J, 3) joints or (N, 3) centres (as one joint) in the community uvd format."""
    pred_uvd = np.asarray(pred_uvd, dtype=np.float64)
    if pred_uvd.ndim == 2:
        pred_uvd = pred_uvd[:, None, :]
    return uvd_format.write_uvd(path, pred_uvd)


def mean_error_mm(pred: np.ndarray, gt: np.ndarray, dataset: str) -> float:
    """Mean 3D error in mm of (N, J, 3) joints or (N, 3) centres, in the dataset's camera."""
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    return evaluate_uvd(pred, gt, dataset, name="val").mean_error_mm


def load_model(
    run_dir: str | os.PathLike, which: str = "last", device: str = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """The network of a run ("last" or "best" checkpoint) in eval mode, and its config.

    "last" is the default for reported numbers: with the default synthetic data the
    validation frames are the rendered ICVL test poses, so picking the "best" epoch on them
    would select the model on the test set.
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / ("best.pt" if which == "best" else "checkpoint.pt"))
    config = RunConfig.from_dict(state["config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.to(select_device(device)).eval(), config


def evaluate_run(
    run_dir: str | os.PathLike,
    which: str = "last",
    source: SourceSpec | None = None,
    out_path: str | os.PathLike | None = None,
    device: str = "auto",
    batch_size: int = 32,
    cache_dir: str | os.PathLike | None = None,
) -> MethodResult:
    """Predict the run's validation data (or `source`), optionally write the predictions in
    the community format, and evaluate them: joints for pose runs, centres for LocNet runs.
    `cache_dir` replaces a run's own crop cache folder: runs with the same crops (the
    self-comparison's) share one set of cached crops per centre instead of one per run (a
    cache is keyed by source, crop settings and centres, so a mismatch rebuilds, never
    reuses)."""
    model, config = load_model(run_dir, which, device)
    spec = source or config.data.val
    if spec is None:
        raise ValueError(f"{run_dir}: the run has no validation data; pass source=")
    if cache_dir is not None and config.data.cache_dir is not None:
        config = config.with_overrides({"data.cache_dir": str(cache_dir)})
    dataset = build_dataset(with_run_cache(config, run_dir), "val", spec)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=config.train.num_workers)
    pred, gt = run_inference(model, loader, next(model.parameters()).device)
    if out_path is not None:
        write_predictions(out_path, pred)
    if pred.ndim == 2:
        pred, gt = pred[:, None], gt[:, None]
    name = f"{config.name} ({Path(run_dir).name})"
    return evaluate_uvd(pred, gt, spec.dataset, name=name, file=str(out_path or ""))
