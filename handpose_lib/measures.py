"""Small measurements the notebooks report about the input pipeline.

- `measure_com`: the two CoM estimates of notebook 01 over a set of frames.
- `centre_bias_spread`: bias and spread of centre estimates against both references (the
  joint centroid and the palm joint), with `center_files.evaluate_centers`.
- `offsets_along_hand`: a hand-centre error split along each hand's own axes (how far a
  centre estimate sits toward the wrist, across the hand, and in depth).
- `surface_gap_mm`: how far a crop's joints lie from the depth surface drawn at their pixels,
  the check that augmentation moves image and joints together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from handpose_lib import center_files
from handpose_lib.camera import camera_for
from handpose_lib.centers import REFERENCES
from handpose_lib.datasets.frame import FrameSource
from handpose_lib.joints import JOINT_NAMES
from handpose_lib.preprocess import CropConfig, hand_center

OFFSET_PARTS = ("toward_wrist", "across", "depth", "total")


def _layout(dataset: str) -> str:
    layout = "icvl" if dataset == "synthetic" else dataset
    if layout not in JOINT_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}: expected synthetic, icvl or nyu")
    return layout


def offsets_along_hand(
    center_xyz: np.ndarray, joints_xyz: np.ndarray, dataset: str
) -> dict[str, np.ndarray]:
    """Split centre errors along each hand's own axes (camera-space mm).

    center_xyz (N, 3) estimated centres; joints_xyz (N, J, 3) labelled joints; the reference
    centre is the joint centroid. Returns (N,) arrays: 'toward_wrist' (signed, along the
    Mid.R -> Palm direction projected on the image plane, > 0 = displaced toward the wrist
    and forearm), 'across' (signed, image plane, perpendicular to it), 'depth' (signed z) and
    'total' (3D norm).
    """
    names = JOINT_NAMES[_layout(dataset)]
    palm, mid_root = names.index("Palm"), names.index("Mid.R")
    joints_xyz = np.asarray(joints_xyz, dtype=np.float64)
    center_xyz = np.asarray(center_xyz, dtype=np.float64)
    if joints_xyz.ndim != 3 or center_xyz.shape != (len(joints_xyz), 3):
        raise ValueError(
            f"expected center_xyz (N, 3) and joints_xyz (N, J, 3), got {center_xyz.shape} "
            f"and {joints_xyz.shape}"
        )
    offset = center_xyz - joints_xyz.mean(axis=1)
    axis = joints_xyz[:, palm, :2] - joints_xyz[:, mid_root, :2]
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    toward = np.einsum("ni,ni->n", offset[:, :2], axis)
    across = offset[:, 0] * -axis[:, 1] + offset[:, 1] * axis[:, 0]
    return {
        "toward_wrist": toward,
        "across": across,
        "depth": offset[:, 2],
        "total": np.linalg.norm(offset, axis=1),
    }


def surface_gap_mm(sample: dict[str, np.ndarray]) -> float:
    """Median |crop depth at each joint's pixel - joint depth| in mm for one sample.

    `sample` holds 'image' (1, S, S), 'uvd_crop' (J, 3), 'depth' (J,) and 'cube_mm', as
    `preprocess.sample_targets` returns it. Joints sit a finger's radius behind the visible
    surface, so this is small (about 10 mm) when image and joints are aligned; when a
    transform moved one without the other, joints fall on the forearm or the background and
    it grows to 50-150 mm.
    """
    image = sample["image"][0]
    size = image.shape[-1]
    xy = np.rint((np.asarray(sample["uvd_crop"])[:, :2] + 1.0) / 2.0 * size - 0.5).astype(int)
    xy = np.clip(xy, 0, size - 1)
    gap = np.abs(image[xy[:, 1], xy[:, 0]] - np.asarray(sample["depth"]))
    return float(np.median(gap) * float(sample["cube_mm"]) / 2)


@dataclass(frozen=True)
class ComMeasurement:
    """CoM estimates of the frames with a visible hand.

    centres_xyz: label -> (N, 3) camera mm; joints_uvd (N, J, 3) and joints_xyz (N, J, 3):
    their labels; skipped: indices of frames with nothing in the depth range."""

    centres_xyz: dict[str, np.ndarray]
    joints_uvd: np.ndarray
    joints_xyz: np.ndarray
    skipped: list[int]


def measure_com(
    source: FrameSource, indices: Sequence[int], configs: Mapping[str, CropConfig]
) -> ComMeasurement:
    """The CoM (`preprocess.hand_center`) of each frame under each labelled crop config (e.g.
    without and with refinement in the cube); frames without a hand are skipped and listed."""
    found: dict[str, list[np.ndarray]] = {label: [] for label in configs}
    joints_uvd, joints_xyz, skipped = [], [], []
    for i in indices:
        frame = source[int(i)]
        try:
            estimates = {
                k: hand_center(frame.depth_mm, frame.camera, c) for k, c in configs.items()
            }
        except ValueError:  # nothing in the depth range: a frame without a visible hand
            skipped.append(int(i))
            continue
        for label, uvd in estimates.items():
            found[label].append(frame.camera.uvd_to_xyz(uvd))
        joints_uvd.append(frame.uvd)
        joints_xyz.append(frame.xyz_mm)
    return ComMeasurement(
        {k: np.array(v) for k, v in found.items()},
        np.array(joints_uvd),
        np.array(joints_xyz),
        skipped,
    )


def centre_bias_spread(
    centres_xyz: Mapping[str, np.ndarray], joints_uvd: np.ndarray, dataset: str
) -> pd.DataFrame:
    """One row per (estimate, reference): mean distance, bias (the mean offset's length: a
    constant shift) and spread (RMS scatter of the offsets around it: what moves the hand
    within the crop from frame to frame), in mm, against the joint centroid and the palm."""
    layout = _layout(dataset)
    camera = camera_for(layout)
    rows = []
    for label, xyz in centres_xyz.items():
        for key, reference in REFERENCES.items():
            errors = center_files.evaluate_centers(xyz, joints_uvd, layout, camera, key)
            rows.append(
                {
                    "estimate": label,
                    "reference": reference,
                    "mean (mm)": errors.mean_mm,
                    "bias (mm)": errors.bias_mm,
                    "spread (mm)": errors.spread_mm,
                }
            )
    return pd.DataFrame(rows)
