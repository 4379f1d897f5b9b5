"""The facts the notebooks assert in their last cell hold on good results and fail, naming the
fact, on the results of a model that learned nothing, a broken pipeline or a wrong Table 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from handpose_lib import notebook_checks, profiles, tables
from handpose_lib.evaluate import MethodResult
from handpose_lib.floors import Floor
from handpose_lib.notebook_checks import NotebookCheckFailed

CPU, SMOKE = profiles.PROFILES["cpu"], profiles.PROFILES["smoke"]
HISTORY = pd.DataFrame({"epoch": [1, 2], "train_loss": [3.0, 2.0], "val_mean_mm": [20.0, 9.0]})


def _result(mean_mm: float, frames: int = 4, joints: int = 16) -> MethodResult:
    return MethodResult("m", "", "icvl", "all", np.full((frames, joints), mean_mm))


def _floor(mean_mm: float, name: str = "test mean pose (oracle)") -> Floor:
    return Floor(name, np.zeros((4, 16, 3)), _result(mean_mm), {})


FLOORS = [_floor(18.25), _floor(26.1, "mean training pose")]


def test_smoke_and_paper_faithful_make_no_learning_promise():
    assert {n for n, p in profiles.PROFILES.items() if not p.promises_learning} == {
        "smoke",
        "paper_faithful",
    }


def test_pose_training_model_must_beat_the_lowest_floor_where_promised():
    checked = notebook_checks.pose_training(CPU, HISTORY, _result(9.7), FLOORS, 16)
    assert any("beats the test mean pose (oracle) (9.70 < 18.25 mm)" in c for c in checked)
    with pytest.raises(NotebookCheckFailed, match=r"beats the test mean pose .*does not hold"):
        notebook_checks.pose_training(CPU, HISTORY, _result(19.0), FLOORS, 16)
    # smoke promises nothing: an untrained model passes, the other facts still hold
    checked = notebook_checks.pose_training(SMOKE, HISTORY, _result(40.0), FLOORS, 16)
    assert not any("beats" in c for c in checked)
    assert len(checked) == 2


@pytest.mark.parametrize("profile", [CPU, SMOKE], ids=lambda p: p.name)
def test_pose_training_refuses_a_nan_loss_or_wrong_joints_at_any_profile(profile):
    nan_history = HISTORY.assign(train_loss=[3.0, float("nan")])
    with pytest.raises(NotebookCheckFailed, match="every logged loss is finite"):
        notebook_checks.pose_training(profile, nan_history, _result(9.7), FLOORS, 16)
    with pytest.raises(NotebookCheckFailed, match=r"each of the 14 joints.*\(4, 16\)"):
        notebook_checks.pose_training(profile, HISTORY, _result(9.7), FLOORS, 14)


def test_localization_refined_centres_must_beat_the_com_where_promised():
    errors = {"CoM": np.array([50.0, 60.0]), "LocNet": np.array([20.0, 30.0])}
    assert len(notebook_checks.hand_localization(CPU, HISTORY, errors, "CoM", "LocNet", 0.0)) == 4
    worse = {"CoM": errors["LocNet"], "LocNet": errors["CoM"]}
    with pytest.raises(NotebookCheckFailed, match=r"LocNet's centres beat the CoM \(55.00 < 25"):
        notebook_checks.hand_localization(CPU, HISTORY, worse, "CoM", "LocNet", 0.0)
    assert len(notebook_checks.hand_localization(SMOKE, HISTORY, worse, "CoM", "LocNet", 0.0)) == 3
    with pytest.raises(NotebookCheckFailed, match="round trip"):
        notebook_checks.hand_localization(SMOKE, HISTORY, errors, "CoM", "LocNet", 0.01)


def test_self_comparison_needs_equal_seeds_same_frames_and_every_variant_under_the_floor():
    good = {"plain": [_result(11.0)] * 3, "attention": [_result(7.4)] * 3}
    assert len(notebook_checks.self_comparison(CPU, good, FLOORS)) == 4
    with pytest.raises(NotebookCheckFailed, match="same number"):
        notebook_checks.self_comparison(SMOKE, {**good, "plain": [_result(11.0)] * 2}, FLOORS)
    with pytest.raises(NotebookCheckFailed, match="same frames"):
        notebook_checks.self_comparison(SMOKE, {**good, "plain": [_result(11.0, 5)] * 3}, FLOORS)
    plain_untrained = {**good, "plain": [_result(19.0)] * 3}
    with pytest.raises(NotebookCheckFailed, match=r"worst: plain 19.00 < 18.25"):
        notebook_checks.self_comparison(CPU, plain_untrained, FLOORS)
    assert len(notebook_checks.self_comparison(SMOKE, plain_untrained, FLOORS)) == 3


def _table1(shift_mm: float = 0.0) -> pd.DataFrame:
    rows = [
        {
            "method": name,
            "recomputed (mm)": round(mm + shift_mm, 3),
            "paper (mm)": mm,
            "source": "published predictions",
        }
        for ds in ("icvl", "nyu")
        for name, _, mm in tables.PAPER_TABLE1[ds]
    ]
    rows.append({"method": "Ours (paper)", "recomputed (mm)": None, "paper (mm)": 6.092})
    return pd.DataFrame(rows)


def test_table1_rows_must_equal_the_paper_to_three_decimals():
    assert notebook_checks.table1_rows(_table1(), ["icvl", "nyu"]) == [
        "Table 1 has the paper's 15 comparison rows",
        "all 15 rows equal the paper to 3 decimals",
    ]
    with pytest.raises(NotebookCheckFailed, match=r"DeepModel: 11.548 vs 11.547"):
        notebook_checks.table1_rows(_table1(0.001), ["icvl", "nyu"])
    with pytest.raises(NotebookCheckFailed, match=r"paper's 6 comparison rows.*got 15"):
        notebook_checks.table1_rows(_table1(), ["icvl"])


def test_data_preparation_compares_the_training_tensors_key_for_key():
    walkthrough = {
        "image": np.zeros((1, 8, 8), np.float32),
        "heatmaps": np.zeros((16, 4, 4), np.float32),
        "uvd_crop": np.ones((16, 3), np.float32),
    }
    item = {k: torch.from_numpy(v.copy()) for k, v in walkthrough.items()}
    item["center_uvd"] = torch.zeros(3)  # more keys in the item are fine
    checked = notebook_checks.data_preparation(item, walkthrough, 8, 4, 16, 0.0, 55.0)
    assert len(checked) == 6
    item["uvd_crop"][3, 0] = 0.5  # e.g. the loader's augmentation drawn from another seed
    with pytest.raises(NotebookCheckFailed, match=r"key for key.*differ: \['uvd_crop'\]"):
        notebook_checks.data_preparation(item, walkthrough, 8, 4, 16, 0.0, 55.0)
    item["uvd_crop"][3, 0] = 1.0
    with pytest.raises(NotebookCheckFailed, match=r"\(16, 8, 8\)"):
        notebook_checks.data_preparation(item, walkthrough, 8, 8, 16, 0.0, 55.0)
