"""The paper's input pipeline: hand centre, 3D cube crop, targets, augmentation, crop cache.

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

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

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
    """

    input_size: int = 128
    heatmap_size: int = 64
    cube_mm: float = CUBE_MM["icvl"]
    heatmap_sigma: float = 1.0
    segment_band_mm: float = 150.0
    com_iterations: int = 3
    min_depth_mm: float = 10.0
    max_depth_mm: float = 2000.0

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

    @classmethod
    def for_dataset(cls, dataset: str, **overrides: float) -> CropConfig:
        """The paper-size config with the cube side of `dataset` ("icvl" or "nyu")."""
        if dataset not in CUBE_MM:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of {sorted(CUBE_MM)}")
        return cls(**{"cube_mm": CUBE_MM[dataset], **overrides})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Segmentation and centre of mass


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


# --------------------------------------------------------------------------------------------
# Crop transform


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


def _apply_affine(matrix: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(..., 3, 3) affine matrices applied to (..., J, 2) points."""
    return np.einsum("...ij,...nj->...ni", matrix[..., :2, :2], uv) + matrix[..., None, :2, 2]


def image_to_crop(
    uvd: np.ndarray, matrix: np.ndarray, center_d: np.ndarray, cube_mm: np.ndarray, size: int
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
    uvd_crop: np.ndarray, matrix: np.ndarray, center_d: np.ndarray, cube_mm: np.ndarray, size: int
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


# --------------------------------------------------------------------------------------------
# Targets


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
        "cube_mm": np.float64(crop.cube_mm),
    }


# --------------------------------------------------------------------------------------------
# Augmentation


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


# --------------------------------------------------------------------------------------------
# Cache of preprocessed crops

CACHE_VERSION = 1
_ARRAYS = ("images", "uvd", "center_uvd", "matrix", "cube_mm")


@dataclass
class CropCache:
    """Memory-mapped crops of every frame of a source, at the centres chosen when built.

    images (N, 1, S, S) float16/float32 normalized crops; uvd (N, J, 3) image joints;
    center_uvd (N, 3); matrix (N, 3, 3) image -> crop pixels; cube_mm (N,).
    Arrays open lazily and are dropped on pickling, so DataLoader workers map the files
    themselves instead of copying them.
    """

    directory: Path
    meta: dict = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, directory: str | Path) -> CropCache:
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path}: no crop cache here (missing meta.json)")
        meta = json.loads(meta_path.read_text())
        if not meta.get("complete"):
            raise ValueError(f"{meta_path}: cache was never completed; rebuild it")
        return cls(directory=directory, meta=meta)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {
                name: np.load(self.directory / f"{name}.npy", mmap_mode="r") for name in _ARRAYS
            }
        return self._arrays

    def __getstate__(self) -> dict:
        return {"directory": self.directory, "meta": self.meta, "_arrays": None}

    def __len__(self) -> int:
        return int(self.meta["key"]["num_frames"])

    def crop(self, index: int) -> Crop:
        a = self.arrays
        return Crop(
            matrix=np.array(a["matrix"][index], dtype=np.float64),
            center_uvd=np.array(a["center_uvd"][index], dtype=np.float64),
            cube_mm=float(a["cube_mm"][index]),
            size=int(self.meta["key"]["config"]["input_size"]),
        )

    def image(self, index: int) -> np.ndarray:
        """(S, S) float32 normalized crop."""
        return np.array(self.arrays["images"][index, 0], dtype=np.float32)

    def uvd(self, index: int) -> np.ndarray:
        return np.array(self.arrays["uvd"][index], dtype=np.float64)


def _source_fingerprint(source) -> dict:
    """What identifies a source's content: its own cache_key if it has one, else a hash of a
    few frames (first, middle, last), so a changed seed or file is noticed."""
    key = getattr(source, "cache_key", None)
    if key is not None:
        return {"cache_key": str(key)}
    digest = hashlib.sha256()
    n = len(source)
    for i in sorted({0, n // 2, n - 1}):
        frame = source[i]
        digest.update(np.ascontiguousarray(frame.depth_mm, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(frame.uvd, dtype=np.float64).tobytes())
    return {"type": type(source).__name__, "frames_sha256": digest.hexdigest()}


def _centers_key(centers: str | np.ndarray) -> str:
    if isinstance(centers, str):
        return centers
    array = np.ascontiguousarray(centers, dtype=np.float64)
    return "array:" + hashlib.sha256(array.tobytes()).hexdigest()


def cache_key(source, config: CropConfig, centers: str | np.ndarray, dtype: str) -> dict:
    """Everything a cached crop depends on; any difference means the cache is stale."""
    return {
        "version": CACHE_VERSION,
        "dataset": source.dataset,
        "num_frames": len(source),
        "config": config.to_dict(),
        "centers": _centers_key(centers),
        "dtype": np.dtype(dtype).name,
        "source": _source_fingerprint(source),
    }


def resolve_centers(source, centers: str | np.ndarray, config: CropConfig):
    """A function (index, frame) -> (3,) uvd centre for centres "com", "joints" or an array."""
    if isinstance(centers, str):
        if centers not in ("com", "joints"):
            raise ValueError(
                f"centers must be 'com', 'joints' or an (N, 3) uvd array, got {centers!r}"
            )

        def center_of(index: int, frame) -> np.ndarray:
            if centers == "joints":
                return joints_center(frame.uvd, frame.camera)
            try:
                return hand_center(frame.depth_mm, frame.camera, config)
            except ValueError as err:
                raise ValueError(f"frame {index} ({frame.name!r}): {err}") from None

        return center_of
    array = np.asarray(centers, dtype=np.float64)
    if array.shape != (len(source), 3):
        raise ValueError(
            f"centers array must have shape ({len(source)}, 3) (one uvd per frame), "
            f"got {array.shape}"
        )
    return lambda index, frame: array[index]


def build_cache(
    source,
    directory: str | Path,
    config: CropConfig,
    centers: str | np.ndarray = "com",
    dtype: str = "float16",
    progress: bool = False,
) -> CropCache:
    """Open the cache in `directory`, building it first if missing, incomplete or stale.

    A cache whose key (source fingerprint, config, centres, dtype, format version) differs
    from the requested one is rebuilt with a warning, never reused.
    """
    directory = Path(directory)
    key = cache_key(source, config, centers, dtype)
    meta_path = directory / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            meta = {}
        if meta.get("complete") and meta.get("key") == key:
            return CropCache(directory=directory, meta=meta)
        reason = "incomplete" if meta.get("key") == key else "stale (built for another key)"
        warnings.warn(f"{directory}: crop cache is {reason}; rebuilding", stacklevel=2)
        # Only our own files: the directory may be shared with other things.
        for name in _ARRAYS:
            (directory / f"{name}.npy").unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"key": key, "complete": False}
    meta_path.write_text(json.dumps(meta, indent=1))

    n, size = len(source), config.input_size
    center_of = resolve_centers(source, centers, config)
    first = source[0]
    joints = first.uvd.shape[0]
    open_memmap = np.lib.format.open_memmap
    arrays = {
        "images": open_memmap(directory / "images.npy", "w+", np.dtype(dtype), (n, 1, size, size)),
        "uvd": open_memmap(directory / "uvd.npy", "w+", np.float64, (n, joints, 3)),
        "center_uvd": open_memmap(directory / "center_uvd.npy", "w+", np.float64, (n, 3)),
        "matrix": open_memmap(directory / "matrix.npy", "w+", np.float64, (n, 3, 3)),
        "cube_mm": open_memmap(directory / "cube_mm.npy", "w+", np.float64, (n,)),
    }
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"caching crops in {directory}")
    for i in indices:
        frame = first if i == 0 else source[i]
        crop = make_crop(center_of(i, frame), frame.camera, config.cube_mm, size)
        arrays["images"][i, 0] = crop_depth(frame.depth_mm, crop)
        arrays["uvd"][i] = frame.uvd
        arrays["center_uvd"][i] = crop.center_uvd
        arrays["matrix"][i] = crop.matrix
        arrays["cube_mm"][i] = crop.cube_mm
    for array in arrays.values():
        array.flush()
    del arrays
    meta["complete"] = True
    meta_path.write_text(json.dumps(meta, indent=1))
    return CropCache(directory=directory, meta=meta)
