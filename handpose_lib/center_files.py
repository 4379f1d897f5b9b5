"""Community hand-centre files: read, validate, write, convert and evaluate.

Most published ICVL / NYU pipelines crop around precomputed hand centres. The files
distributed with V2V-PoseNet (github.com/mks0601/V2V-PoseNet_RELEASE, README "Results":
`center_train_refined.txt`, `center_test_refined.txt` per dataset) hold one line per frame of
the split, in label-file order: `x y z`, the centre in camera-space millimetres, or the word
`invalid` for a frame whose depth map is missing or holds no hand (README: "All test images are
considered as valid"). Their loaders (`src/data/ICVL/data.lua`, `src/data/NYU/data.lua`) read
line i as the centre of frame i, split on spaces, and skip `invalid` frames.

Where the centres come from and what they locate. The V2V README says they are "obtained by
training the hand center estimation network from DeepPrior++": DeepPrior++'s refinement
(`src/main_nyu_com_refine.py`, `src/data/importers.py`) regresses one joint, `crop_joint_idx`:
the Palm (ICVL joint 0; NYU joint 13 of the 14 evaluated, label 32). So a community centre is
an estimate of the palm joint, not of the joint centroid that this package's localization
network predicts (`preprocess.joints_center`); `evaluate_centers` reports the error against
either reference (`reference="centroid"` or `"palm"`).

Camera space. x and y follow the dataset's own 3D convention, as V2V's pixel2world does: ICVL
y grows downward (`(y - imgHeight/2) * z / fy`), NYU y grows upward (`(imgHeight/2 - y) * z /
fy`, the convention of NYU's `joint_xyz`). `camera.ICVL` / `camera.NYU` use the same
conventions, so `centers_to_uvd(xyz, camera_for(dataset))` gives crop centres in image uvd.

Invalid frames. A reader returns every frame with a mask; `resolve_centers` replaces each
`invalid` centre by a fallback (the package's CoM centre) and says how many it replaced, so a
split keeps its frame count and order (V2V-PoseNet instead drops invalid training frames).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handpose_lib import conventions
from handpose_lib.camera import Camera
from handpose_lib.uvd_format import FormatError

INVALID = "invalid"
TRAIN_FILE = "center_train_refined.txt"
TEST_FILE = "center_test_refined.txt"
WITHIN_MM: tuple[float, ...] = (10.0, 20.0, 30.0)


@dataclass(frozen=True)
class CenterFile:
    """The centres of one file. xyz_mm: (N, 3) camera-space mm, NaN where invalid;
    valid: (N,) bool."""

    path: str
    xyz_mm: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def invalid_count(self) -> int:
        return int((~self.valid).sum())

    def summary(self) -> str:
        return f"{self.path}: {len(self)} centres, {self.invalid_count} marked {INVALID!r}"


def read_center_file(path: str | os.PathLike, expected_frames: int | None = None) -> CenterFile:
    """Read a centre file; every error names the file and line.

    Each non-empty line is `x y z` (three finite numbers, z > 0 mm) or `invalid`.
    `expected_frames` (the frame count of the split the file belongs to) is checked.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: centre file not found")
    rows: list[tuple[float, float, float]] = []
    valid: list[bool] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 1 and fields[0].lower() == INVALID:
                rows.append((math.nan, math.nan, math.nan))
                valid.append(False)
                continue
            if len(fields) != 3:
                raise FormatError(
                    f"{path}:{number}: {len(fields)} fields, expected 'x y z' (mm) or {INVALID!r}"
                )
            try:
                xyz = tuple(float(v) for v in fields)
            except ValueError:
                raise FormatError(
                    f"{path}:{number}: {line.strip()!r} is not numeric; expected 'x y z' (mm) "
                    f"or {INVALID!r}"
                ) from None
            if not all(math.isfinite(v) for v in xyz):
                raise FormatError(f"{path}:{number}: non-finite centre {line.strip()!r}")
            if xyz[2] <= 0:
                raise FormatError(f"{path}:{number}: centre depth z = {xyz[2]} mm, expected > 0")
            rows.append(xyz)  # type: ignore[arg-type]
            valid.append(True)
    if not rows:
        raise FormatError(f"{path}: no centres (empty file)")
    if expected_frames is not None and len(rows) != expected_frames:
        raise FormatError(
            f"{path}: {len(rows)} centres, expected {expected_frames} (one per frame of the split)"
        )
    return CenterFile(str(path), np.array(rows, dtype=np.float64), np.array(valid, dtype=bool))


def read_split_centers(path: str | os.PathLike, dataset: str, split: str) -> CenterFile:
    """Read the centre file of a published split ("train", "test" or a test subset), its
    frame count checked against `conventions.split_frames`."""
    return read_center_file(path, conventions.split_frames(dataset, split))


def write_center_file(
    path: str | os.PathLike, xyz_mm: np.ndarray, valid: np.ndarray | None = None, decimals: int = 3
) -> Path:
    """Write (N, 3) centres in camera-space mm as a centre file; rows that are not `valid`
    (default: rows with a non-finite value) are written as `invalid`."""
    xyz_mm = np.asarray(xyz_mm, dtype=np.float64)
    if xyz_mm.ndim != 2 or xyz_mm.shape[1] != 3 or len(xyz_mm) == 0:
        raise ValueError(f"centres must have shape (N, 3) with N >= 1, got {xyz_mm.shape}")
    finite = np.all(np.isfinite(xyz_mm), axis=1)
    valid = finite if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != (len(xyz_mm),):
        raise ValueError(f"valid must have shape ({len(xyz_mm)},), got {valid.shape}")
    if np.any(valid & ~finite):
        raise ValueError(f"centres {np.flatnonzero(valid & ~finite)[:5].tolist()} are not finite")
    if np.any(xyz_mm[valid, 2] <= 0):
        raise ValueError("every valid centre needs a positive depth z (mm)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row, ok in zip(xyz_mm, valid, strict=True):
            f.write(" ".join(f"{v:.{decimals}f}" for v in row) + "\n" if ok else INVALID + "\n")
    return path


def write_uvd_centers(
    path: str | os.PathLike, centers_uvd: np.ndarray, camera: Camera, decimals: int = 3
) -> Path:
    """Write (N, 3) image-uvd crop centres (e.g. the localization network's) as a centre file
    in the camera's space, so other pipelines, and `evaluate_center_file`, read them like the
    published ones."""
    return write_center_file(path, uvd_to_centers(centers_uvd, camera), decimals=decimals)


def centers_to_uvd(xyz_mm: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, 3) camera-space centres -> (N, 3) image uvd; NaN rows (invalid) stay NaN."""
    xyz_mm = np.asarray(xyz_mm, dtype=np.float64)
    out = np.full(xyz_mm.shape, np.nan)
    ok = np.all(np.isfinite(xyz_mm), axis=-1)
    out[ok] = camera.xyz_to_uvd(xyz_mm[ok])
    return out


def uvd_to_centers(uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, 3) image uvd crop centres -> (N, 3) camera-space mm, the unit of centre files."""
    return camera.uvd_to_xyz(np.asarray(uvd, dtype=np.float64))


@dataclass(frozen=True)
class ResolvedCenters:
    """Crop centres for every frame. uvd: (N, 3); from_file: (N,) True where the file's
    centre is used, False where the fallback replaced an invalid one."""

    uvd: np.ndarray
    from_file: np.ndarray
    message: str


def resolve_centers(
    centers: CenterFile, fallback_uvd: np.ndarray, camera: Camera, fallback_name: str = "CoM"
) -> ResolvedCenters:
    """Crop centres in uvd from a centre file, `invalid` frames replaced by `fallback_uvd`
    (N, 3) (the CoM centre); the message says how many were replaced."""
    fallback_uvd = np.asarray(fallback_uvd, dtype=np.float64)
    if fallback_uvd.shape != (len(centers), 3):
        raise ValueError(
            f"{centers.path}: {len(centers)} centres, but the fallback has shape "
            f"{fallback_uvd.shape}; expected ({len(centers)}, 3)"
        )
    uvd = centers_to_uvd(centers.xyz_mm, camera)
    uvd[~centers.valid] = fallback_uvd[~centers.valid]
    message = (
        f"{centers.path}: {len(centers)} centres; {centers.invalid_count} marked {INVALID!r} "
        f"use the {fallback_name} instead"
    )
    return ResolvedCenters(uvd=uvd, from_file=centers.valid.copy(), message=message)


def reference_centers_xyz(joints_uvd: np.ndarray, camera: Camera, reference: str, dataset: str):
    """(N, 3) reference centres in mm from labels (N, J, 3) uvd: "centroid" (mean of the joints
    in 3D, what this package's localization net locates) or "palm" (DeepPrior++'s target)."""
    xyz = camera.uvd_to_xyz(np.asarray(joints_uvd, dtype=np.float64))
    if reference == "centroid":
        return xyz.mean(axis=1)
    if reference == "palm":
        return xyz[:, conventions.value(dataset, "palm_joint")]
    raise ValueError(f"reference must be 'centroid' or 'palm', got {reference!r}")


@dataclass(frozen=True)
class CenterErrors:
    """3D distances (mm) of valid centres from the reference; `within` maps a threshold (mm) to
    the share of valid frames closer than it."""

    errors_mm: np.ndarray  # (V,) over valid frames
    frames: int
    invalid: int
    reference: str

    @property
    def mean_mm(self) -> float:
        return float(self.errors_mm.mean()) if self.errors_mm.size else math.nan

    @property
    def median_mm(self) -> float:
        return float(np.median(self.errors_mm)) if self.errors_mm.size else math.nan

    def within(self, threshold_mm: float) -> float:
        return float((self.errors_mm <= threshold_mm).mean()) if self.errors_mm.size else math.nan

    def to_dict(self, thresholds_mm: Sequence[float] = WITHIN_MM) -> dict[str, float | int | str]:
        """One table row: counts, mean and median error, share within each threshold."""
        out: dict[str, float | int | str] = {
            "frames": self.frames,
            "invalid": self.invalid,
            "reference": self.reference,
            "mean (mm)": self.mean_mm,
            "median (mm)": self.median_mm,
        }
        out.update({f"within {t:g} mm": self.within(t) for t in thresholds_mm})
        return out


def evaluate_centers(
    xyz_mm: np.ndarray,
    joints_uvd: np.ndarray,
    dataset: str,
    camera: Camera,
    reference: str = "centroid",
    valid: np.ndarray | None = None,
) -> CenterErrors:
    """Errors of (N, 3) centres in mm against the labels (N, J, 3) uvd; invalid (or NaN)
    centres are counted and left out."""
    xyz_mm = np.asarray(xyz_mm, dtype=np.float64)
    joints_uvd = np.asarray(joints_uvd, dtype=np.float64)
    if xyz_mm.ndim != 2 or xyz_mm.shape[1] != 3 or len(xyz_mm) != len(joints_uvd):
        raise ValueError(
            f"centres {xyz_mm.shape} and labels {joints_uvd.shape}: expected (N, 3) and (N, J, 3)"
        )
    mask = np.all(np.isfinite(xyz_mm), axis=1)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    ref = reference_centers_xyz(joints_uvd, camera, reference, dataset)
    errors = np.linalg.norm(xyz_mm[mask] - ref[mask], axis=1)
    return CenterErrors(errors, len(xyz_mm), int((~mask).sum()), reference)


def evaluate_center_file(
    centers: CenterFile, joints_uvd: np.ndarray, dataset: str, camera: Camera, reference="centroid"
) -> CenterErrors:
    """`evaluate_centers` for a file read by `read_center_file` (frame counts must agree)."""
    if len(centers) != len(joints_uvd):
        raise FormatError(
            f"{centers.path}: {len(centers)} centres for {len(joints_uvd)} labelled frames"
        )
    return evaluate_centers(
        centers.xyz_mm, joints_uvd, dataset, camera, reference, valid=centers.valid
    )
