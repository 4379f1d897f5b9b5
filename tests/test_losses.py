"""Eq. 1 and Eq. 2 against values worked out by hand on tiny tensors (not the code's formula)."""

from __future__ import annotations

import pytest
import torch

from handpose_lib.models import PoseNetConfig, heatmap_loss, pose_loss, regression_loss

# Two samples, two joints, 2x2 heatmaps.
PRED = torch.tensor(
    [
        [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
        [[[0.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 0.0]]],
    ]
)
TARGET = torch.tensor(
    [
        [[[0.5, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]],
        [[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],
    ]
)
# Squared errors per joint, summed over the 4 pixels:
#   sample 0: joint 0 0.25 + 1 = 1.25, joint 1 0          -> 1.25
#   sample 1: joint 0 1 + 1 = 2,        joint 1 4         -> 6
SUM_PER_SAMPLE = (1.25, 6.0)
# Pixel means are a quarter of that: 0.3125 and 1.5.
MEAN_PER_SAMPLE = (0.3125, 1.5)


def test_heatmap_loss_pixel_mean_by_hand():
    # Sum over joints, mean over the batch: (0.3125 + 1.5) / 2.
    assert heatmap_loss(PRED, TARGET).item() == pytest.approx(0.90625)
    assert heatmap_loss(PRED, TARGET, "mean").item() == pytest.approx(sum(MEAN_PER_SAMPLE) / 2)


def test_heatmap_loss_pixel_sum_is_eq2_as_written():
    # The squared L2 distance of each joint's map: (1.25 + 6) / 2.
    assert heatmap_loss(PRED, TARGET, "sum").item() == pytest.approx(3.625)
    assert heatmap_loss(PRED, TARGET, "sum").item() == pytest.approx(sum(SUM_PER_SAMPLE) / 2)


def test_heatmap_loss_mse_is_torchs_mse_loss():
    # Mean over batch, joints and pixels: (1.25 + 6) / (2 samples x 2 joints x 4 pixels).
    assert heatmap_loss(PRED, TARGET, "mse").item() == pytest.approx(7.25 / 16)
    expected = torch.nn.MSELoss()(PRED, TARGET).item()
    assert heatmap_loss(PRED, TARGET, "mse").item() == pytest.approx(expected)


def test_heatmap_loss_of_a_single_1x1x2x2_map():
    pred = torch.tensor([[[[0.0, 0.5], [1.0, 0.0]]]])
    target = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    # Errors 0, -0.5, 1, 0 -> squares 0, 0.25, 1, 0.
    assert heatmap_loss(pred, target, "sum").item() == pytest.approx(1.25)
    assert heatmap_loss(pred, target, "mean").item() == pytest.approx(0.3125)


def test_heatmap_loss_rejects_unknown_reduction_and_shape_mismatch():
    with pytest.raises(ValueError, match="reduction"):
        heatmap_loss(PRED, TARGET, "max")
    with pytest.raises(ValueError, match="shape"):
        heatmap_loss(PRED[:, :1], TARGET)


def test_regression_losses_by_hand():
    pred = torch.tensor([[0.1, -0.2, 0.01]])
    target = torch.zeros(1, 3)
    # l2: 0.01 + 0.04 + 0.0001
    assert regression_loss(pred, target, "l2").item() == pytest.approx(0.0501)
    # Huber with beta 0.02: |x| - beta / 2 above beta, x^2 / (2 beta) below it:
    # 0.09 + 0.19 + 0.0025
    assert regression_loss(pred, target, "smooth_l1").item() == pytest.approx(0.2825)
    # Summed per sample, averaged over samples: a second sample with error 0 halves it.
    two = regression_loss(torch.cat([pred, target]), torch.zeros(2, 3), "l2")
    assert two.item() == pytest.approx(0.0501 / 2)


def config(**overrides) -> PoseNetConfig:
    return PoseNetConfig(num_joints=2, **overrides)


@pytest.mark.parametrize(
    ("reduction", "reg_weight", "det"),
    [("mean", 1.0, 0.90625), ("sum", 1.0, 3.625), ("mean", 0.1, 0.90625), ("sum", 0.01, 3.625)],
)
def test_pose_loss_eq1_by_hand(reduction, reg_weight, det):
    depth_pred = torch.tensor([[0.1, -0.2], [0.0, 0.3]])
    depth_target = torch.zeros(2, 2)
    # Regression: per sample 0.01 + 0.04 = 0.05 and 0.09; batch mean 0.07.
    reg = 0.07
    outputs = {"heatmaps": [PRED, TARGET], "depth": depth_pred}
    targets = {"heatmaps": TARGET, "depth": depth_target}
    cfg = config(det_reduction=reduction, reg_weight=reg_weight)
    total, parts = pose_loss(outputs, targets, cfg)
    # Stack 0 predicts PRED, stack 1 predicts the target exactly (L_det^1 = 0).
    assert parts["det_0"] == pytest.approx(det)
    assert parts["det_1"] == 0.0
    assert parts["det"] == pytest.approx(det)
    assert parts["reg"] == pytest.approx(reg)
    assert total.item() == pytest.approx(det + reg_weight * reg)
    assert parts["total"] == pytest.approx(total.item())


def test_plain_loss_is_weighted_regression_on_uvd():
    cfg = config(variant="plain", reg_weight=0.5)
    pred = torch.tensor([[[0.1, 0.0, 0.0], [0.0, 0.2, -0.1]]])
    # 0.01 + 0.04 + 0.01 = 0.06, weighted by 0.5.
    total, parts = pose_loss({"uvd_crop": pred}, {"uvd_crop": torch.zeros(1, 2, 3)}, cfg)
    assert parts["reg"] == pytest.approx(0.06)
    assert "det" not in parts
    assert total.item() == pytest.approx(0.03)


def test_det_reduction_is_validated():
    with pytest.raises(ValueError, match="det_reduction"):
        config(det_reduction="median")
