"""Community hand-centre files: read, validate, write, convert and evaluate.

Most published ICVL / NYU pipelines crop around precomputed hand centres. The files
distributed with V2V-PoseNet (github.com/mks0601/V2V-PoseNet_RELEASE, README "Results":
`center_train_refined.txt`, `center_test_refined.txt` per dataset) hold one line per frame of
the split, in label-file order: `x y z`, the centre in camera-space millimetres, or the word
`invalid` for a frame whose depth map is missing or holds no hand (README: "All test images are
considered as valid"). Their loaders (`src/data/ICVL/data.lua`, `src/data/NYU/data.lua`) read
line i as the centre of frame i, split on spaces, and skip `invalid` frames.

Where the centres come from and what they locate. The V2V README says they are "obtained by
training the hand center estimation network from DeepPrior++", whose refinement
(`src/main_nyu_com_refine.py`, `src/data/importers.py`) regresses the joint `crop_joint_idx`,
the Palm (ICVL joint 0; NYU joint 13 of the 14 evaluated, label 32). The files themselves do
not bear out "an estimate of the palm joint". Measured on the published test labels
(`evaluate_centers`, package intrinsics, the 3D distance of each frame's centre to the
reference, mean and median over every frame; none is `invalid`):

    file (registered, `registered_centers`)       joint centroid        palm joint
    NYU  center_test_refined.txt (8252, xyz mm)   21.24 mm (med 19.81)  31.14 mm (med 30.36)
    ICVL icvl_center_test.mat    (1596, uvd)      13.33 mm (med 11.23)  44.32 mm (med 46.13)

No single joint is closer than the centroid (the nearest, NYU's palm, is 31.1 mm away). On
average the centres lie 9 to 11 mm farther from the camera than the joint centroid (mean
offset, centre minus centroid: NYU (-2.9, -8.8, +11.0) mm, ICVL (-4.1, +4.8, +8.7) mm). So
they locate a point near the joint centroid, the target of this package's localization network
(`preprocess.joints_center`), to within about 10 to 20 mm, not the palm joint.
`evaluate_centers` reports the error against either reference (`reference="centroid"` or
`"palm"`); compare centre sources against the centroid. (The ICVL numbers change by under
0.1 mm with the kit's 240.99 / 240.96 intrinsics; the NYU training file has no published
labels here to measure against.)

Registered centre files. The package registry (`published`, kind "centers") holds V2V-PoseNet's
refined centres as other projects ship them: NYU train and test (`x y z` mm, from AWR's
repository) and ICVL test (A2J's MATLAB file, variable `centre_pixel`, (1596, 1, 3), `u v d`);
there is none for ICVL training. `registered_centers(dataset, split, source="v2v")` fetches one
(verified by sha256) and returns it as the file holds it (`RegisteredCenters`: (N, 3) values,
`space` "xyz" or "uvd"), with `uvd(camera)`, `xyz_mm(camera)` and `as_center_file(camera)` for
the crop code (`resolve_centers`) and the scoring (`evaluate_center_file`).

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
import scipy.io

from handpose_lib import conventions, published
from handpose_lib.camera import Camera
from handpose_lib.uvd_format import FormatError

INVALID = "invalid"
TRAIN_FILE = "center_train_refined.txt"
TEST_FILE = "center_test_refined.txt"
WITHIN_MM: tuple[float, ...] = (10.0, 20.0, 30.0)
# A2J's ICVL centre file: MATLAB variable holding (N, 1, 3) u v d.
MAT_VARIABLE = "centre_pixel"


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
    the share of valid frames closer than it.

    The mean distance mixes two things a crop treats differently: the bias (how far the
    average centre sits from the reference: a constant shift, which a network trained on
    crops placed the same way learns to undo) and the spread (how much the offset varies from
    frame to frame: what the paper's localization network is there to reduce, since a
    varying shift moves the hand within the cube unpredictably)."""

    errors_mm: np.ndarray  # (V,) over valid frames
    frames: int
    invalid: int
    reference: str
    offsets_mm: np.ndarray | None = None  # (V, 3) centre - reference, camera mm

    @property
    def bias_mm(self) -> float:
        """Length of the mean offset vector (mm)."""
        if self.offsets_mm is None or not len(self.offsets_mm):
            return math.nan
        return float(np.linalg.norm(self.offsets_mm.mean(axis=0)))

    @property
    def spread_mm(self) -> float:
        """RMS distance of the offsets from their mean (mm): the frame-to-frame variation."""
        if self.offsets_mm is None or not len(self.offsets_mm):
            return math.nan
        scatter = self.offsets_mm - self.offsets_mm.mean(axis=0)
        return float(np.sqrt((scatter**2).sum(axis=1).mean()))

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
            "bias (mm)": self.bias_mm,
            "spread (mm)": self.spread_mm,
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
    offsets = xyz_mm[mask] - ref[mask]
    errors = np.linalg.norm(offsets, axis=1)
    return CenterErrors(errors, len(xyz_mm), int((~mask).sum()), reference, offsets)


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


# --- registered centre files ---------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredCenters:
    """A registered centre file as it holds its centres.

    values: (N, 3), `space` "xyz" (camera-space mm, the dataset's y direction) or "uvd" (u, v
    pixels of the full image, d mm); NaN rows where the file says `invalid`. valid: (N,) bool.
    `description` is the registry's method and note (what the file is and who ships it).
    """

    path: str
    dataset: str
    split: str
    source: str
    space: str
    values: np.ndarray
    valid: np.ndarray
    description: str

    def __len__(self) -> int:
        return len(self.values)

    def xyz_mm(self, camera: Camera) -> np.ndarray:
        """(N, 3) camera-space mm (NaN where invalid)."""
        if self.space == "xyz":
            return self.values.copy()
        out = np.full(self.values.shape, np.nan)
        out[self.valid] = camera.uvd_to_xyz(self.values[self.valid])
        return out

    def uvd(self, camera: Camera) -> np.ndarray:
        """(N, 3) image uvd crop centres (NaN where invalid)."""
        if self.space == "uvd":
            return self.values.copy()
        return centers_to_uvd(self.values, camera)

    def as_center_file(self, camera: Camera) -> CenterFile:
        """The centres as `read_center_file` gives them (camera-space mm), for
        `resolve_centers` and `evaluate_center_file`."""
        return CenterFile(self.path, self.xyz_mm(camera), self.valid.copy())


def available_centers() -> list[tuple[str, str, str]]:
    """(dataset, split, source) of every registered centre file, in registry order."""
    return [(e.dataset, e.split, e.center_source) for e in published.center_entries()]


def registered_centers(
    dataset: str,
    split: str,
    source: str = "v2v",
    local_dir: str | os.PathLike | None = None,
) -> RegisteredCenters:
    """The registered centre file of `source` for a split ("train" or "test") of `dataset`,
    fetched and verified like every published file (`published.fetch`) and read with its
    frame count checked. ValueError names the registered alternatives when there is none
    (e.g. ICVL "train": no community file is registered)."""
    matches = [
        e
        for e in published.center_entries(dataset)
        if e.split == split and e.center_source == source
    ]
    if not matches:
        known = ", ".join(f"{d} {s} (source {src!r})" for d, s, src in available_centers())
        raise ValueError(
            f"no registered centre file for {dataset} {split} from source {source!r}; "
            f"registered: {known}"
        )
    (entry,) = matches
    return read_registered_centers(entry, local_dir=local_dir)


def read_registered_centers(
    entry: published.PublishedFile | str, local_dir: str | os.PathLike | None = None
) -> RegisteredCenters:
    """Fetch (verified) and read one registered centre file, by entry or registry name.

    The format follows the file's suffix: `.txt` is the V2V-PoseNet text format (`x y z` mm
    or `invalid` per line, `read_center_file`), `.mat` A2J's MATLAB file (variable
    `centre_pixel`, (N, 1, 3) or (N, 3), `u v d`). Either way the frame count must be the
    split's; errors name the file (and line or variable).
    """
    if isinstance(entry, str):
        entry = published.lookup(entry)
    if entry.kind != "centers":
        raise ValueError(f"{entry.path} is a {entry.kind} file, not a centre file")
    path = published.fetch(entry, local_dir=local_dir)
    frames = conventions.split_frames(entry.dataset, entry.split)
    if path.suffix == ".mat":
        space, uvd = "uvd", read_mat_centers(path, frames)
        values, valid = uvd, np.ones(len(uvd), dtype=bool)
    else:
        space, read = "xyz", read_center_file(path, frames)
        values, valid = read.xyz_mm, read.valid
    description = f"{entry.method}; {entry.note}" if entry.note else entry.method
    return RegisteredCenters(
        path=str(path),
        dataset=entry.dataset,
        split=entry.split,
        source=entry.center_source,
        space=space,
        values=values,
        valid=valid,
        description=description,
    )


def read_mat_centers(path: str | os.PathLike, expected_frames: int | None = None) -> np.ndarray:
    """(N, 3) u v d centres from a MATLAB file holding `centre_pixel` (N, 1, 3) or (N, 3), as
    A2J ships V2V-PoseNet's ICVL centres. Every value must be finite and every d > 0 mm."""
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for a non-.mat or damaged file
        raise FormatError(f"{path}: not a readable MATLAB .mat file ({err})") from err
    if MAT_VARIABLE not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise FormatError(f"{path}: no variable {MAT_VARIABLE!r} (found {found})")
    raw = np.asarray(mat[MAT_VARIABLE])
    if raw.ndim not in (2, 3) or raw.shape[-1] != 3 or raw.size != 3 * raw.shape[0]:
        raise FormatError(
            f"{path}: {MAT_VARIABLE} has shape {raw.shape}, expected (N, 1, 3) or (N, 3) u v d"
        )
    try:
        uvd = raw.reshape(-1, 3).astype(np.float64)
    except (TypeError, ValueError) as err:
        raise FormatError(f"{path}: {MAT_VARIABLE} is not numeric ({err})") from None
    bad = np.flatnonzero(~np.all(np.isfinite(uvd), axis=1) | (uvd[:, 2] <= 0))
    if bad.size:
        raise FormatError(
            f"{path}: {MAT_VARIABLE}[{bad[0]}] = {uvd[bad[0]].tolist()}: expected finite u v "
            f"and d > 0 mm ({bad.size} such rows)"
        )
    if expected_frames is not None and len(uvd) != expected_frames:
        raise FormatError(
            f"{path}: {len(uvd)} centres in {MAT_VARIABLE}, expected {expected_frames} "
            "(one per frame of the split)"
        )
    return uvd
