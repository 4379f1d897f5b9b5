"""Constant-pose floors: what a model that ignores the image scores.

A network that predicts one fixed hand shape, only moved to where the hand is, learns nothing
from the depth image; a trained model must beat this by a clear margin. Two floors, both
placed at the true joint centroid of each test frame (the centre an oracle localizer would
give, so they isolate the pose from the localization):

- `oracle_mean_pose`: the mean pose of the *test* labels, as offsets from each frame's centroid
  in camera-space mm. It uses the test labels, so it is an oracle floor: no constant pose does
  better on average over the test set (per coordinate, the mean minimizes the squared error).
- `training_mean_pose`: the mean pose of the *training* labels (e.g. the synthetic training
  source, `synthetic_train_uvd`), the constant a network that ignores its input converges to.

Each floor is a full (N, J, 3) uvd prediction, evaluated with the package's own
`evaluate.evaluate_uvd` and split by `metrics.error_parts` like any model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handpose_lib import metrics
from handpose_lib.camera import Camera, camera_for
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.evaluate import MethodResult, evaluate_uvd

TEST_MEAN_POSE = "floor: test mean pose at the true centroid (oracle)"
TRAIN_MEAN_POSE = "floor: mean training pose at the true centroid"


def _check_uvd(uvd: np.ndarray, what: str) -> np.ndarray:
    uvd = np.asarray(uvd, dtype=np.float64)
    if uvd.ndim != 3 or uvd.shape[-1] != 3 or len(uvd) == 0:
        raise ValueError(f"{what}: expected (N, J, 3) uvd with N >= 1, got {uvd.shape}")
    return uvd


def joint_centroids_xyz(uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, J, 3) uvd -> (N, 3) camera-space mm centroid of each frame's joints."""
    return camera.uvd_to_xyz(_check_uvd(uvd, "joint_centroids_xyz")).mean(axis=1)


def mean_pose_offsets_mm(uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, J, 3) uvd -> (J, 3) mean over frames of each joint's offset (mm) from its frame's
    joint centroid: the average hand, without its position."""
    xyz = camera.uvd_to_xyz(_check_uvd(uvd, "mean_pose_offsets_mm"))
    return (xyz - xyz.mean(axis=1, keepdims=True)).mean(axis=0)


def place_pose(offsets_mm: np.ndarray, centers_xyz_mm: np.ndarray, camera: Camera) -> np.ndarray:
    """(J, 3) offsets in mm placed at (N, 3) centres in mm -> (N, J, 3) uvd predictions."""
    offsets_mm = np.asarray(offsets_mm, dtype=np.float64)
    centers_xyz_mm = np.asarray(centers_xyz_mm, dtype=np.float64)
    if offsets_mm.ndim != 2 or offsets_mm.shape[-1] != 3:
        raise ValueError(f"place_pose: offsets must be (J, 3), got {offsets_mm.shape}")
    if centers_xyz_mm.ndim != 2 or centers_xyz_mm.shape[-1] != 3:
        raise ValueError(f"place_pose: centres must be (N, 3), got {centers_xyz_mm.shape}")
    return camera.xyz_to_uvd(centers_xyz_mm[:, None, :] + offsets_mm[None])


def oracle_mean_pose(gt_uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, J, 3) test labels -> (N, J, 3) uvd: the test set's mean pose at each true centroid."""
    return place_pose(
        mean_pose_offsets_mm(gt_uvd, camera), joint_centroids_xyz(gt_uvd, camera), camera
    )


def training_mean_pose(
    gt_uvd: np.ndarray,
    camera: Camera,
    train_uvd: np.ndarray,
    train_camera: Camera | None = None,
) -> np.ndarray:
    """(N, J, 3) uvd: the mean pose of `train_uvd` (M, J, 3, in `train_camera`, default
    `camera`) placed at the true centroid of each of the N test frames."""
    train_camera = train_camera or camera
    offsets = mean_pose_offsets_mm(train_uvd, train_camera)
    if offsets.shape[0] != np.shape(gt_uvd)[1]:
        raise ValueError(
            f"training_mean_pose: training labels have {offsets.shape[0]} joints, test labels "
            f"{np.shape(gt_uvd)[1]}"
        )
    return place_pose(offsets, joint_centroids_xyz(gt_uvd, camera), camera)


def synthetic_train_uvd(num_frames: int = 4096, seed: int = 0) -> np.ndarray:
    """(N, 16, 3) ICVL-camera uvd labels of `SyntheticSource(num_frames, seed)` (the default
    training data), sampled without rendering the depth images (about 2 s for 4096)."""
    source = SyntheticSource(num_frames, seed=seed)
    xyz = np.stack([source.hand(i).joints_xyz_mm for i in range(num_frames)])
    return source.camera.xyz_to_uvd(xyz)


@dataclass(frozen=True)
class Floor:
    """One floor: its predictions (N, J, 3) uvd, their evaluation and `error_parts`."""

    name: str
    pred_uvd: np.ndarray
    result: MethodResult
    parts: dict[str, float]

    @property
    def mean_error_mm(self) -> float:
        return self.result.mean_error_mm


def evaluate_floor(
    name: str, pred_uvd: np.ndarray, gt_uvd: np.ndarray, dataset: str, camera: Camera
) -> Floor:
    result = evaluate_uvd(pred_uvd, gt_uvd, dataset, name=name, camera=camera)
    return Floor(name, pred_uvd, result, metrics.error_parts(pred_uvd, gt_uvd, camera))


def constant_pose_floors(
    gt_uvd: np.ndarray,
    dataset: str = "icvl",
    train_uvd: np.ndarray | None = None,
    camera: Camera | None = None,
    train_camera: Camera | None = None,
) -> list[Floor]:
    """Both floors for the test labels `gt_uvd` (N, J, 3): the test mean pose (oracle), and,
    when `train_uvd` is given, the training mean pose. Pass `synthetic_train_uvd()` for the
    default synthetic training data."""
    camera = camera or camera_for(dataset)
    gt_uvd = _check_uvd(gt_uvd, "constant_pose_floors")
    pred = oracle_mean_pose(gt_uvd, camera)
    floors = [evaluate_floor(TEST_MEAN_POSE, pred, gt_uvd, dataset, camera)]
    if train_uvd is not None:
        pred = training_mean_pose(gt_uvd, camera, train_uvd, train_camera)
        floors.append(evaluate_floor(TRAIN_MEAN_POSE, pred, gt_uvd, dataset, camera))
    return floors
