"""The leaderboard of every registered method, on hand-built errors (no published files):
ranking, the paper's printed row, the 20 / 40 mm shares, the top-methods choice and the
MURAUER summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from handpose_lib import tables
from handpose_lib.evaluate import MethodResult

WITHIN_20 = tables.within_column(20)
WITHIN_40 = tables.within_column(40)


def result(name, mean_mm, dataset="icvl", subset="all", frames=6):
    """A method whose every joint of every frame is off by `mean_mm`."""
    joints = 16 if dataset == "icvl" else 14
    return MethodResult(name, f"{name}.txt", dataset, subset, np.full((frames, joints), mean_mm))


def test_shares_count_frames_whose_every_joint_is_within_the_threshold():
    errors = np.array(
        [
            [5.0, 19.0],  # worst 19: within 20 and 40
            [20.0, 20.0],  # worst exactly 20: counts (at most the threshold)
            [20.0, 21.0],  # one joint past 20: within 40 only
            [10.0, 40.0],  # within 40 only
            [41.0, 1.0],  # neither: one joint past 40
        ]
    )
    assert tables.frames_within_pct(errors, 20) == pytest.approx(40.0)
    assert tables.frames_within_pct(errors, 40) == pytest.approx(80.0)
    board = tables.leaderboard("icvl", [MethodResult("LRF", "f", "icvl", "all", errors)])
    row = board.set_index("method").loc["LRF"]
    assert (row[WITHIN_20], row[WITHIN_40]) == (40.0, 80.0)
    assert row["mean error (mm)"] == pytest.approx(errors.mean(), abs=1e-3)


def test_leaderboard_ranks_by_mean_error_with_the_paper_at_its_printed_mean():
    results = [result("LRF", 12.0), result("V2V-PoseNet", 6.3), result("A2J", 5.0)]
    board = tables.leaderboard("icvl", results)
    assert list(board["method"]) == ["A2J", tables.PAPER_ROW, "V2V-PoseNet", "LRF"]
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert list(board["paper"]) == [False, True, False, False]
    paper = board[board["paper"]].iloc[0]
    assert paper["mean error (mm)"] == tables.PAPER_OURS_MM["icvl"] == 6.092
    assert (paper["venue"], paper["year"]) == ("ICIP", 2018)
    assert paper["frames"] == 1596
    assert pd.isna(paper[WITHIN_20])
    assert pd.isna(paper[WITHIN_40])
    assert pd.isna(paper["test_seq_1 (mm)"])
    v2v = board.set_index("method").loc["V2V-PoseNet"]
    assert (v2v["venue"], v2v["year"], v2v[WITHIN_20], v2v[WITHIN_40]) == ("CVPR", 2018, 100, 100)
    assert list(board.columns) == [
        "rank",
        "method",
        "paper",
        "venue",
        "year",
        "frames",
        "test subset",
        "mean error (mm)",
        WITHIN_20,
        WITHIN_40,
        "test_seq_1 (mm)",
        "test_seq_2 (mm)",
        "note",
    ]


def test_leaderboard_without_the_paper_row_and_with_this_packages_model():
    ours = result("Ours (this package)", 30.0)
    board = tables.leaderboard("icvl", [result("LRF", 12.0), ours], paper_row=False)
    assert not board["paper"].any()
    row = board.set_index("method").loc["Ours (this package)"]
    assert row["venue"] == "this package"
    assert pd.isna(row["year"])
    assert row["note"] == "this package's model (Ours (this package).txt)"
    assert (row[WITHIN_20], row[WITHIN_40]) == (0.0, 100.0)


def test_subset_rows_stay_marked():
    board = tables.leaderboard("icvl", [result("DeepPrior", 9.0, subset="test_seq_1")])
    row = board.set_index("method").loc["DeepPrior"]
    assert row["test subset"] == "test_seq_1"
    assert row["note"] == "evaluated on test_seq_1 only"


def test_top_methods_take_the_best_table1_method_and_one_variant_per_family():
    results = [
        result("Virtual View Selection (15 views)", 4.0),
        result("Virtual View Selection (25 views)", 4.1),
        result("TriHorn-Net", 5.5),
        result("HandFoldingNet", 5.9),
        result("SRNet", 6.1),
        result("V2V-PoseNet", 6.3),
        result("Pose-REN", 6.8),
        result("DeepPrior", 3.0, subset="test_seq_1"),  # best, but on a subset only
    ]
    board = tables.leaderboard("icvl", results)
    chosen = tables.top_methods("icvl", board)
    assert chosen == [
        "Virtual View Selection (15 views)",
        "TriHorn-Net",
        "HandFoldingNet",
        "SRNet",
        "V2V-PoseNet",
    ]
    assert tables.top_methods("icvl", board, max_curves=3) == [
        "Virtual View Selection (15 views)",
        "TriHorn-Net",
        "V2V-PoseNet",
    ]
    assert tables.top_methods("icvl", board, max_curves=2, always=["SRNet"]) == [
        "SRNet",
        "V2V-PoseNet",
    ]
    with pytest.raises(KeyError, match="DeepPrior"):
        tables.top_methods("icvl", board, always=["DeepPrior"])
    with pytest.raises(ValueError, match="max_curves=1"):
        tables.top_methods("icvl", board, max_curves=1, always=["SRNet"])


def murauer_board():
    counts = {10: 16.0, 100: 12.0, 1000: 11.0, 10000: 10.0}
    results = [
        result(f"MURAUER (synthetic + {n} real labels)", mm, "nyu") for n, mm in counts.items()
    ]
    results += [result("MURAUER", 9.5, "nyu"), result("V2V-PoseNet", 8.4, "nyu")]
    results += [result("Virtual View Selection (25 views)", 6.4, "nyu")]
    return tables.leaderboard("nyu", results)


def test_murauer_reference_orders_by_real_labels_beside_the_best_and_the_paper():
    board = murauer_board()
    reference = tables.murauer_reference(board)
    assert list(reference["real labelled frames"]) == [10, 100, 1000, 10000, 72757, 72757, 72757]
    assert list(reference["role"]) == ["MURAUER"] * 5 + ["best method", "paper (as printed)"]
    assert list(reference["mean error (mm)"]) == [16.0, 12.0, 11.0, 10.0, 9.5, 6.4, 8.862]
    assert reference.iloc[-2]["method"] == "Virtual View Selection (25 views)"
    assert list(reference["rank"]) == [8, 7, 6, 5, 4, 1, 3]
    with pytest.raises(KeyError, match="no MURAUER rows"):
        tables.murauer_reference(tables.leaderboard("icvl", [result("LRF", 12.0)]))


def test_murauer_paragraph_states_the_computed_numbers():
    board = murauer_board()
    text = tables.murauer_paragraph(tables.murauer_reference(board), len(board))
    for fact in (
        "**16.00 mm** with 10 (rank 8)",
        "**10.00 mm** with 10,000 (rank 5)",
        "with all 72,757 real training frames labelled, 9.50 mm (rank 4)",
        "Virtual View Selection (25 views), reaches 6.40 mm",
        "the paper prints 8.86 mm (rank 3)",
        "+1.14 mm with 10,000, +7.14 mm with 10 real labels",
        "0.0 % with 10 real labels",
    ):
        assert fact in text


def test_tables_write_missing_cells_as_dashes_and_shares_with_one_decimal(tmp_path):
    board = tables.leaderboard("icvl", [result("LRF", 12.0), result("A2J", 25.0)])
    csv_path, md_path = tables.write_table(board, tmp_path, "leaderboard_icvl")
    back = pd.read_csv(csv_path)
    assert back.loc[back["paper"], "method"].tolist() == [tables.PAPER_ROW]
    paper_line = next(line for line in md_path.read_text().splitlines() if "Ours (paper)" in line)
    assert "nan" not in paper_line
    assert "—" in paper_line
    a2j_line = next(line for line in md_path.read_text().splitlines() if "A2J" in line)
    cells = [cell.strip() for cell in a2j_line.split("|")]
    assert {"25.000", "0.0", "100.0", "2019"} <= set(cells)
