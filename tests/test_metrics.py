import numpy as np
import pytest

from handpose_lib import metrics
from handpose_lib.camera import ICVL, Camera, camera_for

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


# Joint pairs (ground truth, prediction) in uvd whose camera-space distance is computed by hand
# from the published intrinsics, written out here (the package's camera is not used to make
# them): x = (u - cx) d / fx, y = (v - cy) d / fy (ICVL, y down), y = (cy - v) d / fy (NYU, up).
# ICVL: fx = fy = 241.42, cx = 160, cy = 120.
ICVL_PAIRS = [
    # (100, -50, 400) and (-100, 50, 500): off-axis at two depths, so a wrong cx, cy or focal
    # length moves the two points differently. |(200, 100, 100)| = sqrt(60000).
    ([220.355, 89.8225, 400.0], [111.716, 144.142, 500.0], 60000**0.5),
    # (50, 0, 250) and (0, 0, 250): 241.42 / 5 px = 50 mm at 250 mm.
    ([208.284, 120.0, 250.0], [160.0, 120.0, 250.0], 50.0),
]
# NYU: fx = 588.03, fy = 587.07, cx = 320, cy = 240.
NYU_PAIRS = [
    # (60, 80, 800) and (-40, -120, 1000): |(100, 200, 200)| = 300 mm.
    ([364.10225, 181.293, 800.0], [296.4788, 310.4484, 1000.0], 300.0),
    # (0, 100, 1000) and (0, 0, 1000): 58.707 px along v only, 100 mm with fy; with fx for fy
    # it would be 58.707 * 1000 / 588.03 = 99.837 mm.
    ([320.0, 181.293, 1000.0], [320.0, 240.0, 1000.0], 100.0),
]
PAIRS = {"icvl": ICVL_PAIRS, "nyu": NYU_PAIRS}


def pairs_as_frames(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1, J, 3) ground truth, (1, J, 3) prediction and (1, J) expected errors in mm."""
    gt, pred, mm = zip(*PAIRS[dataset], strict=True)
    return np.array([gt]), np.array([pred]), np.array([mm])


@pytest.mark.parametrize("dataset", ["icvl", "nyu"])
def test_uvd_errors_off_axis_computed_by_hand(dataset):
    gt, pred, expected = pairs_as_frames(dataset)
    camera = camera_for(dataset)
    np.testing.assert_allclose(metrics.uvd_errors_mm(pred, gt, camera), expected, atol=1e-9)
    np.testing.assert_allclose(metrics.uvd_errors_mm(gt, pred, camera), expected, atol=1e-9)


def test_nyu_focal_lengths_are_not_interchangeable():
    """The hand values fail with fy = fx (a 0.16 mm difference on the v-only pair), and with
    ICVL's camera: the test above would catch either slip."""
    gt, pred, expected = pairs_as_frames("nyu")
    square = Camera(588.03, 588.03, 320.0, 240.0, 640, 480, y_up=True)
    assert metrics.uvd_errors_mm(pred, gt, square)[0, 1] == pytest.approx(99.8367, abs=1e-4)
    assert not np.allclose(metrics.uvd_errors_mm(pred, gt, ICVL), expected, atol=1e-3)


def test_error_parts_by_hand():
    # One joint at depth 500 mm; the prediction is 3 px right, 4 px down, 12 mm too far.
    gt = np.array([[[160.0, 120.0, 500.0]]])
    pred = np.array([[[163.0, 124.0, 512.0]]])
    parts = metrics.error_parts(pred, gt, ICVL)
    assert parts["2D error (px)"] == pytest.approx(5.0)
    # At the true depth: 3 px and 4 px are 3 * 500 / 241.42 and 4 * 500 / 241.42 mm.
    assert parts["2D error (mm)"] == pytest.approx(5.0 * 500 / 241.42)
    assert parts["depth error (mm)"] == pytest.approx(12.0)
    # In camera space the prediction sits 5 px * 512 / 241.42 mm off the axis, 12 mm deeper.
    assert parts["3D error (mm)"] == pytest.approx(np.hypot(5.0 * 512 / 241.42, 12.0))
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        metrics.error_parts(pred[0], gt[0], ICVL)
