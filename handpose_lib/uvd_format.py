"""The community uvd text format of hand-pose labels and predictions.

One test frame per line, joints as consecutive `u v d` triples: u, v in pixels of the full
depth image, d in millimetres. Every published ICVL / NYU label and prediction file uses it,
and so do the predictions this package writes, so one strict reader serves all of them.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

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
    if values is None:  # not a clean numeric table: check line by line, naming the fault
        rows, row_lines = _checked_rows(text, path, num_joints, expected_fields, values_start)
    frames = len(values) if values is not None else len(rows)
    if expected_frames is not None and frames != expected_frames:
        raise FormatError(
            f"{path}: {frames} frames, expected {expected_frames} "
            "(one line per test frame, same order as the ground truth)"
        )
    if not frames:
        raise FormatError(f"{path}: no frames in file")
    if values is None:
        values = _parse_numbers(rows, row_lines, path)
    return values.reshape(-1, num_joints, 3)


_BLANK_LINE_INSIDE = re.compile(r"\n[ \t\r\f\v]*\n")


def _well_formed_table(text: str, expected_fields: int) -> np.ndarray | None:
    """The (N, expected_fields) float64 values of `text` when it is a clean table (every line
    `expected_fields` finite numbers, blank lines only at the end), parsed by pandas' C reader
    (twice as fast as splitting each line in Python, bit-identical values); else None, and
    `_checked_rows` finds and names the fault."""
    body = text.rstrip()
    if not body.partition("\n")[0].strip() or _BLANK_LINE_INSIDE.search(body):
        return None  # no frames, or a blank line before the last frame
    try:
        table = pd.read_csv(
            io.StringIO(body), sep=r"\s+", header=None, dtype=np.float64, quoting=csv.QUOTE_NONE
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        return None
    lines = body.count("\n") + 1  # a line of pandas is not always one of "\n" (lone "\r")
    if table.shape != (lines, expected_fields) or not np.isfinite(table).all():
        return None  # short lines come back padded with NaN
    return table


def _checked_rows(
    text: str, path: Path, num_joints: int, expected_fields: int, values_start: int
) -> tuple[list[list[str]], list[int]]:
    """The numeric fields (as text) of each frame of `text` and its line number, every line
    checked for its count of fields and blank lines only at the end."""
    rows: list[list[str]] = []
    row_lines: list[int] = []
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
        rows.append(fields[values_start:])
        row_lines.append(line_no)
    return rows, row_lines


def _parse_numbers(rows: list[list[str]], row_lines: list[int], path: Path) -> np.ndarray:
    """The (N, F) float64 values of `rows` (N frames of F fields as text), all finite; the
    error names the first bad value's line and column."""
    try:
        values = np.array(rows, dtype=np.float64)  # in C, not float() field by field
    except ValueError:
        for row, line_no in zip(rows, row_lines, strict=True):
            for column, text in enumerate(row, start=1):
                try:
                    float(text)
                except ValueError:
                    raise FormatError(
                        f"{path}:{line_no}: value {column} is {text!r}, expected a number"
                    ) from None
        raise  # pragma: no cover - numpy refused a table that float() reads field by field
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise FormatError(
            f"{path}:{row_lines[row]}: value {column + 1} is {rows[row][column]!r}, "
            "expected a finite number"
        )
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
