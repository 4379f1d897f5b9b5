"""Hand centres of Section 3.1: the rough centre of mass (CoM), the localization network's
refined centre, and how far each lies from the true hand centre.

The true hand centre is what the localization network is trained to predict: the mean of the
labelled joints in image uvd (`predict.hand_center_uvd`; the crop map is affine, so this is
also their mean in crop coordinates). It lies within about 1 mm of the 3D joint centroid
(`preprocess.joints_center`, the oracle centre of the pose training crops). Errors are 3D
distances in camera-space millimetres, like the joint errors of Table 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from handpose_lib.camera import Camera, camera_for
from handpose_lib.predict import decode_to_image, hand_center_uvd, unwrap

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


@torch.no_grad()
def localize(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    num_workers: int = 0,
) -> CenterEstimates:
    """Run a localization network over a `HandPoseDataset` (no augmentation) in one pass.

    Returns the crop centres of the dataset (the CoM when it crops at "com"), the network's
    refined centres and the labelled joints, in dataset order. `device` defaults to where the
    model's parameters are.
    """
    net = unwrap(model)
    device = torch.device(device) if device is not None else next(net.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = net.training
    net.eval()
    com, refined, joints = [], [], []
    try:
        for batch in loader:
            offset = net(batch["image"].to(device))
            if not isinstance(offset, torch.Tensor) or offset.ndim != 2 or offset.shape[1] != 3:
                raise ValueError(
                    "localize needs a localization network returning (B, 3) offsets, got "
                    f"{type(offset).__name__}"
                )
            refined.append(decode_to_image(offset.float().cpu().numpy()[:, None], batch)[:, 0])
            com.append(batch["center_uvd"].numpy())
            joints.append(batch["uvd"].numpy())
    finally:
        net.train(was_training)
    source = getattr(dataset, "source", None)
    name = getattr(source, "dataset", "icvl")
    return CenterEstimates(
        com_uvd=np.concatenate(com).astype(np.float64),
        refined_uvd=np.concatenate(refined),
        joints_uvd=np.concatenate(joints).astype(np.float64),
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
