"""Training targets of one sample: the input crop, Gaussian heatmaps, normalized depths."""

from __future__ import annotations

import numpy as np

from handpose_lib.camera import Camera
from handpose_lib.preprocess.augment import AugmentParams, augment_crop
from handpose_lib.preprocess.crop import Crop, CropConfig, crop_depth, make_crop


def gaussian_heatmaps(uv_norm: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(J, size, size) float32 Gaussians of peak 1 at normalized crop positions (J, 2)."""
    uv_norm = np.asarray(uv_norm, dtype=np.float64)
    centres = (uv_norm + 1.0) / 2.0 * size - 0.5  # heatmap pixels
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-((grid[None, :] - centres[:, 0:1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((grid[None, :] - centres[:, 1:2]) ** 2) / (2 * sigma**2))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def sample_targets(
    image: np.ndarray, uvd: np.ndarray, crop: Crop, config: CropConfig
) -> dict[str, np.ndarray]:
    """Network input and targets of one sample (see the Interfaces of the package).

    image (S, S) normalized crop; uvd (J, 3) image joints. Returns numpy arrays:
    image (1, S, S), heatmaps (J, Hh, Hh), depth (J,), uvd_crop (J, 3) as float32;
    uvd (J, 3), center_uvd (3,), crop_transform (3, 3), cube_mm () as float64.
    """
    uvd = np.asarray(uvd, dtype=np.float64)
    uvd_crop = crop.image_to_crop(uvd)
    return {
        "image": image[None].astype(np.float32, copy=False),
        "heatmaps": gaussian_heatmaps(uvd_crop[:, :2], config.heatmap_size, config.heatmap_sigma),
        "depth": uvd_crop[:, 2].astype(np.float32),
        "uvd_crop": uvd_crop.astype(np.float32),
        "uvd": uvd,
        "center_uvd": crop.center_uvd.copy(),
        "crop_transform": crop.matrix.copy(),
        "cube_mm": np.asarray(crop.cube_mm, dtype=np.float64),
    }


def prepare_sample(
    depth_mm: np.ndarray,
    uvd: np.ndarray,
    camera: Camera,
    center_uvd: np.ndarray,
    config: CropConfig,
    augment: AugmentParams | None = None,
) -> dict[str, np.ndarray]:
    """Full pipeline for one frame: cube crop at `center_uvd`, optional augmentation, targets."""
    crop = make_crop(center_uvd, camera, config.cube_mm, config.input_size)
    if augment is not None:
        crop = augment_crop(crop, augment)
    return sample_targets(crop_depth(depth_mm, crop), uvd, crop, config)
