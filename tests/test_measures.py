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


def test_measure_com_matches_hand_center_frame_by_frame():
    source = SyntheticSource(6, seed=3)
    raw = CropConfig(input_size=32, heatmap_size=16, com_iterations=0)
    found = measures.measure_com(source, [0, 2, 5], {"raw": raw, "refined": SMALL})
    assert found.skipped == []
    for row, index in enumerate([0, 2, 5]):
        frame = source[index]
        expected = ICVL.uvd_to_xyz(hand_center(frame.depth_mm, frame.camera, SMALL))
        np.testing.assert_allclose(found.centres_xyz["refined"][row], expected)
        np.testing.assert_allclose(found.joints_uvd[row], frame.uvd)


def test_bias_and_spread_separate_a_constant_shift_from_scatter():
    # Centres 10 mm right of every joint centroid (bias 10, spread 0), then +-5 mm in depth
    # around the centroid (bias 0, spread 5): written out in camera mm, then as uvd labels.
    rng = np.random.default_rng(0)
    joints_xyz = rng.normal([0.0, 0.0, 500.0], 30.0, size=(40, 16, 3))
    joints_uvd = ICVL.xyz_to_uvd(joints_xyz)
    centroid = joints_xyz.mean(axis=1)
    scatter = np.zeros_like(centroid)
    scatter[:, 2] = np.where(np.arange(40) % 2 == 0, 5.0, -5.0)
    right = np.array([10.0, 0.0, 0.0])
    table = measures.centre_bias_spread(
        {"shifted": centroid + right, "scattered": centroid + scatter},
        joints_uvd,
        "icvl",
    ).set_index(["estimate", "reference"])
    shifted = table.loc[("shifted", "joint centroid")]
    assert shifted["bias (mm)"] == pytest.approx(10.0, abs=1e-6)
    assert shifted["spread (mm)"] == pytest.approx(0.0, abs=1e-6)
    scattered = table.loc[("scattered", "joint centroid")]
    assert scattered["bias (mm)"] == pytest.approx(0.0, abs=1e-6)
    assert scattered["spread (mm)"] == pytest.approx(5.0, abs=1e-6)
    # Against the palm joint the same centres carry the palm's offset from the centroid.
    palm = joints_xyz[:, 0]
    expected = np.linalg.norm((centroid + right - palm).mean(axis=0))
    assert table.loc[("shifted", "palm joint"), "bias (mm)"] == pytest.approx(expected, rel=1e-6)
