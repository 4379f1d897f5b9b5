"""Measurements on the input pipeline: centre offsets along the hand, the surface gap."""

from __future__ import annotations

import numpy as np
import pytest

from handpose_lib import measures
from handpose_lib.camera import ICVL
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.preprocess import (
    AugmentParams,
    CropConfig,
    augment_crop,
    crop_depth,
    hand_center,
    make_crop,
    sample_targets,
)

SMALL = CropConfig(input_size=32, heatmap_size=16)


def random_hand(rng, layout="icvl"):
    return rng.normal([0.0, 0.0, 500.0], 30.0, size=(len(JOINT_NAMES[layout]), 3))


@pytest.mark.parametrize("layout", ["icvl", "nyu"])
def test_offsets_are_measured_along_each_hands_own_axes(layout):
    names = JOINT_NAMES[layout]
    palm, mid = names.index("Palm"), names.index("Mid.R")
    rng = np.random.default_rng(0)
    joints = np.stack([random_hand(rng, layout) for _ in range(3)])
    axis = joints[:, palm, :2] - joints[:, mid, :2]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    across = np.column_stack([-axis[:, 1], axis[:, 0]])
    shift = np.column_stack([12.0 * axis + 5.0 * across, np.full(3, -7.0)])
    out = measures.offsets_along_hand(joints.mean(axis=1) + shift, joints, layout)
    np.testing.assert_allclose(out["toward_wrist"], 12.0)
    np.testing.assert_allclose(out["across"], 5.0)
    np.testing.assert_allclose(out["depth"], -7.0)
    np.testing.assert_allclose(out["total"], np.sqrt(12**2 + 5**2 + 7**2))


def test_offsets_do_not_depend_on_the_hands_roll():
    rng = np.random.default_rng(1)
    joints = random_hand(rng)
    center = joints.mean(axis=0) + np.array([20.0, -9.0, 4.0])
    angle = np.radians(70.0)
    roll = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    before = measures.offsets_along_hand(center[None], joints[None], "icvl")
    after = measures.offsets_along_hand((center @ roll.T)[None], (joints @ roll.T)[None], "icvl")
    for part in before:
        np.testing.assert_allclose(after[part], before[part])


def test_offsets_check_shapes_and_dataset():
    joints = np.zeros((2, 16, 3))
    with pytest.raises(ValueError, match=r"center_xyz \(N, 3\)"):
        measures.offsets_along_hand(np.zeros((3, 3)), joints, "icvl")
    with pytest.raises(ValueError, match="unknown dataset 'msra'"):
        measures.offsets_along_hand(np.zeros((2, 3)), joints, "msra")


def test_surface_gap_is_small_when_aligned_and_large_when_not():
    frame = SyntheticSource(1, seed=3)[0]
    crop = make_crop(hand_center(frame.depth_mm, ICVL, SMALL), ICVL, SMALL.cube_mm, 32)
    sample = sample_targets(crop_depth(frame.depth_mm, crop), frame.uvd, crop, SMALL)
    assert measures.surface_gap_mm(sample) < 25.0
    moved = augment_crop(crop, AugmentParams(rotation_deg=90.0, translate=(0.1, 0.05)))
    augmented = sample_targets(crop_depth(frame.depth_mm, moved), frame.uvd, moved, SMALL)
    assert measures.surface_gap_mm(augmented) < 25.0
    # Joints of the original crop on the augmented image: they no longer match.
    mismatched = dict(augmented, uvd_crop=sample["uvd_crop"], depth=sample["depth"])
    assert measures.surface_gap_mm(mismatched) > 40.0
