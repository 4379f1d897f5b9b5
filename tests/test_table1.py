"""Table 1 of the paper recomputed from the published predictions."""

import pandas as pd
import pytest

from handpose_lib import evaluate, plots, tables
from handpose_lib.joints import JOINT_NAMES


@pytest.fixture(scope="module")
def results(published_dir):
    return {ds: evaluate.evaluate_published(ds, local_dir=published_dir) for ds in ("icvl", "nyu")}


@pytest.mark.parametrize("dataset", ["icvl", "nyu"])
def test_comparison_rows_equal_the_paper_to_three_decimals(results, dataset):
    by_name = {r.name: r for r in results[dataset]}
    for name, _, paper_mm in tables.PAPER_TABLE1[dataset]:
        assert f"{by_name[name].mean_error_mm:.3f}" == f"{paper_mm:.3f}", name


def test_table1_has_every_row_and_marks_ours_as_printed(results):
    table = tables.table1(results)
    assert len(table) == 6 + 1 + 9 + 1
    ours = table[table["method"] == "Ours (paper)"]
    assert list(ours["paper (mm)"]) == [6.092, 8.862]
    assert ours["recomputed (mm)"].isna().all()
    compared = table[table["source"] == "published predictions"]
    assert (compared["difference (mm)"] == 0).all()


def test_table1_adds_this_packages_model(results):
    icvl_ours = results["icvl"][0]
    table = tables.table1({"icvl": results["icvl"]}, ours={"icvl": icvl_ours})
    row = table[table["method"] == "Ours (this package)"].iloc[0]
    assert row["recomputed (mm)"] == round(icvl_ours.mean_error_mm, 3)


def test_leaderboard_is_sorted_and_marks_subsets(results):
    board = tables.leaderboard("icvl", results["icvl"])
    assert list(board["mean error (mm)"]) == sorted(board["mean error (mm)"])
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    partial = board[board["test subset"] != "all"]
    assert set(partial["method"]) == {"DeepPrior", "DeepPrior-Refinement"}
    assert (partial["note"] == "evaluated on test_seq_1 only").all()


def test_leaderboard_has_per_subset_columns(results):
    icvl_board = tables.leaderboard("icvl", results["icvl"]).set_index("method")
    v2v = icvl_board.loc["V2V-PoseNet"]
    weighted = (v2v["test_seq_1 (mm)"] * 702 + v2v["test_seq_2 (mm)"] * 894) / 1596
    assert weighted == pytest.approx(v2v["mean error (mm)"], abs=1e-3)
    deep_prior = icvl_board.loc["DeepPrior"]  # covers test_seq_1 only
    assert deep_prior["test_seq_1 (mm)"] == deep_prior["mean error (mm)"]
    assert pd.isna(deep_prior["test_seq_2 (mm)"])
    nyu_board = tables.leaderboard("nyu", results["nyu"])
    assert nyu_board[["subject_1 (mm)", "subject_2 (mm)"]].notna().all().all()


def test_tables_written_as_csv_and_markdown(results, tmp_path):
    csv_path, md_path = tables.write_table(tables.table1(results), tmp_path, "table1")
    assert pd.read_csv(csv_path)["method"].tolist()[0] == "DeepModel"
    assert "| V2V-PoseNet" in md_path.read_text()


def test_figure_panels_saved_as_png_and_pdf(results, tmp_path):
    shown = results["nyu"][:3]
    fig = plots.per_joint_figure(shown, JOINT_NAMES["nyu"], "upper")
    paths = plots.save_figure(fig, "per_joint", tmp_path)
    fig = plots.success_figure(shown, "max", "lower")
    paths += plots.save_figure(fig, "success", tmp_path)
    for path in paths:
        assert path.stat().st_size > 1000
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert paths[1].read_bytes().startswith(b"%PDF")


def test_styles_distinguishable_without_colour():
    styles = plots.method_styles(10)
    assert len({(s["hatch"], s["marker"]) for s in styles}) == 10
