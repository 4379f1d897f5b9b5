"""Centre estimates: errors in mm, one inference pass of a localization network, summaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from handpose_lib import centers
from handpose_lib.camera import ICVL
from handpose_lib.datasets.synthetic import SyntheticSource
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.models import hand_center_target
from handpose_lib.preprocess import CropConfig

SIZE = 16


class FixedOffsets(nn.Module):
    """Stands in for LocNet: returns the given (N, 3) offsets, batch after batch."""

    def __init__(self, offsets: torch.Tensor) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.offsets, self.seen = offsets, 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = self.offsets[self.seen : self.seen + len(image)]
        self.seen += len(image)
        return out + 0 * self.anchor


@pytest.fixture(scope="module")
def dataset() -> HandPoseDataset:
    config = CropConfig.for_dataset("icvl", input_size=SIZE, heatmap_size=SIZE // 2)
    return HandPoseDataset(SyntheticSource(5, seed=3), config, centers="com")


def test_center_errors_are_3d_distances_in_mm():
    true_xyz = np.array([[0.0, 0.0, 400.0], [30.0, -20.0, 500.0]])
    moved_xyz = true_xyz + np.array([[10.0, 0.0, 0.0], [0.0, 3.0, 4.0]])
    errors = centers.center_errors_mm(ICVL.xyz_to_uvd(moved_xyz), ICVL.xyz_to_uvd(true_xyz), ICVL)
    np.testing.assert_allclose(errors, [10.0, 5.0], atol=1e-9)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        centers.center_errors_mm(np.zeros((2, 3)), np.zeros((3, 3)), ICVL)


def test_zero_offset_returns_the_com(dataset):
    est = centers.localize(FixedOffsets(torch.zeros(len(dataset), 3)), dataset, batch_size=2)
    com = np.array([dataset[i]["center_uvd"].numpy() for i in range(len(dataset))])
    np.testing.assert_allclose(est.com_uvd, com)
    np.testing.assert_allclose(est.refined_uvd, com, atol=1e-6)
    errors = est.errors_mm()
    np.testing.assert_allclose(errors[centers.COM_LABEL], errors[centers.REFINED_LABEL], atol=1e-4)
    assert errors[centers.COM_LABEL].mean() > 5.0  # the forearm pulls the CoM off the hand


def test_perfect_offsets_recover_the_true_centre(dataset):
    uvd_crop = torch.stack([dataset[i]["uvd_crop"] for i in range(len(dataset))])
    est = centers.localize(FixedOffsets(hand_center_target(uvd_crop)), dataset, batch_size=2)
    np.testing.assert_allclose(est.refined_uvd, est.true_uvd, atol=1e-3)
    assert est.errors_mm()[centers.REFINED_LABEL].max() < 0.01
    assert est.dataset == "icvl"
    assert est.joints_uvd.shape == (5, 16, 3)


def test_estimates_check_shapes():
    with pytest.raises(ValueError, match="refined_uvd must be"):
        centers.CenterEstimates(np.zeros((2, 3)), np.zeros((3, 3)), np.ones((2, 16, 3)), "icvl")
    with pytest.raises(ValueError, match=r"unknown|dataset"):
        centers.CenterEstimates(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 16, 3)), "x")


def test_localize_rejects_a_pose_network(dataset):
    class Pose(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, image):
            return {"uvd_crop": torch.zeros(len(image), 16, 3)}

    with pytest.raises(ValueError, match=r"\(B, 3\) offsets"):
        centers.localize(Pose(), dataset)


def test_summary_rows_and_thresholds():
    table = centers.summarize({"a": np.array([1.0, 4.0, 12.0, 30.0])}, thresholds_mm=(5, 20))
    row = table.loc["a"]
    assert row["mean (mm)"] == pytest.approx(11.75)
    assert row["median (mm)"] == pytest.approx(8.0)
    assert (row["within 5 mm"], row["within 20 mm"]) == (0.5, 0.75)
    with pytest.raises(ValueError, match="non-empty"):
        centers.summarize({"b": np.array([])})
