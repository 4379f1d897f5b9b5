"""Augmentation: random rotation, scale and translation composed onto a crop's matrix."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from handpose_lib.preprocess.crop import Crop, _apply_affine


@dataclass(frozen=True)
class AugmentParams:
    """One draw of augmentation: rotation (degrees, in-plane about the crop centre), scale of
    the cube (> 1 shows more context, the hand looks smaller), translation of the crop window
    as a fraction of the crop side, and of the centre depth in mm."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    translate: tuple[float, float] = (0.0, 0.0)
    translate_depth_mm: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    """Uniform ranges of the augmentation; defaults follow DeepPrior++'s choice of full in-plane
    rotation, a few percent of scale and a small shift of the centre."""

    rotation_deg: float = 180.0  # uniform in [-rotation_deg, rotation_deg]
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.1  # uniform in [-translate, translate] of the crop side, per axis
    translate_depth_mm: float = 10.0  # uniform in [-t, t]

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(
                f"AugmentConfig: scale range must satisfy 0 < lo <= hi, got {self.scale}"
            )
        if self.rotation_deg < 0 or self.translate < 0 or self.translate_depth_mm < 0:
            raise ValueError(
                "AugmentConfig: rotation_deg, translate, translate_depth_mm must be >= 0"
            )

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """One random draw; the same generator state gives the same parameters."""
        r, s, t = rng.uniform(-1, 1), rng.uniform(*self.scale), rng.uniform(-1, 1, size=2)
        dz = rng.uniform(-1, 1)
        return AugmentParams(
            rotation_deg=float(r * self.rotation_deg),
            scale=float(s),
            translate=(float(t[0] * self.translate), float(t[1] * self.translate)),
            translate_depth_mm=float(dz * self.translate_depth_mm),
        )


def augment_crop(crop: Crop, params: AugmentParams) -> Crop:
    """The crop moved, scaled and rotated by `params`: a new matrix composed onto the old.

    The new window is centred at the old crop centre shifted by `translate` x S pixels, spans
    `scale` times the old window (and cube) and is rotated by `rotation_deg` about its centre.
    """
    size = crop.size
    mid = (size - 1) / 2
    new_mid = np.array([mid + params.translate[0] * size, mid + params.translate[1] * size])
    theta = math.radians(params.rotation_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    to_origin = np.array([[1.0, 0.0, -new_mid[0]], [0.0, 1.0, -new_mid[1]], [0.0, 0.0, 1.0]])
    rotate_scale = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    rotate_scale[:2, :2] /= params.scale
    back = np.array([[1.0, 0.0, mid], [0.0, 1.0, mid], [0.0, 0.0, 1.0]])
    matrix = back @ rotate_scale @ to_origin @ crop.matrix
    center_uv = _apply_affine(np.linalg.inv(crop.matrix), new_mid[None])[0]
    center = np.array([center_uv[0], center_uv[1], crop.center_uvd[2] + params.translate_depth_mm])
    return Crop(matrix=matrix, center_uvd=center, cube_mm=crop.cube_mm * params.scale, size=size)


def required_context(augment: AugmentConfig) -> float:
    """The `CropConfig.context` a crop cache needs so that no augmented crop reaches past the
    stored one: the farthest any augmented window reaches from the cube's centre, per axis, as
    a multiple of the cube's half side. A square rotated by theta and scaled by s spans
    s (|cos theta| + |sin theta|) half sides along an axis (largest at 45 degrees), and the
    shift adds 2 x translate (a fraction of the full side)."""
    theta = math.radians(min(augment.rotation_deg, 45.0))
    return max(augment.scale) * (math.cos(theta) + math.sin(theta)) + 2 * augment.translate
