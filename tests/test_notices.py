"""The "what to notice" sentences: computed from the numbers, and they change with them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from handpose_lib import notices
from handpose_lib.evaluate import MethodResult
from handpose_lib.floors import Floor
from handpose_lib.notebook import COM, LOCNET, ORACLE


def result(mean_mm: float) -> MethodResult:
    return MethodResult("m", "", "icvl", "all", np.full((4, 16), mean_mm))


def floor(name: str, mean_mm: float) -> Floor:
    return Floor(name, np.zeros((4, 16, 3)), result(mean_mm), {})


PARTS = {"2D error (mm)": 6.0, "depth error (mm)": 3.0}


def test_pose_errors_reads_the_table():
    floors = [floor("floor: test mean pose (oracle)", 18.0), floor("floor: train", 25.0)]
    at = {LOCNET: (result(9.0), PARTS), COM: (result(30.0), PARTS), ORACLE: (result(8.0), PARTS)}
    text = notices.pose_errors(at, floors)
    assert "At the LocNet centre the model's mean error is 9.00 mm, 50% of the lowest" in text
    assert "it reads the pose from the image" in text
    assert "out of the training distribution" in text
    assert "the 2D (u, v) part is larger: 6.00 mm" in text
    untrained = notices.pose_errors({LOCNET: (result(20.0), PARTS)}, floors)
    assert "does **not** beat a constant pose" in untrained
    assert "out of the training distribution" not in untrained


def test_training_curve_names_the_lr_drop():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4, 5, 6],
            "lr": [1e-3] * 5 + [1e-4],
            "val_mean_error_mm": [np.nan, np.nan, 12.2, np.nan, np.nan, 9.7],
        }
    )
    text = notices.training_curve(history)
    assert "from 12.20 mm (epoch 3) to 9.70 mm (epoch 6)" in text
    assert "dropped at epoch 6" in text
    assert "12.20 mm) compares with the first after it (9.70 mm)" in text


def test_centre_errors_and_offsets():
    text = notices.centre_errors(
        {"CoM": np.array([50.0, 60.0]), "net": np.array([10.0, 70.0])}, "CoM", "net"
    )
    assert "40.0 mm from the hand centre against 55.0 mm for the CoM (-27%)" in text
    assert "improves 50% of the frames" in text
    table = pd.DataFrame(
        [
            {
                "estimate": "CoM",
                "reference": "joint centroid",
                "bias (mm)": 48.0,
                "spread (mm)": 20.0,
            },
            {"estimate": "CoM", "reference": "palm joint", "bias (mm)": 10.0, "spread (mm)": 21.0},
        ]
    )
    text = notices.centre_offsets(table)
    assert "CoM vs joint centroid: bias 48.0 mm, spread 20.0 mm" in text
    assert "CoM vs palm joint: bias 10.0 mm" in text


def test_table1_rows():
    assert "All 15 rows" in notices.table1_rows(15, 15)
    assert "14 of 15 rows" in notices.table1_rows(14, 15)


def test_attention_contrast_compares_hand_and_background_pixels():
    images = np.ones((1, 8, 8))
    images[0, :4] = 0.2  # the top half of the crop is hand
    masks = np.zeros((1, 2, 4, 4))
    masks[0, 0, :2] = 0.9  # channel 0: open over the hand only
    masks[0, 1] = 0.5  # channel 1: the same everywhere
    text = notices.attention_contrast(images, masks, [0])
    assert "the shown masks average 0.90, over the background 0.00" in text
    assert "all 2 channels 0.70 against 0.25" in text


def test_surface_gaps_name_the_worst_crop():
    text = notices.surface_gaps({"original crop": 8.0, "rotation +60 deg": 9.5})
    assert "at most 9.5 mm (rotation +60 deg)" in text
    assert "moved together in every crop" in text
    assert "check that crop" in notices.surface_gaps({"bad": 80.0})
