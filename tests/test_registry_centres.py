"""Crop centres named by source ("registry:v2v"): the registered community centre file of the
frames' dataset and split, used like a local centre file; and the centre table that scores
every centre against both references with its bias and spread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from handpose_lib import center_files, centers
from handpose_lib.camera import ICVL
from handpose_lib.profiles import make_run_config
from handpose_lib.training.config import SourceSpec, center_kind
from handpose_lib.training.data import (
    build_dataset,
    centers_option,
    community_center_file,
    registry_split,
)


def test_registry_centres_are_a_named_source_not_a_file():
    assert center_kind("registry:v2v") == ("registry", "v2v")
    assert centers_option("registry:v2v") == "registry:v2v"  # not made into a path
    with pytest.raises(ValueError, match=r"expected registry:SOURCE, e.g. registry:v2v"):
        SourceSpec("rendered", centers="registry:")


def test_the_frames_say_which_registered_file_serves_them():
    assert registry_split(SourceSpec("icvl", split="test")) == ("icvl", "test")
    assert registry_split(SourceSpec("nyu", split="train")) == ("nyu", "train")
    # The rendered poses are the published ICVL test frames, in their order.
    assert registry_split(SourceSpec("rendered")) == ("icvl", "test")
    with pytest.raises(ValueError, match=r"not to 'synthetic' frames; use com, joints"):
        registry_split(SourceSpec("synthetic", num_frames=2, centers="registry:v2v"))


def test_no_registered_file_for_a_split_names_the_alternatives():
    with pytest.raises(ValueError, match=r"no registered centre file for icvl train.*registered:"):
        center_files.registered_centers("icvl", "train", source="v2v")


@pytest.mark.usefixtures("published_dir")
def test_rendered_test_poses_cropped_at_the_registered_v2v_centres():
    """Four evenly spaced rendered test frames: each crop is centred on its line of V2V's ICVL
    test file (the file covers the 1596 frames; the subset picks its lines)."""
    config = make_run_config("smoke", "attention")
    spec = SourceSpec("rendered", num_frames=4, centers="registry:v2v")
    said: list[str] = []
    dataset = build_dataset(config, "val", spec, report=said.append)
    registered = center_files.registered_centers("icvl", "test", source="v2v")
    expected = registered.uvd(ICVL)[dataset.source.indices]
    got = np.stack([dataset.sample(i)["center_uvd"] for i in range(4)])
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert said[0].startswith("registry:v2v (")
    assert "icvl_center_test.mat): 4 centres; 0 marked 'invalid'" in said[0]


def _errors(offsets_mm: np.ndarray) -> center_files.CenterErrors:
    distances = np.linalg.norm(offsets_mm, axis=1)
    return center_files.CenterErrors(distances, len(offsets_mm), 0, "centroid", offsets_mm)


def test_bias_and_spread_by_hand():
    shifted = _errors(np.array([[3.0, 4.0, 0.0]] * 4))  # the same 5 mm shift on every frame
    assert (shifted.bias_mm, shifted.spread_mm) == (5.0, 0.0)
    scattered = _errors(np.array([[6.0, 0, 0], [-6.0, 0, 0], [0, 6.0, 0], [0, -6.0, 0]]))
    assert scattered.bias_mm == 0.0
    assert scattered.spread_mm == pytest.approx(6.0)
    assert scattered.mean_mm == pytest.approx(6.0)  # same mean distance, no bias at all


def test_centre_table_scores_every_source_against_both_references():
    """Two frames whose joints all sit at one point (centroid = palm): a source 10 mm off in x
    on both frames has bias 10 and spread 0 against either reference."""
    joints_xyz = np.array([[[0.0, 0.0, 500.0]] * 16, [[20.0, 0.0, 500.0]] * 16])
    joints_uvd = ICVL.xyz_to_uvd(joints_xyz)
    true_uvd = joints_uvd[:, 0]
    off_uvd = ICVL.xyz_to_uvd(joints_xyz[:, 0] + np.array([10.0, 0.0, 0.0]))
    estimates = centers.CenterEstimates(off_uvd, true_uvd, joints_uvd, "icvl")
    file = center_files.CenterFile("by hand", joints_xyz[:, 0], np.array([True, True]))
    table = centers.centre_table(estimates, {"a file": file})
    assert list(table.columns.get_level_values(0).unique()) == ["joint centroid", "palm joint"]
    assert list(table.index) == [centers.COM_LABEL, centers.REFINED_LABEL, "a file"]
    for reference in ("joint centroid", "palm joint"):
        com = table.loc[centers.COM_LABEL, reference]
        assert com["bias (mm)"] == pytest.approx(10.0)
        assert com["spread (mm)"] == pytest.approx(0.0, abs=1e-9)
        assert table.loc["a file", (reference, "mean (mm)")] == pytest.approx(0.0, abs=1e-9)
    assert isinstance(table, pd.DataFrame)


@pytest.mark.usefixtures("published_dir")
def test_one_function_gives_a_named_community_file_as_crops_and_notebook_02_use_it():
    spec = SourceSpec("rendered", centers="registry:v2v")
    found = community_center_file(spec)
    assert found.path.startswith("registry:v2v (")
    assert found.path.endswith("icvl_center_test.mat)")
    registered = center_files.registered_centers("icvl", "test", source="v2v")
    np.testing.assert_array_equal(found.xyz_mm, registered.xyz_mm(ICVL))
    with pytest.raises(ValueError, match=r"'com': not a community centre file"):
        community_center_file(SourceSpec("rendered", centers="com"))
