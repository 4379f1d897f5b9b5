"""ICVL hand posture dataset in its distributed on-disk format.

Depth frames are 320x240 16-bit PNGs holding depth in millimetres (0 = no reading).
Label files hold one frame per line: the image path relative to the `Depth/` folder, then
16 joints as `u v d` (pixels, mm), in the joint order of `joints.ICVL_JOINT_NAMES`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from handpose_lib.camera import ICVL
from handpose_lib.joints import ICVL_JOINT_NAMES
from handpose_lib.published import FormatError, read_uvd

NUM_JOINTS = len(ICVL_JOINT_NAMES)
DEPTH_SHAPE = (ICVL.height, ICVL.width)  # (H, W)


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """(240, 320) float32 depth in mm from an ICVL 16-bit PNG."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ICVL depth image not found")
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image)
    except (OSError, SyntaxError) as err:  # Pillow reports truncated/corrupt files so
        raise FormatError(f"{path}: unreadable PNG ({err}); expected a 16-bit depth PNG") from err
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
