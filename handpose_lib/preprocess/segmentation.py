"""Hand segmentation and centre: the closest object, its centre of mass, refinement in the cube,
and the oracle centre (centroid of the labelled joints)."""

from __future__ import annotations

import math

import numpy as np

from handpose_lib.camera import Camera
from handpose_lib.preprocess.crop import CropConfig, projected_box


def closest_object_mask(
    depth_mm: np.ndarray, band_mm: float, min_depth_mm: float, max_depth_mm: float
) -> np.ndarray:
    """(H, W) bool: pixels within `band_mm` behind the closest valid pixel.

    The hand is the object nearest to the camera in ICVL and NYU, so the first depth band
    holds the hand (and some forearm).
    """
    valid = (depth_mm > min_depth_mm) & (depth_mm < max_depth_mm)
    if not valid.any():
        return valid
    near = depth_mm[valid].min()
    return valid & (depth_mm <= near + band_mm)


def depth_band_mask(
    depth_mm: np.ndarray, center_d: float, band_mm: float, min_depth_mm: float = 0.0
) -> np.ndarray:
    """(H, W) bool: valid pixels within +-band_mm / 2 of a rough hand depth."""
    return (depth_mm > min_depth_mm) & (np.abs(depth_mm - center_d) <= band_mm / 2)


def center_of_mass(depth_mm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(3,) uvd: mean column, mean row and mean depth (mm) of the masked pixels."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("center_of_mass: the hand mask is empty (no pixel in the depth band)")
    return np.array([cols.mean(), rows.mean(), depth_mm[rows, cols].astype(np.float64).mean()])


def refine_center(
    depth_mm: np.ndarray,
    center_uvd: np.ndarray,
    camera: Camera,
    cube_mm: float,
    iterations: int = 3,
    min_depth_mm: float = 0.0,
) -> np.ndarray:
    """(3,) uvd: centre of mass of the pixels inside the cube, re-centred `iterations` times.

    Each pass keeps pixels whose projection falls in the cube's box and whose depth lies
    within the cube, so the centre drifts off the forearm onto the hand. A pass that finds
    no pixel keeps the previous centre.
    """
    center = np.asarray(center_uvd, dtype=np.float64).copy()
    height, width = depth_mm.shape
    for _ in range(iterations):
        u0, v0, u1, v1 = projected_box(center, camera, cube_mm)
        c0, c1 = max(math.floor(u0), 0), min(math.ceil(u1) + 1, width)
        r0, r1 = max(math.floor(v0), 0), min(math.ceil(v1) + 1, height)
        if c0 >= c1 or r0 >= r1:
            break
        window = depth_mm[r0:r1, c0:c1]
        mask = depth_band_mask(window, center[2], cube_mm, min_depth_mm)
        if not mask.any():
            break
        com = center_of_mass(window, mask)
        center = com + np.array([c0, r0, 0.0])
    return center


def hand_center(
    depth_mm: np.ndarray,
    camera: Camera,
    config: CropConfig,
    rough_depth_mm: float | None = None,
) -> np.ndarray:
    """(3,) uvd hand centre: depth segmentation, centre of mass, refinement in the cube.

    Segments the closest object (or the band around `rough_depth_mm` when given), takes the
    centre of mass of its pixels in uvd and refines it within the cube. `camera.uvd_to_xyz`
    gives the centre in mm.
    """
    if rough_depth_mm is None:
        mask = closest_object_mask(
            depth_mm, config.segment_band_mm, config.min_depth_mm, config.max_depth_mm
        )
    else:
        mask = depth_band_mask(depth_mm, rough_depth_mm, config.segment_band_mm)
        mask &= depth_mm < config.max_depth_mm
    center = center_of_mass(depth_mm, mask)
    return refine_center(
        depth_mm, center, camera, config.cube_mm, config.com_iterations, config.min_depth_mm
    )


def joints_center(uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(3,) uvd of the centroid of the joints in 3D: an oracle centre from the labels."""
    return camera.xyz_to_uvd(camera.uvd_to_xyz(uvd).mean(axis=0))
