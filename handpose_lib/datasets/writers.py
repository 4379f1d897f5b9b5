"""Write frames as the real ICVL and NYU distributions lay them out, so that every route of the
package (readers, training, prediction, evaluation, the runner) can be exercised on the exact
on-disk formats without the datasets.

ICVL (`write_icvl_dataset`), as `datasets.icvl` reads it:

    Training/labels.txt, Training/Depth/<name>                  16-bit PNGs, one line per frame
    Testing/test_seq_1.txt, Testing/test_seq_2.txt, Testing/Depth/test_seq_<k>/image_<nnnn>.png

NYU (`write_nyu_split`), as `datasets.nyu` reads it:

    <split>/joint_data.mat   joint_uvd, joint_xyz (3 Kinects, N, 36, 3), joint_names (1, 36)
    <split>/depth_1_<nnnnnnn>.png   RGB PNGs, depth = green * 256 + blue

Only what the readers use is written: Kinect 1's depth images (the labels of Kinects 2 and 3 are
copies of Kinect 1's, since one view is rendered), no RGB or synthetic-depth images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from handpose_lib import conventions
from handpose_lib.camera import NYU
from handpose_lib.datasets import icvl, nyu
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.datasets.parallel import map_in_chunks
from handpose_lib.datasets.synthetic import check_index
from handpose_lib.datasets.synthetic_nyu import NYU_LABEL_NAMES


def icvl_test_name(sequence: str, index: int) -> str:
    """Frame `index` (0-based in `sequence`) as distributed: "test_seq_1/image_0000.png"."""
    return f"{sequence}/image_{index:04d}.png"


def _write_icvl_pngs(source: FrameSource, folder: Path, jobs: list[tuple[int, str]]) -> list:
    out = []
    for index, name in jobs:
        frame = source[index]
        if frame.depth_mm.shape != icvl.DEPTH_SHAPE:
            raise ValueError(
                f"frame {index} of {source!r}: depth {frame.depth_mm.shape}, expected an ICVL "
                f"{icvl.DEPTH_SHAPE} frame"
            )
        icvl.write_depth_png(folder / "Depth" / name, frame.depth_mm)
        out.append(frame.uvd)
    return out


def _render(source: FrameSource, folder: Path, jobs: list[tuple[int, str]], workers: int) -> list:
    """uvd of every job, PNGs written; `workers` > 1 renders in processes (same output)."""
    return map_in_chunks(_write_icvl_pngs, source, folder, jobs, workers)


def _frame_name(source: FrameSource, index: int) -> str:
    # Sources that know their names without rendering say so (SyntheticSource.name, .names).
    name = getattr(source, "name", None)
    if callable(name):
        return name(index)
    names = getattr(source, "names", None)
    if isinstance(names, list):
        return names[index]
    return source[index].name


def _check_icvl_source(source: FrameSource) -> None:
    if getattr(source, "dataset", None) != "icvl":
        raise ValueError(f"an ICVL dataset needs an ICVL-layout source, got {source!r}")


def write_icvl_train(
    root: str | os.PathLike,
    source: FrameSource,
    indices: Sequence[int] | None = None,
    workers: int = 1,
) -> Path:
    """`root/Training/labels.txt` and its PNGs under `root/Training/Depth/<frame name>`; frame
    names must look like the distribution's ("<folder>/image_<n>.png"). Returns the label file."""
    _check_icvl_source(source)
    n = len(source)
    indices = range(n) if indices is None else [check_index(i, n, "training") for i in indices]
    names = [_frame_name(source, i) for i in indices]
    for name in names:
        if name.count("/") != 1 or not name.endswith(".png"):
            raise ValueError(f"training frame name {name!r}: expected '<folder>/<image>.png'")
    if len(set(names)) != len(names):
        raise ValueError("write_icvl_train: frame names repeat; every frame needs its own file")
    folder = Path(root) / "Training"
    uvd = _render(source, folder, list(zip(indices, names, strict=True)), workers)
    return icvl.write_label_file(folder / "labels.txt", names, np.stack(uvd))


def write_icvl_test(
    root: str | os.PathLike,
    source: FrameSource,
    subsets: Mapping[str, Sequence[int]] | None = None,
    workers: int = 1,
) -> list[Path]:
    """`root/Testing/test_seq_<k>.txt` and PNGs named as distributed.

    `subsets` maps each test sequence to the source frames it holds; default: the published
    split (`conventions.test_subsets`), which needs a source of exactly the published test
    frame count in label order (e.g. `RenderedPosesSource()`: the 1596 published poses).
    Returns the label files, in sequence order."""
    _check_icvl_source(source)
    if subsets is None:
        spans = conventions.test_subsets("icvl")
        if len(source) != spans["all"][1]:
            raise ValueError(
                f"{source!r} has {len(source)} frames; the published ICVL test split has "
                f"{spans['all'][1]}. Pass subsets= for a smaller test split"
            )
        subsets = {name: range(*span) for name, span in spans.items() if name != "all"}
    unknown = set(subsets) - set(icvl.TEST_SEQUENCES)
    if unknown:
        raise ValueError(
            f"unknown ICVL test sequences {sorted(unknown)}: expected {icvl.TEST_SEQUENCES}"
        )
    folder = Path(root) / "Testing"
    paths = []
    for sequence in icvl.TEST_SEQUENCES:
        if sequence not in subsets:
            continue
        indices = [check_index(i, len(source), sequence) for i in subsets[sequence]]
        if not indices:
            raise ValueError(f"test sequence {sequence} has no frames")
        names = [icvl_test_name(sequence, k) for k in range(len(indices))]
        uvd = _render(source, folder, list(zip(indices, names, strict=True)), workers)
        paths.append(icvl.write_label_file(folder / f"{sequence}.txt", names, np.stack(uvd)))
    return paths


def write_icvl_dataset(
    root: str | os.PathLike,
    train: FrameSource | None,
    test: FrameSource | None,
    test_subsets: Mapping[str, Sequence[int]] | None = None,
    workers: int = 1,
) -> Path:
    """An ICVL dataset root with a training and/or a test split (see the module docstring)."""
    if train is not None:
        write_icvl_train(root, train, workers=workers)
    if test is not None:
        write_icvl_test(root, test, test_subsets, workers=workers)
    return Path(root)


# ------------------------------------------------------------------------------------- NYU


def write_nyu_split(
    root: str | os.PathLike,
    split: str,
    depth_mm: Sequence[np.ndarray] | np.ndarray,
    joint_xyz: np.ndarray,
) -> Path:
    """`root/<split>/joint_data.mat` and `root/<split>/depth_1_<n>.png` for N frames.

    depth_mm:  N (480, 640) depth maps in mm (Kinect 1).
    joint_xyz: (N, 36, 3) NYU-camera joints in mm (y up, NYU's convention); joint_uvd follows
               from the NYU camera. Returns the .mat path."""
    if split not in nyu.SPLIT_FRAMES:
        raise ValueError(f"unknown NYU split {split!r}: expected one of {tuple(nyu.SPLIT_FRAMES)}")
    joint_xyz = np.asarray(joint_xyz, dtype=np.float64)
    if joint_xyz.ndim != 3 or joint_xyz.shape[1:] != (nyu.NUM_LABELLED_JOINTS, 3):
        raise ValueError(
            f"joint_xyz must be (N, {nyu.NUM_LABELLED_JOINTS}, 3), got {joint_xyz.shape}"
        )
    if len(depth_mm) != len(joint_xyz):
        raise ValueError(f"{len(depth_mm)} depth maps for {len(joint_xyz)} labelled frames")
    folder = Path(root) / split
    for index, depth in enumerate(depth_mm):
        nyu.write_depth_png(Path(root) / nyu.image_name(split, index), depth)
    joint_uvd = NYU.xyz_to_uvd(joint_xyz)
    kinects = (nyu.NUM_KINECTS, *joint_xyz.shape)
    return nyu.write_joint_data(
        folder / "joint_data.mat",
        np.broadcast_to(joint_uvd, kinects).copy(),
        np.broadcast_to(joint_xyz, kinects).copy(),
        NYU_LABEL_NAMES,
    )
