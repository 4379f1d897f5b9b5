"""Training losses: Eq. 1 and Eq. 2 of the paper, and the hand-location loss.

Scales (per sample, averaged over the batch):
- L_det^i (Eq. 2): sum over the J joints of the squared difference between predicted and
  ground-truth heatmaps, reduced over the H x W pixels by `PoseNetConfig.det_reduction`:
  "mean" (default) keeps the term independent of heatmap resolution, so the paper and CPU
  sizes train with the same learning rate (the per-joint version of Newell et al.'s MSE);
  "sum" is the squared L2 distance of Eq. 2 as the paper writes it, H x W times larger, which
  also scales the gradient that pulls heatmaps off the all-zero plateau by H x W.
- L_reg: on normalized depths (d - d_centre) / (cube_mm / 2), summed over joints; "l2" is the
  squared error, "smooth_l1" is Huber with beta = SMOOTH_L1_BETA (~3 mm for a 300 mm cube),
  both summed over joints. Summing over joints in both terms keeps them comparable as J changes.
- L = sum_i L_det^i + reg_weight * L_reg (Eq. 1 has reg_weight = 1).
- "plain" baseline: reg_weight * the same regression loss on all of uvd_crop (B, J, 3),
  summed over joints and coordinates; it has no L_det.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from handpose_lib.models.posenet import PoseNetConfig

SMOOTH_L1_BETA = 0.02


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Eq. 2: (B, J, H, W) x2 -> scalar, sum over joints of the squared error reduced over
    pixels by "mean" or "sum", averaged over the batch; "mse" averages over joints as well
    (`torch.nn.MSELoss()`)."""
    _check_same_shape("heatmaps", pred, target)
    squared = (pred - target).pow(2)
    if reduction == "mse":
        return squared.mean()
    if reduction == "mean":
        per_joint = squared.mean(dim=(-2, -1))
    elif reduction == "sum":
        per_joint = squared.sum(dim=(-2, -1))
    else:
        raise ValueError(
            f"heatmap_loss: reduction must be 'mean', 'sum' or 'mse', got {reduction!r}"
        )
    return per_joint.sum(dim=1).mean()


def regression_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """(B, ...) x2 -> scalar: squared ("l2") or Huber ("smooth_l1") error summed per sample."""
    _check_same_shape("regression", pred, target)
    if kind == "l2":
        per_element = (pred - target).pow(2)
    elif kind == "smooth_l1":
        per_element = F.smooth_l1_loss(pred, target, reduction="none", beta=SMOOTH_L1_BETA)
    else:
        raise ValueError(f"regression_loss: kind must be 'l2' or 'smooth_l1', got {kind!r}")
    return per_element.flatten(1).sum(dim=1).mean()


def pose_loss_terms(
    outputs: Mapping[str, Any], targets: Mapping[str, torch.Tensor], config: PoseNetConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 1 for `PoseNet` outputs and dataset targets ('heatmaps', 'depth', 'uvd_crop').

    Returns the total loss (scalar with gradient) and its parts as detached 0-d tensors on the
    loss's device: 'det_<i>' per stack, 'det' (their sum), 'reg' (unweighted), 'total'. Nothing
    is read back to the host, so a training step on a GPU never waits for it.
    """
    parts: dict[str, torch.Tensor] = {}
    if config.variant == "plain":
        reg = regression_loss(_get(outputs, "uvd_crop"), _get(targets, "uvd_crop"), config.reg_loss)
        total = config.reg_weight * reg
    else:
        stacks = _get(outputs, "heatmaps")
        if not isinstance(stacks, list | tuple) or not stacks:
            raise ValueError("pose_loss: outputs['heatmaps'] must be a non-empty list of stacks")
        gt = _get(targets, "heatmaps")
        det_terms = [heatmap_loss(h, gt, config.det_reduction) for h in stacks]
        for i, term in enumerate(det_terms):
            parts[f"det_{i}"] = term.detach()
        det = torch.stack(det_terms).sum()
        parts["det"] = det.detach()
        reg = regression_loss(_get(outputs, "depth"), _get(targets, "depth"), config.reg_loss)
        total = det + config.reg_weight * reg
    parts["reg"] = reg.detach()
    parts["total"] = total.detach()
    return total, parts


def pose_loss(
    outputs: Mapping[str, Any], targets: Mapping[str, torch.Tensor], config: PoseNetConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """`pose_loss_terms` with the parts read back as floats, for logging outside a training
    loop (one host read per part)."""
    total, parts = pose_loss_terms(outputs, targets, config)
    return total, {k: float(v) for k, v in parts.items()}


def location_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LocNet loss: (B, 3) x2 -> scalar squared error summed over u, v, d, mean over batch."""
    return regression_loss(pred, target, "l2")


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    if key not in mapping:
        raise KeyError(f"pose_loss: missing key {key!r}; have {sorted(mapping)}")
    return mapping[key]


def _check_same_shape(name: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"{name} loss: prediction shape {tuple(pred.shape)} != "
            f"target shape {tuple(target.shape)}"
        )
