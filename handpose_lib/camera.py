"""Depth-camera intrinsics per dataset and the pinhole conversions uvd <-> xyz.

`uvd` holds pixel column u, pixel row v (full depth image) and depth d in millimetres;
`xyz_mm` holds camera-space millimetres. Both have shape (..., 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics of a depth sensor.

    `y_up` flips the y axis (y grows upward), which is how NYU's own `joint_xyz` is
    expressed; distances, and so every metric, are unaffected by the flip.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    y_up: bool = False

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


# ICVL (Intel Creative, 320x240). The ICVL distribution and some evaluation scripts quote
# fx=240.99, fy=240.96; the paper's Table 1 values are reproduced to three decimals only
# with fx = fy = 241.42, the value used by DeepPrior / DeepPrior++ (Oberweger et al.) and
# adopted by most later ICVL code (REN, Pose-REN, V2V-PoseNet). See notebook 05.
ICVL = Camera(fx=241.42, fy=241.42, cx=160.0, cy=120.0, width=320, height=240)

# The intrinsics quoted with the awesome-hand-pose-estimation evaluation scripts; kept for
# comparison in notebook 05, not used for the headline numbers.
ICVL_DISTRIBUTION = Camera(fx=240.99, fy=240.96, cx=160.0, cy=120.0, width=320, height=240)

# NYU (Kinect v1, 640x480), camera 1. y points up in NYU's joint_xyz convention.
NYU = Camera(fx=588.03, fy=587.07, cx=320.0, cy=240.0, width=640, height=480, y_up=True)

CAMERAS: dict[str, Camera] = {"icvl": ICVL, "nyu": NYU}


def camera_for(dataset: str) -> Camera:
    """The camera of `dataset` ("icvl" or "nyu"); a clear error for anything else."""
    try:
        return CAMERAS[dataset.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(CAMERAS)}"
        ) from None
