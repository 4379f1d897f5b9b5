"""The unit every data source produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from handpose_lib.camera import Camera


@dataclass
class DepthFrame:
    """One depth frame with its joint labels.

    depth_mm: (H, W) float32 depth in millimetres, 0 where the sensor has no reading.
    uvd:      (J, 3) float64 joints, pixel column u, pixel row v, depth d in mm.
    camera:   intrinsics of the sensor that produced the frame.
    name:     image path relative to the dataset root (e.g. "test_seq_1/image_0000.png").
    """

    depth_mm: np.ndarray
    uvd: np.ndarray
    camera: Camera
    name: str = ""

    @property
    def xyz_mm(self) -> np.ndarray:
        """(J, 3) joints in camera-space millimetres."""
        return self.camera.uvd_to_xyz(self.uvd)


class FrameSource(Protocol):
    """What every data source offers: indexable, sized, deterministic frames.

    `dataset` names the joint layout and camera ("icvl" or "nyu"); the synthetic sources
    use the ICVL layout and camera.
    """

    dataset: str

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> DepthFrame: ...
