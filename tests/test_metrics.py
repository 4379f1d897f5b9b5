import numpy as np
import pytest

from handpose_lib import metrics
from handpose_lib.camera import ICVL

# Two frames, three joints, errors chosen by hand.
ERRORS = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 60.0]])


def test_joint_errors_are_euclidean():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [1.0, 2.0, 2.0]]])
    np.testing.assert_allclose(metrics.joint_errors_mm(pred, gt), [[5.0, 3.0]])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        metrics.joint_errors_mm(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))


def test_mean_and_per_joint():
    assert metrics.mean_error_mm(ERRORS) == pytest.approx(96.0 / 6)
    np.testing.assert_allclose(metrics.per_joint_mean_mm(ERRORS), [5.5, 11.0, 31.5])


def test_success_rate_max_counts_worst_joint_inclusive():
    # worst joints: 3 and 60 mm
    curve = metrics.success_rate_max(ERRORS, np.array([0.0, 2.9, 3.0, 59.9, 60.0, 80.0]))
    np.testing.assert_allclose(curve, [0, 0, 0.5, 0.5, 1.0, 1.0])


def test_success_rate_mean():
    # frame means: 2 and 30 mm
    curve = metrics.success_rate_mean(ERRORS, np.array([1.0, 2.0, 29.0, 30.0]))
    np.testing.assert_allclose(curve, [0, 0.5, 0.5, 1.0])


def test_success_rate_joints():
    curve = metrics.success_rate_joints(ERRORS, np.array([0.5, 2.0, 10.0, 59.0, 60.0]))
    np.testing.assert_allclose(curve, [0, 2 / 6, 4 / 6, 5 / 6, 1.0])


def test_default_thresholds_span_0_to_80_mm():
    assert metrics.DEFAULT_THRESHOLDS_MM[0] == 0
    assert metrics.DEFAULT_THRESHOLDS_MM[-1] == 80
    assert len(metrics.success_rate_max(ERRORS)) == 81


def test_uvd_errors_measured_in_camera_space():
    gt_uvd = np.array([[[160.0, 120.0, 400.0]]])
    pred_uvd = gt_uvd + [0.0, 0.0, 7.0]  # 7 mm further along the optical axis
    np.testing.assert_allclose(metrics.uvd_errors_mm(pred_uvd, gt_uvd, ICVL), [[7.0]])


def test_error_parts_by_hand():
    # One joint at depth 500 mm; the prediction is 3 px right, 4 px down, 12 mm too far.
    gt = np.array([[[160.0, 120.0, 500.0]]])
    pred = np.array([[[163.0, 124.0, 512.0]]])
    parts = metrics.error_parts(pred, gt, ICVL)
    assert parts["2D error (px)"] == pytest.approx(5.0)
    # At the true depth: 3 px and 4 px are 3 * 500 / fx and 4 * 500 / fy mm.
    assert parts["2D error (mm)"] == pytest.approx(5.0 * 500 / ICVL.fx)
    assert parts["depth error (mm)"] == pytest.approx(12.0)
    expected_3d = np.linalg.norm(ICVL.uvd_to_xyz(pred) - ICVL.uvd_to_xyz(gt))
    assert parts["3D error (mm)"] == pytest.approx(expected_3d)
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        metrics.error_parts(pred[0], gt[0], ICVL)
