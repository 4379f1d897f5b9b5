"""Constant-pose floors: built from the labels, evaluated like any model."""

from __future__ import annotations

import numpy as np
import pytest

from handpose_lib import floors
from handpose_lib.camera import ICVL
from handpose_lib.datasets.synthetic import SyntheticSource


def hands(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4, 3) uvd: one fixed 4-joint shape, moved around and deformed a little."""
    rng = np.random.default_rng(seed)
    shape = np.array([[0.0, 0.0, 0.0], [30.0, 0.0, 5.0], [0.0, 40.0, -5.0], [-20.0, 10.0, 0.0]])
    centres = rng.uniform([-80, -60, 350], [80, 60, 600], size=(n, 1, 3))
    xyz = centres + shape + rng.normal(0, 2.0, size=(n, 4, 3))
    return ICVL.xyz_to_uvd(xyz)


def test_oracle_floor_is_the_mean_shape_at_each_centroid():
    gt = hands(50)
    pred = floors.oracle_mean_pose(gt, ICVL)
    xyz_pred, xyz_gt = ICVL.uvd_to_xyz(pred), ICVL.uvd_to_xyz(gt)
    # Same centroids, one shape for every frame.
    assert np.allclose(xyz_pred.mean(axis=1), xyz_gt.mean(axis=1))
    shapes = xyz_pred - xyz_pred.mean(axis=1, keepdims=True)
    assert np.allclose(shapes, shapes[:1])
    # Only the per-frame deformation (2 mm noise) is left as error.
    result = floors.constant_pose_floors(gt, "icvl")[0]
    assert result.name == floors.TEST_MEAN_POSE
    assert 1.0 < result.mean_error_mm < 5.0
    assert result.parts["3D error (mm)"] == pytest.approx(result.mean_error_mm)


def test_training_floor_uses_the_training_shape_and_is_worse_when_it_differs():
    gt = hands(40)
    train = hands(30, seed=1)
    other = train.copy()
    other_xyz = ICVL.uvd_to_xyz(other)
    other_xyz[:, 1] += [15.0, 0.0, 0.0]  # the training hands have a longer second joint
    other = ICVL.xyz_to_uvd(other_xyz)
    same = floors.constant_pose_floors(gt, "icvl", train_uvd=train)
    longer = floors.constant_pose_floors(gt, "icvl", train_uvd=other)
    assert [f.name for f in same] == [floors.TEST_MEAN_POSE, floors.TRAIN_MEAN_POSE]
    assert same[1].mean_error_mm < same[0].mean_error_mm + 1.0
    assert longer[1].mean_error_mm > same[1].mean_error_mm + 2.0
    with pytest.raises(ValueError, match="joints"):
        floors.training_mean_pose(gt, ICVL, other[:, :3])


def test_synthetic_training_labels_match_the_source():
    labels = floors.synthetic_train_uvd(3, seed=2)
    source = SyntheticSource(3, seed=2)
    assert labels.shape == (3, 16, 3)
    # The source rounds its labels to 3 decimals, as an ICVL label file does.
    assert np.allclose(labels[1], source[1].uvd, atol=1e-3)


def test_floors_reject_malformed_labels():
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        floors.oracle_mean_pose(np.zeros((4, 3)), ICVL)
