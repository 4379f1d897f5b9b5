"""Crop geometry: the cube crop as an affine map, warping, depth normalization, re-cropping.

Coordinates. Full-image pixels (u, v) and crop pixels (x, y) both put the centre of pixel
(row i, column j) at (j, i). A crop is an affine map (3x3 matrix) from image pixels to crop
pixels plus the centre depth and the cube side, so augmentation (rotation, scale,
translation) is one more matrix composed onto it and always moves image and joints together.
Normalized crop coordinates put -1 at the left/top edge and +1 at the right/bottom edge of the
crop, so pixel j of S sits at (j + 0.5) / S * 2 - 1 (the convention of `decode.py`); depth is
normalized as (d - center_d) / (cube_mm / 2).

Cube side per dataset (`CUBE_MM`): 250 mm for ICVL and 300 mm for NYU, the defaults of
DeepPrior++ (Oberweger & Lepetit, ICCVW 2017; `ICVLImporter` / `NYUImporter.default_cubes` in
github.com/moberweger/deep-prior-pp), whose 2D crop-and-resize pipeline and CoM refinement
this paper builds on (its reference [6]). V2V-PoseNet voxelizes smaller cubes (200 / 250 mm)
for its 3D grid; those are not used here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np

from handpose_lib.camera import Camera

CUBE_MM: dict[str, float] = {"icvl": 250.0, "nyu": 300.0}

BACKGROUND = 1.0  # normalized value of missing / background pixels: as far as the cube allows


@dataclass(frozen=True)
class CropConfig:
    """Everything that decides what a preprocessed sample looks like.

    input_size:      S, side of the network input crop in pixels (128 in the paper).
    heatmap_size:    side of the target heatmaps (S / 2 = 64 in the paper, the hourglass
                     resolution).
    cube_mm:         side of the 3D cube around the hand centre (see `CUBE_MM`).
    heatmap_sigma:   Gaussian std of the target heatmaps in heatmap pixels; 1 as in the
                     stacked-hourglass paper (Newell et al. 2016, the paper's [11]).
    segment_band_mm: depth band kept behind the closest object (or around a rough depth) when
                     segmenting the hand for the centre of mass.
    com_iterations:  refinements of the centre of mass within the cube (DeepPrior style).
    min_depth_mm, max_depth_mm: depths outside this range never count as hand (sensor noise,
                     ICVL's 32001 "no reading" value, the far background).
    context:         side of the crop a `CropCache` stores, as a multiple of the cube (>= 1).
                     1 stores exactly the network's crop; 1.5 keeps a margin around it, so
                     rotating or zooming out a cached crop by augmentation does not cut the
                     hand at the cube's edge. The network still sees the cube (`context_crop`).
    """

    input_size: int = 128
    heatmap_size: int = 64
    cube_mm: float = CUBE_MM["icvl"]
    heatmap_sigma: float = 1.0
    segment_band_mm: float = 150.0
    com_iterations: int = 3
    min_depth_mm: float = 10.0
    max_depth_mm: float = 2000.0
    context: float = 1.0

    def __post_init__(self) -> None:
        if self.input_size < 2 or self.heatmap_size < 2:
            raise ValueError(
                f"CropConfig: input_size ({self.input_size}) and heatmap_size "
                f"({self.heatmap_size}) must be >= 2 pixels"
            )
        for name in ("cube_mm", "heatmap_sigma", "segment_band_mm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"CropConfig: {name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.min_depth_mm < self.max_depth_mm:
            raise ValueError(
                f"CropConfig: need 0 <= min_depth_mm < max_depth_mm, got "
                f"{self.min_depth_mm}, {self.max_depth_mm}"
            )
        if self.com_iterations < 0:
            raise ValueError(f"CropConfig: com_iterations must be >= 0, got {self.com_iterations}")
        if not self.context >= 1.0:
            raise ValueError(f"CropConfig: context must be >= 1 (the cube), got {self.context}")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides: Any) -> CropConfig:
        """The paper-size config with the cube side of `dataset` ("icvl" or "nyu")."""
        if dataset not in CUBE_MM:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of {sorted(CUBE_MM)}")
        return cls(**{"cube_mm": CUBE_MM[dataset], **overrides})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def projected_box(
    center_uvd: np.ndarray, camera: Camera, cube_mm: float
) -> tuple[float, float, float, float]:
    """(u0, v0, u1, v1): the cube's front face projected at the centre depth, in pixels."""
    u, v, d = (float(c) for c in center_uvd)
    if d <= 0:
        raise ValueError(f"crop centre needs a positive depth, got {d} mm")
    half_w = cube_mm / 2 * camera.fx / d
    half_h = cube_mm / 2 * camera.fy / d
    return u - half_w, v - half_h, u + half_w, v + half_h


@dataclass(frozen=True, eq=False)
class Crop:
    """A cube crop: image pixels -> crop pixels (`matrix`, 3x3 affine), plus depth framing.

    center_uvd: (3,) image position of the crop centre and the depth the cube is centred on.
    cube_mm:    cube side; depth is normalized by cube_mm / 2.
    size:       crop side S in pixels.
    """

    matrix: np.ndarray
    center_uvd: np.ndarray
    cube_mm: float
    size: int

    def image_to_crop(self, uvd: np.ndarray) -> np.ndarray:
        """(..., 3) image uvd -> normalized crop uvd (u, v in [-1, 1] inside the crop)."""
        return image_to_crop(uvd, self.matrix, self.center_uvd[2], self.cube_mm, self.size)

    def crop_to_image(self, uvd_crop: np.ndarray) -> np.ndarray:
        """(..., 3) normalized crop uvd -> image uvd; exact inverse of `image_to_crop`."""
        return crop_to_image(uvd_crop, self.matrix, self.center_uvd[2], self.cube_mm, self.size)


def make_crop(center_uvd: np.ndarray, camera: Camera, cube_mm: float, size: int) -> Crop:
    """Crop whose S x S pixels cover the cube's projected box around `center_uvd`."""
    center = np.asarray(center_uvd, dtype=np.float64)
    if center.shape != (3,) or not np.all(np.isfinite(center)):
        raise ValueError(f"crop centre must be a finite (3,) uvd, got {center!r}")
    u0, v0, u1, v1 = projected_box(center, camera, cube_mm)
    sx, sy = size / (u1 - u0), size / (v1 - v0)
    mid = (size - 1) / 2
    matrix = np.array(
        [[sx, 0.0, mid - sx * center[0]], [0.0, sy, mid - sy * center[1]], [0.0, 0.0, 1.0]]
    )
    return Crop(matrix=matrix, center_uvd=center, cube_mm=float(cube_mm), size=int(size))


def context_pad(size: int, context: float) -> int:
    """Pixels added on each side of an S-pixel crop to keep `context` x the cube: an integer,
    so the context crop's pixel grid is the cube crop's, shifted (re-cropping is exact)."""
    return round(size * (context - 1.0) / 2)


def context_crop(crop: Crop, context: float) -> Crop:
    """The crop `crop` grown by `context_pad` pixels on every side at the same pixel scale:
    (S + 2 pad) pixels covering cube_mm * (S + 2 pad) / S. Depth is normalized by that larger
    cube too, so hand pixels pushed to the edge by a zoom-out stay in range."""
    pad = context_pad(crop.size, context)
    if pad == 0:
        return crop
    shift = np.array([[1.0, 0.0, pad], [0.0, 1.0, pad], [0.0, 0.0, 1.0]])
    size = crop.size + 2 * pad
    return Crop(
        matrix=shift @ crop.matrix,
        center_uvd=crop.center_uvd,
        cube_mm=crop.cube_mm * size / crop.size,
        size=size,
    )


def _apply_affine(matrix: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(..., 3, 3) affine matrices applied to (..., J, 2) points."""
    return np.einsum("...ij,...nj->...ni", matrix[..., :2, :2], uv) + matrix[..., None, :2, 2]


def image_to_crop(
    uvd: np.ndarray,
    matrix: np.ndarray,
    center_d: np.ndarray | float,
    cube_mm: np.ndarray | float,
    size: int,
) -> np.ndarray:
    """(..., J, 3) image uvd -> normalized crop uvd, batched over leading axes.

    matrix (..., 3, 3), center_d (...,), cube_mm (...,) broadcast with the leading axes.
    """
    uvd = np.asarray(uvd, dtype=np.float64)
    xy = _apply_affine(np.asarray(matrix, dtype=np.float64), uvd[..., :2])
    uv_norm = (xy + 0.5) / size * 2.0 - 1.0
    half = np.asarray(cube_mm, dtype=np.float64)[..., None] / 2
    d_norm = (uvd[..., 2] - np.asarray(center_d, dtype=np.float64)[..., None]) / half
    return np.concatenate([uv_norm, d_norm[..., None]], axis=-1)


def crop_to_image(
    uvd_crop: np.ndarray,
    matrix: np.ndarray,
    center_d: np.ndarray | float,
    cube_mm: np.ndarray | float,
    size: int,
) -> np.ndarray:
    """(..., J, 3) normalized crop uvd -> image uvd (pixels, mm): decodes network outputs."""
    uvd_crop = np.asarray(uvd_crop, dtype=np.float64)
    xy = (uvd_crop[..., :2] + 1.0) / 2.0 * size - 0.5
    uv = _apply_affine(np.linalg.inv(np.asarray(matrix, dtype=np.float64)), xy)
    half = np.asarray(cube_mm, dtype=np.float64)[..., None] / 2
    d = uvd_crop[..., 2] * half + np.asarray(center_d, dtype=np.float64)[..., None]
    return np.concatenate([uv, d[..., None]], axis=-1)


@cache
def _crop_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size]
    return xs.ravel().astype(np.float64), ys.ravel().astype(np.float64)


def warp_nearest(
    image: np.ndarray, crop_to_source: np.ndarray, size: int, fill: float
) -> np.ndarray:
    """(size, size) image sampled from `image` at crop_to_source @ (x, y, 1), nearest pixel.

    Nearest-neighbour on purpose: interpolating depth across a silhouette invents points
    between hand and background.
    """
    xs, ys = _crop_grid(size)
    a = crop_to_source
    u = np.rint(a[0, 0] * xs + a[0, 1] * ys + a[0, 2])
    v = np.rint(a[1, 0] * xs + a[1, 1] * ys + a[1, 2])
    height, width = image.shape
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    out = np.full(size * size, fill, dtype=np.float32)
    out[inside] = image[v[inside].astype(np.intp), u[inside].astype(np.intp)]
    return out.reshape(size, size)


def normalize_depth(depth_mm: np.ndarray, center_d: float, cube_mm: float) -> np.ndarray:
    """Depth in mm -> (d - center_d) / (cube_mm / 2) clipped to [-1, 1]; 0 (missing) -> 1."""
    normalized = np.clip((depth_mm - center_d) / (cube_mm / 2), -1.0, 1.0).astype(np.float32)
    normalized[depth_mm <= 0] = BACKGROUND
    return normalized


def crop_depth(depth_mm: np.ndarray, crop: Crop) -> np.ndarray:
    """(S, S) float32 network input: the cube crop of a depth image, normalized to [-1, 1]."""
    raw = warp_nearest(depth_mm, np.linalg.inv(crop.matrix), crop.size, fill=0.0)
    return normalize_depth(raw, crop.center_uvd[2], crop.cube_mm)


def recrop_normalized(image: np.ndarray, source: Crop, target: Crop) -> np.ndarray:
    """(S, S) crop `target` taken from an already normalized crop `source` (e.g. cached).

    Background stays background; everything outside the source crop is background too, so
    augmenting a cached crop cannot bring back hand pixels that were cut off.
    """
    crop_to_source = source.matrix @ np.linalg.inv(target.matrix)
    warped = warp_nearest(image, crop_to_source, target.size, fill=BACKGROUND)
    depth_mm = warped * (source.cube_mm / 2) + source.center_uvd[2]
    out = normalize_depth(depth_mm, target.center_uvd[2], target.cube_mm)
    out[warped >= BACKGROUND] = BACKGROUND
    return out
