"""Networks of the paper: SE ResBlock, stacked hourglass, pose networks, location network."""

from __future__ import annotations

from handpose_lib.models.blocks import ResBlock, SEBlock
from handpose_lib.models.hourglass import Hourglass, StackedHourglass
from handpose_lib.models.locnet import LocNet, LocNetConfig, hand_center_target
from handpose_lib.models.losses import (
    heatmap_loss,
    location_loss,
    pose_loss,
    pose_loss_terms,
    regression_loss,
)
from handpose_lib.models.posenet import VARIANTS, PoseNet, PoseNetConfig

__all__ = [
    "VARIANTS",
    "Hourglass",
    "LocNet",
    "LocNetConfig",
    "PoseNet",
    "PoseNetConfig",
    "ResBlock",
    "SEBlock",
    "StackedHourglass",
    "hand_center_target",
    "heatmap_loss",
    "location_loss",
    "pose_loss",
    "pose_loss_terms",
    "regression_loss",
]
