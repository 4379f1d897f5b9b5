"""Charts: save_figure, Fig. 3 panels with seed bands and floors, training curves, centre
errors. Each figure renders, labels its axes and keeps its legend off the data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image

from handpose_lib import measures, plots, tables
from handpose_lib.evaluate import MethodResult
from handpose_lib.joints import JOINT_NAMES


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def result(name, scale, seed=0, frames=40):
    rng = np.random.default_rng(seed)
    errors = np.abs(rng.normal(scale, scale / 3, (frames, 16)))
    return MethodResult(name, f"{name}.txt", "icvl", "all", errors)


def history(val_every=3):
    epochs = np.arange(1, 7)
    val = [32.6 - 2 * e if e % val_every == 0 else np.nan for e in epochs]
    return pd.DataFrame(
        {
            "epoch": epochs,
            "lr": [1e-3] * 5 + [1e-4],
            "train_loss": np.geomspace(1.0, 0.3, 6),
            "train_det_0": np.geomspace(0.3, 0.1, 6),
            "train_det_1": np.geomspace(0.35, 0.1, 6),
            "train_det": np.geomspace(0.65, 0.2, 6),
            "train_reg": np.geomspace(0.5, 0.2, 6),
            "val_mean_error_mm": val,
        }
    )


# ------------------------------------------------------------------------------ save_figure


@pytest.fixture
def both_formats(monkeypatch):
    """What a user gets: both formats, at FIGURE_DPI (the test session sets PNG only, 72)."""
    monkeypatch.delenv(plots.ENV_FIGURE_FORMATS, raising=False)
    monkeypatch.delenv(plots.ENV_FIGURE_DPI, raising=False)


def test_figure_formats_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(plots.ENV_FIGURE_FORMATS, "png")
    assert plots.figure_formats() == ("png",)
    monkeypatch.setenv(plots.ENV_FIGURE_FORMATS, "")
    assert plots.figure_formats() == ("png", "pdf")
    monkeypatch.setenv(plots.ENV_FIGURE_FORMATS, "png,svg")
    with pytest.raises(ValueError, match="HANDPOSE_FIGURE_FORMATS='png,svg'"):
        plots.figure_formats()


def test_figure_dpi_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(plots.ENV_FIGURE_DPI, "300")
    assert plots.figure_dpi() == 300.0
    monkeypatch.setenv(plots.ENV_FIGURE_FORMATS, "png")
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    (path,) = plots.save_figure(fig, "line", tmp_path)
    with Image.open(path) as png:
        assert png.info["dpi"] == pytest.approx((300, 300), abs=0.05)
    monkeypatch.setenv(plots.ENV_FIGURE_DPI, " ")
    assert plots.figure_dpi() == plots.FIGURE_DPI
    for bad in ("high", "0", "5000"):
        monkeypatch.setenv(plots.ENV_FIGURE_DPI, bad)
        with pytest.raises(ValueError, match=rf"HANDPOSE_FIGURE_DPI='{bad}': expected dots per"):
            plots.figure_dpi()


@pytest.mark.usefixtures("both_formats")
def test_save_figure_writes_png_and_pdf_at_one_dpi(tmp_path):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    paths = plots.save_figure(fig, "curve", tmp_path / "new" / "folder")
    assert [p.name for p in paths] == ["curve.png", "curve.pdf"]
    assert paths[1].read_bytes().startswith(b"%PDF")
    with Image.open(paths[0]) as png:
        dpi = png.info["dpi"]
    assert dpi == pytest.approx(
        (plots.FIGURE_DPI, plots.FIGURE_DPI), abs=0.05
    )  # PNG stores pixels per metre


@pytest.mark.usefixtures("both_formats")
def test_save_figure_pdf_is_reproducible(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    first = plots.save_figure(fig, "a", tmp_path / "1")[1].read_bytes()
    second = plots.save_figure(fig, "a", tmp_path / "2")[1].read_bytes()
    assert first == second


@pytest.mark.parametrize("name", ["", "loc_crops.png", "sub/loc_crops"])
def test_save_figure_rejects_names_that_are_not_stems(tmp_path, name):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="file stem"):
        plots.save_figure(fig, name, tmp_path)


# ---------------------------------------------------------------------------- Fig. 3 panels


def legend_clear_of_axes(fig, ax):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    return not legend.overlaps(ax.get_window_extent(renderer))


def test_success_figure_keeps_the_legend_off_the_curves():
    shown = [result("plain", 20), result("attention", 30)]
    fig = plots.success_figure(shown, "max", "Fig. 3 (b)")
    ax = fig.axes[0]
    assert legend_clear_of_axes(fig, ax)
    assert ax.get_xlabel() == plots.SUCCESS_LABELS["max"][0]
    assert len(ax.lines) == 2


def test_seed_bands_shade_the_range_of_seeds_in_the_curve_colours():
    by_method = {"a": [result("a", 10, s) for s in range(3)], "b": [result("b", 30)]}
    pooled = [result("a", 10), result("b", 30)]
    fig = plots.success_figure(pooled, "max", seed_bands=by_method)
    ax = fig.axes[0]
    assert len(ax.collections) == 1  # "b" has one seed: no band
    band = ax.collections[0]
    np.testing.assert_allclose(band.get_facecolor()[0][:3], ax.lines[0].get_color()[:3])
    with pytest.raises(ValueError, match="success curve 'median'"):
        plots.plot_seed_bands(ax, by_method, "median")


def test_floors_are_drawn_as_labelled_references():
    shown = [result("attention", 30)]
    floors = [result("floor: test mean pose", 18), result("floor: training mean pose", 26)]
    fig = plots.per_joint_figure(shown, JOINT_NAMES["icvl"], "(a)", floors=floors)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["attention", "floor: test mean pose", "floor: training mean pose"]
    marks = fig.axes[0].collections[0].get_segments()
    assert len(marks) == 17  # 16 joints + "Mean"
    np.testing.assert_allclose(marks[-1][:, 1], floors[0].mean_error_mm)
    fig = plots.success_figure(shown, "max", floors=floors)
    assert [line.get_label() for line in fig.axes[0].lines][1:] == [f.name for f in floors]
    assert all(line.get_marker() in ("None", None, "") for line in fig.axes[0].lines[1:])


# --------------------------------------------------------------------------- training curves


def test_validation_points_are_joined_across_epochs_without_validation():
    fig = plots.training_curves_figure(history(), "attention", val_name="rendered poses")
    val_ax = fig.axes[1]
    (line,) = [ln for ln in val_ax.lines if ln.get_color() == "tab:red"]
    np.testing.assert_allclose(line.get_xdata(), [3, 6])
    assert line.get_linestyle() == "-"  # a line, not isolated points
    assert val_ax.get_ylabel() == "mean 3D joint error (mm)"
    assert "rendered poses" in val_ax.get_title()
    assert len(fig.axes) == 2  # the learning rate is shaded in, not a twin axis
    # Two learning rates: epochs 1-5 at 1e-3, epoch 6 at 1e-4, named at the top.
    assert [t.get_text() for t in val_ax.texts if t.get_text().startswith("lr")] == [
        "lr 0.001",
        "lr 0.0001",
    ]


def test_lr_segments_group_consecutive_epochs():
    assert plots.lr_segments(history()) == [(1, 5, 1e-3), (6, 6, 1e-4)]
    warm = pd.DataFrame({"epoch": [1, 2, 3, 4], "lr": [0.1, 0.01, 0.01, 0.1]})
    assert plots.lr_segments(warm) == [(1, 1, 0.1), (2, 3, 0.01), (4, 4, 0.1)]


def test_training_curves_draw_the_floors():
    floors = [("floor: test mean pose (oracle)", 18.25), ("training mean pose", 26.0)]
    fig = plots.training_curves_figure(history(), floors=floors)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "floor: test mean pose (oracle) (18.2 mm)" in labels
    assert "floor: training mean pose (26.0 mm)" in labels
    levels = sorted(
        ln.get_ydata()[0] for ln in fig.axes[1].lines if ln.get_label().startswith("floor")
    )
    assert levels == [18.25, 26.0]


def test_loss_panel_shows_each_stack_and_the_depth_term():
    fig = plots.training_curves_figure(history())
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [
        "total L (Eq. 1)",
        "$L_{det}^{1}$ (stack 1)",
        "$L_{det}^{2}$ (stack 2)",
        "$L_{reg}$ (depth)",
    ]
    assert fig.axes[0].get_yscale() == "log"


def test_locnet_history_has_one_loss_and_a_named_validation_axis():
    locnet = history(val_every=1)[["epoch", "lr", "train_loss", "val_mean_error_mm"]]
    fig = plots.training_curves_figure(locnet, val_ylabel="validation centre error (mm)")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training loss"]
    assert fig.axes[1].get_ylabel() == "validation centre error (mm)"


def test_validation_by_step_draws_seed_means_seed_lines_floors_and_the_lr():
    seeds = [history(val_every=2), history(val_every=2)]
    seeds[1]["val_mean_error_mm"] += 2.0
    fig = plots.validation_by_step_figure(
        {"direct": seeds, "attention": [history(val_every=2)]},
        steps_per_epoch=128,
        title="t",
        floors=[("test mean pose", 18.3)],
    )
    ax = fig.axes[0]
    direct, seed0, seed1, attention, floor = ax.get_lines()
    np.testing.assert_array_equal(direct.get_xdata(), [256, 512, 768])
    np.testing.assert_allclose(direct.get_ydata(), [29.6, 25.6, 21.6])  # mean of the 2 seeds
    np.testing.assert_allclose(seed1.get_ydata() - seed0.get_ydata(), 2.0)  # each seed drawn
    assert seed0.get_color() == direct.get_color()
    assert direct.get_label() == "direct (2 seeds)"
    assert attention.get_label() == "attention"
    assert floor.get_label() == "floor: test mean pose (18.3 mm)"
    # The lr drop after epoch 5 (step 640) is marked: two bands named at the top.
    assert [t.get_text() for t in ax.texts] == ["lr 0.001", "lr 0.0001"]
    by_epoch = plots.validation_by_step_figure({"direct": seeds}, steps_per_epoch=None)
    assert by_epoch.axes[0].get_xlabel() == "epoch"
    np.testing.assert_array_equal(by_epoch.axes[0].get_lines()[0].get_xdata(), [2, 4, 6])
    with pytest.raises(ValueError, match="direct: its runs validated at different epochs"):
        plots.validation_by_step_figure({"direct": [history(2), history(3)]}, 128)
    plt.close(fig)


def test_training_curves_name_missing_columns():
    with pytest.raises(ValueError, match=r"lacks columns \['val_mean_error_mm'\]"):
        plots.training_curves_figure(history().drop(columns="val_mean_error_mm"))


# ----------------------------------------------------------------------------- centre errors


def test_error_histograms_report_the_mean_and_reject_empty_input():
    _, ax = plt.subplots()
    plots.plot_error_histograms(ax, {"CoM": np.array([10.0, 20.0, 60.0])})
    assert ax.get_legend().get_texts()[0].get_text() == "CoM: mean 30.0 mm"
    with pytest.raises(ValueError, match="non-empty"):
        plots.plot_error_histograms(ax, {"CoM": np.array([])})


def test_centre_error_figure_has_histogram_cumulative_curve_and_bias():
    rng = np.random.default_rng(0)
    joints = rng.normal([0.0, 0.0, 500.0], 30.0, size=(50, 16, 3))
    errors, offsets = {}, {}
    for label, spread in (("CoM", 40.0), ("refined", 8.0)):
        centre = joints.mean(axis=1) + rng.normal(0, spread, (50, 3))
        offsets[label] = measures.offsets_along_hand(centre, joints, "icvl")
        errors[label] = offsets[label]["total"]
    fig = plots.centre_error_figure(errors, offsets, "centres")
    hist, cumulative, bias = fig.axes
    assert hist.get_title() == "centre error, 50 frames"
    assert cumulative.get_ylabel() == "fraction of frames within"
    fractions = cumulative.lines[1].get_ydata()
    assert np.all(np.diff(fractions) >= 0)
    assert fractions[-1] == pytest.approx(1.0)
    assert [t.get_text() for t in bias.get_xticklabels()] == ["toward wrist", "across", "depth"]
    heights = [p.get_height() for p in bias.patches]
    assert heights[0] == pytest.approx(offsets["CoM"]["toward_wrist"].mean())


# ------------------------------------------------------------------------------ leaderboard


def flat(name, mm, dataset="icvl", subset="all"):
    joints = 16 if dataset == "icvl" else 14
    return MethodResult(name, f"{name}.txt", dataset, subset, np.full((5, joints), float(mm)))


def boards():
    """Small ICVL and NYU leaderboards of registered methods (years 2014-2019, one method on
    a test subset), the paper's printed rows included."""
    icvl = [
        flat(name, mm)
        for name, mm in (
            ("LRF", 12.0),
            ("DeepModel", 11.0),
            ("REN-4x6x6", 7.6),
            ("V2V-PoseNet", 6.3),
            ("Point-to-Point", 6.2),
            ("A2J", 6.4),
        )
    ]
    icvl.append(flat("DeepPrior", 10.0, subset="test_seq_1"))
    nyu = [
        flat(n, mm, "nyu")
        for n, mm in (("Feedback", 16), ("DeepPrior++", 12.2), ("V2V-PoseNet", 8.4))
    ]
    return {"icvl": tables.leaderboard("icvl", icvl), "nyu": tables.leaderboard("nyu", nyu)}


def test_by_year_figure_has_one_point_per_method_and_marks_the_paper():
    shown = boards()
    fig = plots.leaderboard_by_year_figure(shown, "progress")
    for ax, (dataset, board) in zip(fig.axes, shown.items(), strict=True):
        points = {c.get_label(): c.get_offsets() for c in ax.collections}
        assert sum(len(p) for p in points.values()) == len(board)  # one point per row
        (paper,) = points["Ours (paper), as printed"]
        assert paper[1] == tables.PAPER_OURS_MM[dataset]
        assert abs(paper[0] - tables.PAPER_YEAR) <= 0.3
        assert ax.get_title().startswith(f"{dataset.upper()}: {len(board) - 1} registered")
    icvl = fig.axes[0]
    assert len(points_of(icvl, "method, on a test subset only")) == 1
    labels = [t.get_text() for t in icvl.texts]
    assert "Ours (paper) 6.09" in labels
    assert "LRF 12.00" in labels
    assert "DeepModel 11.00" in labels
    assert "Point-to-Point 6.20" in labels  # the best of 2018 besides the paper
    assert "V2V-PoseNet 6.30" not in labels
    fig.canvas.draw()
    boxes = [Text.get_window_extent(t) for t in icvl.texts]  # the text, not the leader line
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert all(fig.axes[0].bbox.contains(b.x0, b.y0) for b in boxes)


def points_of(ax, label):
    (collection,) = [c for c in ax.collections if c.get_label() == label]
    return collection.get_offsets()


def test_best_so_far_steps_down_over_years_and_counts_the_paper():
    best = plots.best_so_far(boards()["icvl"])
    assert list(best.index) == [2014, 2015, 2016, 2017, 2018, 2019]  # subset rows not counted
    assert list(best) == [12.0, 12.0, 11.0, 7.6, 6.092, 6.092]


def test_year_positions_spread_the_points_of_one_year_in_order_of_error():
    board = boards()["icvl"]
    x = plots.year_positions(board).set_axis(board["method"])
    assert x["LRF"] == 2014
    assert x["Ours (paper)"] < x["Point-to-Point"] < x["V2V-PoseNet"] < 2018.35
    assert x["Ours (paper)"] > 2017.65


def test_top_methods_panels_draw_at_most_five_curves_and_the_papers_mean():
    shown = [result(f"m{k}", 10 + k, seed=k) for k in range(5)]
    per_joint, success = plots.top_methods_figures(shown, JOINT_NAMES["icvl"], "ICVL", 6.092)
    ax = per_joint.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [*(r.name for r in shown), "Ours (paper), as printed: 6.092 mm (mean only)"]
    (mark,) = ax.collections[0].get_segments()
    np.testing.assert_allclose(mark[:, 1], 6.092)
    np.testing.assert_allclose(mark[:, 0].mean(), 16)  # over the "Mean" group
    curves = [line for line in success.axes[0].lines if not line.get_label().startswith("_")]
    assert len(curves) <= plots.MAX_TOP_CURVES == 5
    assert [line.get_label() for line in curves] == [r.name for r in shown]
    assert legend_clear_of_axes(success, success.axes[0])
    with pytest.raises(ValueError, match="1 to 5 methods"):
        plots.top_methods_figures([*shown, result("m5", 20)], JOINT_NAMES["icvl"])
