"""Evaluation metrics of the field, all in millimetres of camera space.

`errors_mm` has shape (N, J): the 3D Euclidean distance of every joint of every frame.
The success-rate curves count a value as a success when it is at most the threshold
(`<=`), as the awesome-hand-pose-estimation evaluation code does.
"""

from __future__ import annotations

import numpy as np

from handpose_lib.camera import Camera

DEFAULT_THRESHOLDS_MM = np.arange(0, 81, dtype=np.float64)  # 0, 1, ..., 80 mm


def joint_errors_mm(pred_xyz_mm: np.ndarray, gt_xyz_mm: np.ndarray) -> np.ndarray:
    """(N, J, 3), (N, J, 3) -> (N, J) Euclidean distances."""
    pred_xyz_mm = np.asarray(pred_xyz_mm, dtype=np.float64)
    gt_xyz_mm = np.asarray(gt_xyz_mm, dtype=np.float64)
    if pred_xyz_mm.shape != gt_xyz_mm.shape or pred_xyz_mm.shape[-1] != 3:
        raise ValueError(
            f"prediction {pred_xyz_mm.shape} and ground truth {gt_xyz_mm.shape} must both "
            "have shape (N, J, 3)"
        )
    return np.linalg.norm(pred_xyz_mm - gt_xyz_mm, axis=-1)


def uvd_errors_mm(pred_uvd: np.ndarray, gt_uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """Errors (N, J) of uvd predictions, measured in the camera space of `camera`."""
    return joint_errors_mm(camera.uvd_to_xyz(pred_uvd), camera.uvd_to_xyz(gt_uvd))


def mean_error_mm(errors_mm: np.ndarray) -> float:
    """Mean over all frames and joints (the "average 3D joint error" of Table 1)."""
    return float(np.mean(errors_mm))


def per_joint_mean_mm(errors_mm: np.ndarray) -> np.ndarray:
    """(N, J) -> (J,) mean error of each joint over frames."""
    return np.mean(errors_mm, axis=0)


def _fraction_within(values: np.ndarray, thresholds_mm: np.ndarray) -> np.ndarray:
    flat = np.sort(np.ravel(values))
    # searchsorted(side="right") counts values <= threshold in O(T log N).
    return np.searchsorted(flat, thresholds_mm, side="right") / flat.size


def success_rate_max(
    errors_mm: np.ndarray, thresholds_mm: np.ndarray = DEFAULT_THRESHOLDS_MM
) -> np.ndarray:
    """(T,) fraction of frames whose worst joint is within each threshold (Fig. 3 lower)."""
    return _fraction_within(np.max(errors_mm, axis=1), np.asarray(thresholds_mm))


def success_rate_mean(
    errors_mm: np.ndarray, thresholds_mm: np.ndarray = DEFAULT_THRESHOLDS_MM
) -> np.ndarray:
    """(T,) fraction of frames whose mean joint error is within each threshold."""
    return _fraction_within(np.mean(errors_mm, axis=1), np.asarray(thresholds_mm))


def success_rate_joints(
    errors_mm: np.ndarray, thresholds_mm: np.ndarray = DEFAULT_THRESHOLDS_MM
) -> np.ndarray:
    """(T,) fraction of all joints (over all frames) within each threshold."""
    return _fraction_within(errors_mm, np.asarray(thresholds_mm))


SUCCESS_CURVES = {
    "max": success_rate_max,
    "mean": success_rate_mean,
    "joints": success_rate_joints,
}


def error_parts(pred_uvd: np.ndarray, gt_uvd: np.ndarray, camera: Camera) -> dict[str, float]:
    """Which half of the task a prediction gets wrong: means over frames and joints of
    (N, J, 3) uvd predictions against ground truth.

    "2D error (px)":    image-plane distance |(du, dv)| in pixels.
    "2D error (mm)":    the same distance in mm at the true depth d of each joint, i.e. the
                        camera-space xy error of the prediction's u, v with its depth replaced
                        by the true one: sqrt((du d / fx)^2 + (dv d / fy)^2). Comparable with
                        the depth part, and independent of how far the hand is.
    "depth error (mm)": |dd|.
    "3D error (mm)":    the Table 1 metric (`uvd_errors_mm`); at most the 2D (mm) and depth
                        parts' root sum of squares per joint, up to the perspective effect
                        of a wrong depth on x, y.
    """
    pred_uvd = np.asarray(pred_uvd, dtype=np.float64)
    gt_uvd = np.asarray(gt_uvd, dtype=np.float64)
    if pred_uvd.shape != gt_uvd.shape or pred_uvd.ndim != 3 or pred_uvd.shape[-1] != 3:
        raise ValueError(
            f"error_parts: prediction {pred_uvd.shape} and ground truth {gt_uvd.shape} must "
            "both have shape (N, J, 3)"
        )
    delta = pred_uvd - gt_uvd
    depth = gt_uvd[..., 2]
    xy_mm = np.hypot(delta[..., 0] * depth / camera.fx, delta[..., 1] * depth / camera.fy)
    return {
        "2D error (px)": float(np.hypot(delta[..., 0], delta[..., 1]).mean()),
        "2D error (mm)": float(xy_mm.mean()),
        "depth error (mm)": float(np.abs(delta[..., 2]).mean()),
        "3D error (mm)": mean_error_mm(uvd_errors_mm(pred_uvd, gt_uvd, camera)),
    }
