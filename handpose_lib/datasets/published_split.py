"""Check that a test split on disk is the published one before it is scored as such.

Table 1 and the leaderboard compare a model's predictions with the published predictions of
earlier methods frame by frame, so a test split used in their place must hold the published
frames in the published order: the same frame count, the same image names (ICVL) and the same
labels (within the rounding of the label files).
"""

from __future__ import annotations

import os

import numpy as np

from handpose_lib import published
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.datasets.icvl import IcvlSource
from handpose_lib.datasets.nyu import NyuSource
from handpose_lib.uvd_format import FormatError

LABEL_TOLERANCE = 0.01  # pixels / mm: label files carry three decimals


def check_published_test_split(
    dataset: str,
    uvd: np.ndarray,
    names: list[str] | None,
    where: str,
    local_dir: str | os.PathLike | None = None,
) -> None:
    """Raise FormatError naming `where` (the label file or folder) unless labels uvd (N, J, 3)
    and image names (ICVL; None skips the check) are those of the published test set."""
    expected_uvd = published.load_labels(dataset, local_dir=local_dir)
    uvd = np.asarray(uvd, dtype=np.float64)
    if uvd.shape != expected_uvd.shape:
        raise FormatError(
            f"{where}: test split has labels {uvd.shape}, the published {dataset} test set "
            f"{expected_uvd.shape}; evaluate it against its own labels (--gt) instead"
        )
    if names is not None:
        expected_names = published.load_test_list(dataset, local_dir=local_dir)
        for index, (name, expected) in enumerate(zip(names, expected_names, strict=True)):
            if name != expected:
                raise FormatError(
                    f"{where}: test frame {index} is {name!r}, the published order has "
                    f"{expected!r} there"
                )
    deviation = np.abs(uvd - expected_uvd).max(axis=(1, 2))
    bad = np.flatnonzero(deviation > LABEL_TOLERANCE)
    if bad.size:
        raise FormatError(
            f"{where}: labels of {bad.size} test frames differ from the published ones (first: "
            f"frame {bad[0]}, by {deviation[bad[0]]:.3f}); frames out of order or another set"
        )


def split_labels(source: FrameSource) -> tuple[np.ndarray, list[str] | None, str]:
    """Labels uvd (N, J, 3), image names and folder of an `IcvlSource` / `NyuSource` test
    split, as `check_published_test_split` compares them."""
    if isinstance(source, IcvlSource):
        return np.asarray(source.uvd), list(source.names), str(source.root / "Testing")
    if isinstance(source, NyuSource):
        names = [source.name(i) for i in range(len(source))]
        return np.asarray(source.uvd), names, str(source.root / "test")
    raise ValueError(f"{source!r} is not an ICVL or NYU test split read from files")


def check_published_source(source: FrameSource, local_dir: str | os.PathLike | None = None) -> None:
    """`check_published_test_split` for an `IcvlSource` / `NyuSource` of the test split:
    raise FormatError naming its folder unless it is the published test set, in order."""
    uvd, names, where = split_labels(source)
    check_published_test_split(source.dataset, uvd, names, where, local_dir)
