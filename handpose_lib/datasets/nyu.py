"""NYU hand pose dataset (Tompson et al. 2014) in its distributed on-disk format.

Layout under the dataset root (see data/README.md):

    train/joint_data.mat, train/depth_<k>_<nnnnnnn>.png    72,757 frames
    test/joint_data.mat,  test/depth_<k>_<nnnnnnn>.png      8,252 frames

Depth PNGs are 640x480 RGB images packing depth in mm as green (high byte) * 256 + blue
(low byte). `<k>` is the Kinect (1 = frontal, the one evaluated), `<nnnnnnn>` the frame
number, 1-based and zero-padded to seven digits. joint_data.mat holds `joint_uvd` and
`joint_xyz`, both (3 Kinects, N frames, 36 joints, 3), and `joint_names` (1, 36); the
community protocol evaluates Kinect 1 and the 14 joints `joints.NYU_EVAL_JOINT_IDS`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from handpose_lib import conventions
from handpose_lib.camera import NYU
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.icvl import resolve_root
from handpose_lib.datasets.png import read_png
from handpose_lib.joints import NYU_EVAL_JOINT_IDS
from handpose_lib.uvd_format import FormatError

DEPTH_SHAPE = (NYU.height, NYU.width)  # (H, W)
NUM_KINECTS: int = conventions.value("nyu", "kinects")
NUM_LABELLED_JOINTS: int = conventions.value("nyu", "labelled_joints")
ENV_ROOT = "HANDPOSE_NYU_ROOT"
SPLIT_FRAMES: dict[str, int] = dict(conventions.value("nyu", "split_frames"))
MAT_VARIABLES = ("joint_uvd", "joint_xyz", "joint_names")


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """(480, 640) float32 depth in mm from an NYU PNG (green * 256 + blue; 0 = no reading)."""
    mode, pixels = read_png(path, "an NYU RGB depth PNG")
    if mode != "RGB" or pixels.shape != (*DEPTH_SHAPE, 3):
        raise FormatError(
            f"{path}: image is {mode} {pixels.shape}, expected a {DEPTH_SHAPE} RGB PNG with "
            "depth packed as green * 256 + blue"
        )
    return (pixels[..., 1].astype(np.float32) * 256 + pixels[..., 2]).astype(np.float32)


def write_depth_png(path: str | os.PathLike, depth_mm: np.ndarray) -> Path:
    """Write (480, 640) depth in mm as an NYU PNG (rounded to whole mm; red left 0)."""
    depth_mm = np.asarray(depth_mm)
    if depth_mm.shape != DEPTH_SHAPE:
        raise ValueError(f"NYU depth must be {DEPTH_SHAPE}, got {depth_mm.shape}")
    if np.any(depth_mm < 0) or np.any(depth_mm > 65535):
        raise ValueError("NYU depth must lie in [0, 65535] mm")
    depth = np.rint(depth_mm).astype(np.uint16)
    rgb = np.zeros((*DEPTH_SHAPE, 3), dtype=np.uint8)
    rgb[..., 1] = depth >> 8
    rgb[..., 2] = depth & 0xFF
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def image_name(split: str, index: int, kinect: int = 0) -> str:
    """Image path relative to the root of 0-based frame `index`: "test/depth_1_0000001.png"."""
    return f"{split}/depth_{kinect + 1}_{index + 1:07d}.png"


@dataclass(frozen=True)
class NyuLabels:
    """Labels of one Kinect: uvd and xyz_mm (N, J, 3) float64 and the joint names (J,)."""

    uvd: np.ndarray
    xyz_mm: np.ndarray
    joint_names: tuple[str, ...]


def read_joint_data(
    path: str | os.PathLike,
    kinect: int = 0,
    joint_ids: tuple[int, ...] | None = NYU_EVAL_JOINT_IDS,
) -> NyuLabels:
    """Labels of Kinect `kinect` (0 = frontal) from an NYU joint_data.mat.

    `joint_ids` selects joints of the 36 (default: the 14 evaluated); None keeps all 36.
    """
    if not 0 <= kinect < NUM_KINECTS:
        raise ValueError(f"kinect must be in [0, {NUM_KINECTS}), got {kinect}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: NYU joint_data.mat not found")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises several types for a non-.mat or damaged file
        raise FormatError(f"{path}: not a readable MATLAB .mat file ({err})") from err
    missing = [name for name in MAT_VARIABLES if name not in mat]
    if missing:
        raise FormatError(
            f"{path}: missing variable(s) {missing}; expected {list(MAT_VARIABLES)} with "
            f"joint_uvd and joint_xyz shaped ({NUM_KINECTS}, N, {NUM_LABELLED_JOINTS}, 3)"
        )
    arrays = {}
    for name in ("joint_uvd", "joint_xyz"):
        array = np.asarray(mat[name])
        if (
            array.ndim != 4
            or array.shape[0] != NUM_KINECTS
            or array.shape[2:] != (NUM_LABELLED_JOINTS, 3)
        ):
            raise FormatError(
                f"{path}: {name} has shape {array.shape}, expected "
                f"({NUM_KINECTS}, N, {NUM_LABELLED_JOINTS}, 3)"
            )
        arrays[name] = array.astype(np.float64)
    if arrays["joint_uvd"].shape != arrays["joint_xyz"].shape:
        raise FormatError(
            f"{path}: joint_uvd {arrays['joint_uvd'].shape} and joint_xyz "
            f"{arrays['joint_xyz'].shape} differ in shape"
        )
    names = _joint_names(mat["joint_names"], path)
    ids = list(range(NUM_LABELLED_JOINTS)) if joint_ids is None else list(joint_ids)
    return NyuLabels(
        uvd=arrays["joint_uvd"][kinect][:, ids],
        xyz_mm=arrays["joint_xyz"][kinect][:, ids],
        joint_names=tuple(names[i] for i in ids),
    )


def _joint_names(raw: np.ndarray, path: Path) -> list[str]:
    # loadmat gives a MATLAB cell array of strings as an object array of 1-element arrays.
    flat = np.asarray(raw, dtype=object).ravel()
    names = [str(np.asarray(n).ravel()[0]) if np.asarray(n).size else "" for n in flat]
    if len(names) != NUM_LABELLED_JOINTS:
        raise FormatError(
            f"{path}: joint_names holds {len(names)} names, expected {NUM_LABELLED_JOINTS}"
        )
    return names


def write_joint_data(
    path: str | os.PathLike,
    joint_uvd: np.ndarray,
    joint_xyz: np.ndarray,
    joint_names: list[str] | tuple[str, ...],
) -> Path:
    """Write a joint_data.mat in NYU's layout (arrays (3, N, 36, 3), names as a 1x36 cell)."""
    joint_uvd, joint_xyz = np.asarray(joint_uvd), np.asarray(joint_xyz)
    for name, array in (("joint_uvd", joint_uvd), ("joint_xyz", joint_xyz)):
        if (
            array.ndim != 4
            or array.shape[0] != NUM_KINECTS
            or array.shape[2:] != (NUM_LABELLED_JOINTS, 3)
        ):
            raise ValueError(f"{name} must be ({NUM_KINECTS}, N, 36, 3), got {array.shape}")
    if joint_uvd.shape != joint_xyz.shape:
        raise ValueError(f"joint_uvd {joint_uvd.shape} and joint_xyz {joint_xyz.shape} differ")
    if len(joint_names) != NUM_LABELLED_JOINTS:
        raise ValueError(f"joint_names must hold {NUM_LABELLED_JOINTS} names")
    cell = np.empty((1, NUM_LABELLED_JOINTS), dtype=object)
    cell[0, :] = list(joint_names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"joint_uvd": joint_uvd, "joint_xyz": joint_xyz, "joint_names": cell})
    return path


class NyuSource:
    """NYU frames of one Kinect (default: the frontal one) as a FrameSource, 14 joints.

    Labels are read from `<root>/<split>/joint_data.mat` up front, PNGs on each access.
    Frame names are relative to the root ("test/depth_1_0000001.png"), as in the published
    test list. `check_counts` verifies the published frame counts (off only for fixtures).
    """

    dataset = "nyu"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        kinect: int = 0,
        check_counts: bool = True,
    ) -> None:
        if split not in SPLIT_FRAMES:
            raise ValueError(f"unknown NYU split {split!r}: expected one of {tuple(SPLIT_FRAMES)}")
        self.root = resolve_root(root, ENV_ROOT, "NYU")
        self.split = split
        self.kinect = kinect
        if not (self.root / split).is_dir():
            raise FileNotFoundError(
                f"{self.root / split}: folder not found; an NYU root holds train/ and test/, each "
                "with joint_data.mat and depth_1_<nnnnnnn>.png images, see data/README.md"
            )
        mat_path = self.root / split / "joint_data.mat"
        labels = read_joint_data(mat_path, kinect=kinect)
        if check_counts and len(labels.uvd) != SPLIT_FRAMES[split]:
            raise FormatError(
                f"{mat_path}: {len(labels.uvd)} frames, expected {SPLIT_FRAMES[split]} "
                f"(the NYU {split} set)"
            )
        self.uvd = labels.uvd
        self.joint_names = labels.joint_names

    def __len__(self) -> int:
        return len(self.uvd)

    @cached_property
    def cache_key(self) -> str:
        """Identifies the frames for crop caches: root, split, Kinect and a hash of the labels."""
        digest = hashlib.sha256(np.ascontiguousarray(self.uvd).tobytes()).hexdigest()
        return f"nyu:{self.root.resolve()}:{self.split}:kinect={self.kinect}:{digest}"

    def name(self, index: int) -> str:
        return image_name(self.split, index, self.kinect)

    def __getitem__(self, index: int) -> DepthFrame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} NYU frames")
        index %= len(self)
        name = self.name(index)
        depth = read_depth_png(self.root / name)
        return DepthFrame(depth_mm=depth, uvd=self.uvd[index].copy(), camera=NYU, name=name)
