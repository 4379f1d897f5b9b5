"""Depth-camera intrinsics per dataset and the pinhole conversions uvd <-> xyz.

`uvd` holds pixel column u, pixel row v (full depth image) and depth d in millimetres;
`xyz_mm` holds camera-space millimetres. Both have shape (..., 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from handpose_lib import conventions


@dataclass(frozen=True)
class Camera(conventions.Intrinsics):
    """Pinhole intrinsics of a depth sensor (the fields of `conventions.Intrinsics`) and the
    uvd <-> xyz conversions.

    `y_up` flips the y axis (y grows upward), which is how NYU's own `joint_xyz` is
    expressed; distances, and so every metric, are unaffected by the flip.
    """

    @property
    def _y_sign(self) -> float:
        return -1.0 if self.y_up else 1.0

    def uvd_to_xyz(self, uvd: np.ndarray) -> np.ndarray:
        """(..., 3) pixels + mm depth -> (..., 3) camera-space mm."""
        uvd = np.asarray(uvd, dtype=np.float64)
        d = uvd[..., 2]
        x = (uvd[..., 0] - self.cx) * d / self.fx
        y = self._y_sign * (uvd[..., 1] - self.cy) * d / self.fy
        return np.stack([x, y, d], axis=-1)

    def xyz_to_uvd(self, xyz_mm: np.ndarray) -> np.ndarray:
        """(..., 3) camera-space mm -> (..., 3) pixels + mm depth. Depth must be > 0."""
        xyz_mm = np.asarray(xyz_mm, dtype=np.float64)
        z = xyz_mm[..., 2]
        if np.any(z <= 0):
            raise ValueError("xyz_to_uvd: every point needs a positive depth z (mm)")
        u = xyz_mm[..., 0] * self.fx / z + self.cx
        v = self._y_sign * xyz_mm[..., 1] * self.fy / z + self.cy
        return np.stack([u, v, z], axis=-1)


def _camera(dataset: str, alternative: bool = False) -> Camera:
    return Camera(**asdict(conventions.intrinsics(dataset, alternative)))


# The values and their sources live in `conventions.TABLE`. ICVL: fx = fy = 241.42 (DeepPrior /
# DeepPrior++, adopted by REN, Pose-REN, V2V-PoseNet) reproduces the paper's Table 1 to three
# decimals; the 240.99 / 240.96 quoted with the evaluation scripts are kept for comparison in
# notebook 05 only. NYU: Kinect v1, 640x480, camera 1, y up as in NYU's joint_xyz.
ICVL = _camera("icvl")
ICVL_DISTRIBUTION = _camera("icvl", alternative=True)
NYU = _camera("nyu")

CAMERAS: dict[str, Camera] = {"icvl": ICVL, "nyu": NYU}


def camera_for(dataset: str) -> Camera:
    """The camera of `dataset` ("icvl" or "nyu"); a clear error for anything else."""
    try:
        return CAMERAS[dataset.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(CAMERAS)}"
        ) from None
