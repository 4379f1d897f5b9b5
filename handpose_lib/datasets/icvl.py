"""ICVL hand posture dataset in its distributed on-disk format.

Depth frames are 320x240 16-bit PNGs holding depth in millimetres (0 = no reading).
Label files hold one frame per line: the image path relative to the `Depth/` folder, then
16 joints as `u v d` (pixels, mm), in the joint order of `joints.ICVL_JOINT_NAMES`.

Layout of the distribution under the dataset root (see data/README.md):

    Training/labels.txt            original + rotated training frames (about 331k lines)
    Training/Depth/<name>          e.g. 201403121135/image_0000.png
    Testing/test_seq_1.txt         702 frames   } 1596 test frames, in this order, as in the
    Testing/test_seq_2.txt         894 frames   } published labels and predictions
    Testing/Depth/<name>           e.g. test_seq_1/image_0000.png
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from handpose_lib import conventions
from handpose_lib.camera import ICVL
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.png import read_png
from handpose_lib.joints import ICVL_JOINT_NAMES
from handpose_lib.uvd_format import FormatError, read_uvd

NUM_JOINTS = len(ICVL_JOINT_NAMES)
DEPTH_SHAPE = (ICVL.height, ICVL.width)  # (H, W)
ENV_ROOT = "HANDPOSE_ICVL_ROOT"
TEST_SEQUENCES: tuple[str, ...] = tuple(conventions.value("icvl", "test_subsets"))
SPLITS = ("train", "test", *TEST_SEQUENCES)


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """(240, 320) float32 depth in mm from an ICVL 16-bit PNG."""
    _, pixels = read_png(path, "an ICVL 16-bit depth PNG")
    if pixels.shape != DEPTH_SHAPE or pixels.dtype.kind not in "iu":
        raise FormatError(
            f"{path}: image is {pixels.shape} {pixels.dtype}, expected a {DEPTH_SHAPE} "
            "single-channel 16-bit depth PNG"
        )
    return pixels.astype(np.float32)


def write_depth_png(path: str | os.PathLike, depth_mm: np.ndarray) -> Path:
    """Write (240, 320) depth in mm as an ICVL 16-bit PNG (rounded to whole mm)."""
    depth_mm = np.asarray(depth_mm)
    if depth_mm.shape != DEPTH_SHAPE:
        raise ValueError(f"ICVL depth must be {DEPTH_SHAPE}, got {depth_mm.shape}")
    if np.any(depth_mm < 0) or np.any(depth_mm > np.iinfo(np.uint16).max):
        raise ValueError("ICVL depth must lie in [0, 65535] mm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(depth_mm).astype(np.uint16)).save(path)
    return path


def read_label_file(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Image names and uvd (N, 16, 3) of an ICVL label file; errors name file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ICVL label file not found")
    uvd = read_uvd(path, NUM_JOINTS, values_start=1)
    with open(path, encoding="utf-8") as f:
        names = [line.split()[0] for line in f if line.strip()]
    return names, uvd


def write_label_file(path: str | os.PathLike, names: list[str], uvd: np.ndarray) -> Path:
    """Write an ICVL label file: one `name u v d ...` line per frame."""
    uvd = np.asarray(uvd, dtype=np.float64)
    if uvd.shape != (len(names), NUM_JOINTS, 3):
        raise ValueError(f"uvd must be ({len(names)}, {NUM_JOINTS}, 3), got {uvd.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for name, joints in zip(names, uvd, strict=True):
            f.write(name + " " + " ".join(f"{v:.3f}" for v in joints.ravel()) + "\n")
    return path


def resolve_root(root: str | os.PathLike | None, env_var: str, dataset: str) -> Path:
    """Dataset root: the argument, else $`env_var`; it must be an existing folder."""
    chosen = root if root is not None else os.environ.get(env_var)
    if not chosen:
        raise ValueError(
            f"no {dataset} dataset root: pass root= or set {env_var} (see data/README.md)"
        )
    path = Path(chosen)
    if not path.is_dir():
        origin = "root=" if root is not None else f"${env_var}"
        raise FileNotFoundError(f"{path}: {dataset} dataset root ({origin}) is not a folder")
    return path


def is_original_frame(name: str) -> bool:
    """True for a frame of the original recordings, False for a rotated copy.

    DeepPrior++'s ICVL importer tells them apart this way: originals lie in folders named by
    recording time (e.g. "201403121135"), the augmented copies in short-named folders.
    """
    return len(name.split("/", 1)[0]) > 6


class IcvlSource:
    """ICVL frames as a FrameSource; labels are read up front, PNGs on each access.

    split: "train" (Training/labels.txt), "test" (test_seq_1 then test_seq_2, 1596 frames in
    the order of the published predictions) or one test sequence. `originals_only` drops the
    augmented training copies. `check_counts` verifies the published test-frame counts (off
    only for small hand-made fixtures).
    """

    dataset = "icvl"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        originals_only: bool = False,
        check_counts: bool = True,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown ICVL split {split!r}: expected one of {SPLITS}")
        self.root = resolve_root(root, ENV_ROOT, "ICVL")
        self.split = split
        folder = self.root / ("Training" if split == "train" else "Testing")
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: folder not found; an ICVL root holds Training/ (labels.txt, Depth/) "
                "and Testing/ (test_seq_1.txt, test_seq_2.txt, Depth/), see data/README.md"
            )
        if split == "train":
            label_files = [folder / "labels.txt"]
        else:
            label_files = [
                folder / f"{s}.txt" for s in (TEST_SEQUENCES if split == "test" else [split])
            ]
        names: list[str] = []
        uvds = []
        for path in label_files:
            file_names, uvd = read_label_file(path)
            expected = _expected_frames(path.stem) if split != "train" else None
            if check_counts and expected is not None and len(file_names) != expected:
                raise FormatError(
                    f"{path}: {len(file_names)} frames, expected {expected} "
                    f"(the published ICVL {path.stem})"
                )
            names += file_names
            uvds.append(uvd)
        uvd = np.concatenate(uvds)
        if originals_only:
            keep = np.array([is_original_frame(n) for n in names], dtype=bool)
            names = [n for n, k in zip(names, keep, strict=True) if k]
            uvd = uvd[keep]
        self.image_dir = folder / "Depth"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"{self.image_dir}: ICVL depth image folder not found")
        self.names = names
        self.uvd = uvd
        self.originals_only = originals_only

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def cache_key(self) -> str:
        """Identifies the frames for crop caches: root, split and a hash of the labels."""
        digest = hashlib.sha256(np.ascontiguousarray(self.uvd).tobytes())
        digest.update("\n".join(self.names).encode())
        return (
            f"icvl:{self.root.resolve()}:{self.split}:originals={self.originals_only}:"
            f"{digest.hexdigest()}"
        )

    def __getitem__(self, index: int) -> DepthFrame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} ICVL frames")
        name = self.names[index]
        depth = read_depth_png(self.image_dir / name)
        return DepthFrame(depth_mm=depth, uvd=self.uvd[index].copy(), camera=ICVL, name=name)


def _expected_frames(sequence: str) -> int | None:
    span = conventions.test_subsets("icvl").get(sequence)
    return None if span is None else span[1] - span[0]
