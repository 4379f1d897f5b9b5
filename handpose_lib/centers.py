"""Hand centres of Section 3.1: the rough centre of mass (CoM), the localization network's
refined centre, and how far each lies from the true hand centre.

The true hand centre is what the localization network is trained to predict: the mean of the
labelled joints in image uvd (`training.inference.hand_center_uvd`; the crop map is affine, so
this is also their mean in crop coordinates). It lies within about 1 mm of the 3D joint centroid
(`preprocess.joints_center`, the oracle centre of the pose training crops). Errors are 3D
distances in camera-space millimetres, like the joint errors of Table 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from handpose_lib import center_files
from handpose_lib.camera import Camera, camera_for
from handpose_lib.training.inference import hand_center_uvd, infer
from handpose_lib.uvd_format import FormatError

COM_LABEL = "CoM"
REFINED_LABEL = "refined (localization net)"


def center_errors_mm(centers_uvd: np.ndarray, true_uvd: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, 3) estimated and (N, 3) true centres, both uvd -> (N,) 3D distances in mm."""
    centers_uvd = np.asarray(centers_uvd, dtype=np.float64)
    true_uvd = np.asarray(true_uvd, dtype=np.float64)
    if centers_uvd.shape != true_uvd.shape or centers_uvd.ndim != 2 or centers_uvd.shape[1] != 3:
        raise ValueError(
            f"centres {centers_uvd.shape} and true centres {true_uvd.shape} must both have "
            "shape (N, 3)"
        )
    return np.linalg.norm(camera.uvd_to_xyz(centers_uvd) - camera.uvd_to_xyz(true_uvd), axis=1)


@dataclass(frozen=True)
class CenterEstimates:
    """Centres of N frames in image uvd (pixels, mm) of `dataset`'s camera.

    com_uvd:     (N, 3) crop centres the localization network saw: the CoM for a dataset that
                 crops at "com".
    refined_uvd: (N, 3) the localization network's estimates.
    joints_uvd:  (N, J, 3) labelled joints.
    dataset:     "icvl" or "nyu" (camera and joint layout).
    """

    com_uvd: np.ndarray
    refined_uvd: np.ndarray
    joints_uvd: np.ndarray
    dataset: str

    def __post_init__(self) -> None:
        n = len(self.joints_uvd)
        if np.ndim(self.joints_uvd) != 3 or np.shape(self.joints_uvd)[-1] != 3:
            raise ValueError(f"joints_uvd must be (N, J, 3), got {np.shape(self.joints_uvd)}")
        for name in ("com_uvd", "refined_uvd"):
            if np.shape(getattr(self, name)) != (n, 3):
                raise ValueError(
                    f"{name} must be ({n}, 3) like joints_uvd's frames, "
                    f"got {np.shape(getattr(self, name))}"
                )
        camera_for(self.dataset)  # a clear error for an unknown dataset

    @property
    def true_uvd(self) -> np.ndarray:
        """(N, 3) true hand centres: the mean of the labelled joints."""
        return hand_center_uvd(self.joints_uvd)

    def errors_mm(self) -> dict[str, np.ndarray]:
        """(N,) distance of each estimate to the true centre, keyed by COM_LABEL, REFINED_LABEL."""
        camera, true = camera_for(self.dataset), self.true_uvd
        return {
            COM_LABEL: center_errors_mm(self.com_uvd, true, camera),
            REFINED_LABEL: center_errors_mm(self.refined_uvd, true, camera),
        }


def localize(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    num_workers: int = 0,
) -> CenterEstimates:
    """Run a localization network over a `HandPoseDataset` (no augmentation) in one pass
    (`inference.infer`).

    Returns the crop centres of the dataset (the CoM when it crops at "com"), the network's
    refined centres and the labelled joints, in dataset order. `device` defaults to where the
    model's parameters are.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    result = infer(model, loader, device)
    if result.is_pose:
        raise ValueError(
            "localize needs a localization network returning (B, 3) offsets, got a pose "
            f"network's {result.pred_uvd.shape[1:]} joints per frame"
        )
    source = getattr(dataset, "source", None)
    name = getattr(source, "dataset", "icvl")
    return CenterEstimates(
        com_uvd=result.crop_centers_uvd,
        refined_uvd=result.pred_uvd,
        joints_uvd=result.joints_uvd,
        dataset=name if name in ("icvl", "nyu") else "icvl",  # synthetic frames use ICVL's
    )


def summarize(
    errors_mm: dict[str, np.ndarray], thresholds_mm: Sequence[float] = (5.0, 10.0, 20.0)
) -> pd.DataFrame:
    """One row per estimate: mean, median, 90th percentile (mm) and the fraction of frames
    within each threshold."""
    rows = {}
    for label, errors in errors_mm.items():
        errors = np.asarray(errors, dtype=np.float64)
        if errors.ndim != 1 or errors.size == 0:
            raise ValueError(
                f"{label!r}: expected a non-empty (N,) error array, got {errors.shape}"
            )
        row = {
            "mean (mm)": errors.mean(),
            "median (mm)": np.median(errors),
            "90th percentile (mm)": np.percentile(errors, 90),
        }
        row.update({f"within {t:g} mm": float(np.mean(errors <= t)) for t in thresholds_mm})
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def compare_center_sources(
    estimates: CenterEstimates,
    files: Mapping[str, str | os.PathLike | center_files.CenterFile] | None = None,
    reference: str = "centroid",
    frame_indices: Sequence[int] | np.ndarray | None = None,
    thresholds_mm: Sequence[float] = center_files.WITHIN_MM,
) -> pd.DataFrame:
    """One row per centre source: the CoM, the localization net, and each centre file
    (label -> path, community format: `x y z` mm or `invalid` per frame), scored by the same
    code (`center_files.evaluate_centers`) against the labelled joints of `estimates`.

    Columns: frames, invalid (left out of the statistics), mean and median 3D error (mm),
    bias and spread (mm, `center_files.CenterErrors`), share of valid frames within each
    threshold (mm). `reference` is "centroid" (the 3D mean of the joints, what the
    localization net locates) or "palm" (the joint DeepPrior++'s refinement is trained on).
    V2V-PoseNet's refined centre files lie nearer the centroid than the palm (13 / 21 mm from
    the centroid, 44 / 31 mm from the palm on the ICVL / NYU test sets). A file may cover the
    whole split that the frames were taken from: `frame_indices` (N,) then picks the frames'
    lines (e.g. `EvenSubset.indices`).
    """
    dataset, joints = estimates.dataset, estimates.joints_uvd
    camera = camera_for(dataset)
    rows: dict[str, dict[str, float | int | str]] = {}
    for label, uvd in ((COM_LABEL, estimates.com_uvd), (REFINED_LABEL, estimates.refined_uvd)):
        xyz = center_files.uvd_to_centers(uvd, camera)
        rows[label] = center_files.evaluate_centers(
            xyz, joints, dataset, camera, reference
        ).to_dict(thresholds_mm)
    for label, path in (files or {}).items():
        if isinstance(path, center_files.CenterFile):
            found = path
        else:
            found = center_files.read_center_file(path)
        if len(found) != len(joints):
            if frame_indices is None or len(frame_indices) != len(joints):
                raise FormatError(
                    f"{path}: {len(found)} centres for {len(joints)} frames; pass frame_indices "
                    "when the file covers the whole split the frames were taken from"
                )
            rows_of = np.asarray(frame_indices, dtype=int)
            if rows_of.min() < 0 or rows_of.max() >= len(found):
                raise FormatError(
                    f"{path}: {len(found)} centres, frame index {int(rows_of.max())} is beyond them"
                )
            found = center_files.CenterFile(found.path, found.xyz_mm[rows_of], found.valid[rows_of])
        errors = center_files.evaluate_center_file(found, joints, dataset, camera, reference)
        rows[label] = errors.to_dict(thresholds_mm)
    return pd.DataFrame.from_dict(rows, orient="index")


REFERENCES = {"centroid": "joint centroid", "palm": "palm joint"}
CENTRE_TABLE_COLUMNS = ("mean (mm)", "bias (mm)", "spread (mm)", "within 20 mm")


def centre_table(
    estimates: CenterEstimates,
    files: Mapping[str, str | os.PathLike | center_files.CenterFile] | None = None,
    frame_indices: Sequence[int] | np.ndarray | None = None,
    columns: Sequence[str] = CENTRE_TABLE_COLUMNS,
) -> pd.DataFrame:
    """Every centre source (CoM, the localization net, each file) against both references
    (the joint centroid, which the pose crops and LocNet aim at, and the palm joint): mean
    distance, bias (the mean offset's length), spread (the offsets' RMS scatter around it)
    and the share within 20 mm. Columns: (reference, measure); rows: sources."""
    files = {  # read once for both references
        label: f if isinstance(f, center_files.CenterFile) else center_files.read_center_file(f)
        for label, f in (files or {}).items()
    }
    parts = {
        name: compare_center_sources(estimates, files, key, frame_indices)[list(columns)]
        for key, name in REFERENCES.items()
    }
    return pd.concat(parts, axis=1)
