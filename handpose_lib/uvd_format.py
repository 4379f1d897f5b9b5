"""The community uvd text format of hand-pose labels and predictions.

One test frame per line, joints as consecutive `u v d` triples: u, v in pixels of the full
depth image, d in millimetres. Every published ICVL / NYU label and prediction file uses it,
and so do the predictions this package writes, so one strict reader serves all of them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np


class FormatError(ValueError):
    """An input file is malformed; the message names the file (and line, where there is one)
    and what was expected. Raised by every reader of the package, not only for uvd files."""


def read_uvd(
    path: str | os.PathLike,
    num_joints: int,
    expected_frames: int | None = None,
    values_start: int = 0,
) -> np.ndarray:
    """Parse a community-format file into uvd of shape (N, J, 3), float64.

    Every line must hold exactly `values_start + 3 * num_joints` whitespace-separated
    fields, of which the numeric ones (from `values_start` on) must be finite numbers.
    `values_start=1` reads ICVL's sequence label files, whose first field is the image path.
    Blank lines are allowed only at the end of the file. Errors name the file and line.
    """
    path = Path(path)
    expected_fields = values_start + 3 * num_joints
    frames: list[list[float]] = []
    trailing_blank_from: int | None = None
    # Split on "\n" only: the original ICVL label files end lines with "\r\r\n", which
    # universal-newline reading would turn into a blank line after every frame.
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
    except UnicodeDecodeError as err:
        raise FormatError(f"{path}: not a text file ({err})") from None
    for line_no, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            trailing_blank_from = trailing_blank_from or line_no
            continue
        if trailing_blank_from is not None:
            raise FormatError(
                f"{path}:{trailing_blank_from}: blank line inside the file; "
                "expected one frame per line"
            )
        if len(fields) != expected_fields:
            raise FormatError(
                f"{path}:{line_no}: {len(fields)} values, expected {expected_fields} "
                f"({num_joints} joints x (u, v, d))"
            )
        frames.append(_parse_numbers(fields[values_start:], path, line_no))
    if expected_frames is not None and len(frames) != expected_frames:
        raise FormatError(
            f"{path}: {len(frames)} frames, expected {expected_frames} "
            "(one line per test frame, same order as the ground truth)"
        )
    if not frames:
        raise FormatError(f"{path}: no frames in file")
    return np.asarray(frames, dtype=np.float64).reshape(-1, num_joints, 3)


def _parse_numbers(fields: list[str], path: Path, line_no: int) -> list[float]:
    values = []
    for column, text in enumerate(fields, start=1):
        try:
            value = float(text)
        except ValueError:
            raise FormatError(
                f"{path}:{line_no}: value {column} is {text!r}, expected a number"
            ) from None
        if not math.isfinite(value):
            raise FormatError(
                f"{path}:{line_no}: value {column} is {text!r}, expected a finite number"
            )
        values.append(value)
    return values


def write_uvd(path: str | os.PathLike, uvd: np.ndarray, decimals: int = 3) -> Path:
    """Write (N, J, 3) uvd in the community format, one frame per line."""
    uvd = np.asarray(uvd, dtype=np.float64)
    if uvd.ndim != 3 or uvd.shape[2] != 3:
        raise ValueError(f"write_uvd expects uvd of shape (N, J, 3), got {uvd.shape}")
    if not np.all(np.isfinite(uvd)):
        raise ValueError("write_uvd: uvd holds NaN or inf; refusing to write an unreadable file")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, uvd.reshape(len(uvd), -1), fmt=f"%.{decimals}f", delimiter=" ")
    return path
