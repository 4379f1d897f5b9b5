"""The community uvd text format of hand-pose labels and predictions.

One test frame per line, joints as consecutive `u v d` triples: u, v in pixels of the full
depth image, d in millimetres. Every published ICVL / NYU label and prediction file uses it,
and so do the predictions this package writes, so one strict reader serves all of them.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd


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
    # Split on "\n" only: the original ICVL label files end lines with "\r\r\n", which
    # universal-newline reading would turn into a blank line after every frame.
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise FormatError(f"{path}: not a text file ({err})") from None
    values = _well_formed_table(text, expected_fields) if values_start == 0 else None
    if values is None:  # not a clean numeric table: line by line, naming the first fault
        values = _checked_table(text, path, num_joints, expected_fields, values_start)
    if expected_frames is not None and len(values) != expected_frames:
        raise FormatError(
            f"{path}: {len(values)} frames, expected {expected_frames} "
            "(one line per test frame, same order as the ground truth)"
        )
    if not len(values):
        raise FormatError(f"{path}: no frames in file")
    return values.reshape(-1, num_joints, 3)


# pandas 3 parses floats as float() does; pandas 2 only with "round_trip" (its default
# "high" reads some of the 14-decimal published values one unit in the last place apart).
_EXACT_FLOATS: Literal["round_trip"] | None = (
    "round_trip" if int(pd.__version__.split(".")[0]) < 3 else None
)
_BLANK_LINE_INSIDE = re.compile(r"\n[ \t\r\f\v]*\n")


def _well_formed_table(text: str, expected_fields: int) -> np.ndarray | None:
    """The (N, expected_fields) float64 values of `text` when it is a clean table (every line
    `expected_fields` finite numbers, blank lines only at the end), parsed by pandas' C reader
    (twice as fast as `_checked_table`, bit-identical values); else None, and
    `_checked_table` finds and names the fault."""
    body = text.rstrip()
    if not body.partition("\n")[0].strip() or _BLANK_LINE_INSIDE.search(body):
        return None  # no frames, or a blank line before the last frame
    if body[0] == "\ufeff" or any(c in body for c in "tTfF"):
        return None  # a byte-order mark or TRUE / false, which pandas would read as numbers
    try:
        table = pd.read_csv(
            io.StringIO(body),
            sep=r"\s+",
            header=None,
            dtype=np.float64,
            quoting=csv.QUOTE_NONE,
            float_precision=_EXACT_FLOATS,
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    lines = body.count("\n") + 1  # a line of pandas is not always one of "\n" (lone "\r")
    if table.shape != (lines, expected_fields) or not np.isfinite(table).all():
        return None  # short lines come back padded with NaN
    return np.ascontiguousarray(table)


def _checked_table(
    text: str, path: Path, num_joints: int, expected_fields: int, values_start: int
) -> np.ndarray:
    """The (N, expected_fields - values_start) values of `text`, checked line by line: the
    count of fields, each numeric field a finite number, blank lines only at the end."""
    frames: list[list[float]] = []
    trailing_blank_from: int | None = None
    for line_no, line in enumerate(text.split("\n"), start=1):
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
    return np.asarray(frames, dtype=np.float64).reshape(len(frames), expected_fields - values_start)


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
