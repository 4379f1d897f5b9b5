"""The notebook set-up: one call gives profile, folders and configs; headless and explorers."""

from __future__ import annotations

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

from handpose_lib import notebook, paths, plots, reproduce
from handpose_lib.evaluate import MethodResult
from handpose_lib.floors import Floor


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("HANDPOSE_PROFILE", "HANDPOSE_HEADLESS", "HANDPOSE_RUN_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HANDPOSE_FIGURES_DIR", str(tmp_path / "figures"))
    return tmp_path


def test_start_creates_a_missing_run_folder(clean_env, monkeypatch):
    missing = clean_env / "not" / "yet"
    monkeypatch.setenv("HANDPOSE_RUN_DIR", str(missing))
    nb = notebook.start("smoke")
    assert nb.run_dir == missing.resolve()
    assert missing.is_dir()
    assert nb.figures_dir.is_dir()


def test_profile_env_overrides_the_parameter(clean_env, monkeypatch):
    monkeypatch.setenv("HANDPOSE_PROFILE", "smoke")
    nb = notebook.start("paper", run_dir=str(clean_env / "run"))
    assert nb.profile.name == "smoke"
    assert nb.crop_config.heatmap_sigma == nb.profile.heatmap_sigma


def test_unknown_dataset_is_rejected(clean_env):
    with pytest.raises(ValueError, match="DATASET='msra'"):
        notebook.start("smoke", "msra", run_dir=str(clean_env / "run"))


def test_pose_runs_validate_at_locnet_centres_once_they_exist(clean_env):
    nb = notebook.start("smoke", run_dir=str(clean_env / "run"))
    config = nb.run_config("attention")
    assert config.data.train.centers == "joints"  # pose training crops at the joint centroid
    assert config.data.val.centers == "com"
    assert list(nb.centre_specs(config)) == [notebook.COM, notebook.ORACLE]
    nb.centers_file.parent.mkdir(parents=True)
    nb.centers_file.write_text("1 2 3\n")
    config = nb.run_config("attention")
    assert config.data.val.centers == str(nb.centers_file)
    assert list(nb.centre_specs(config)) == [notebook.LOCNET, notebook.COM, notebook.ORACLE]
    assert nb.run_config("locnet").data.train.centers == "com"


def test_budget_names_steps_and_data(clean_env):
    nb = notebook.start("cpu", run_dir=str(clean_env / "run"))
    text = nb.budget(nb.run_config("attention"))
    assert text == "cpu profile, 768 steps: 6 epochs of 4096 synthetic frames, batch 32"
    locnet = nb.budget(nb.run_config("locnet"))
    assert (
        locnet == "cpu profile, 768 steps: 6 epochs of 4096 synthetic (with scene) frames, batch 32"
    )
    # A shipped run's config names its own profile.
    long_run = notebook.start("long", run_dir=str(clean_env / "run2")).run_config("attention")
    assert nb.budget(long_run).startswith("long profile, 2304 steps: 9 epochs of 8192")


@pytest.mark.parametrize(("flag", "env"), [(True, ""), (False, "1")])
def test_headless_draws_one_static_view_without_widgets(monkeypatch, flag, env):
    monkeypatch.setenv("HANDPOSE_HEADLESS", env)
    calls = []

    def controls():
        raise AssertionError("no widget may be created headless")

    notebook.explore(lambda **kw: calls.append(kw), {"index": 3}, controls, headless=flag)
    assert calls == [{"index": 3}]


def test_sliders_redraw_on_release():
    controls = {
        "index": ipywidgets.IntSlider(value=0, min=0, max=5),
        "view": ipywidgets.Dropdown(options=["a", "b"]),
    }
    notebook.redraw_on_release(controls)
    assert controls["index"].continuous_update is False


def test_error_table_marks_the_floors():
    errors = np.full((4, 16), 20.0)
    model = MethodResult("attention", "a.txt", "icvl", "all", errors)
    parts = {"2D error (px)": 5.0, "2D error (mm)": 9.0, "depth error (mm)": 8.0}
    floor = Floor("floor: test mean pose", np.zeros((4, 16, 3)), model, parts)
    table = notebook.error_table({"attention": {notebook.COM: (model, parts)}}, [floor])
    assert list(table["prediction"]) == ["attention", "floor: test mean pose"]
    assert list(table["crop centre"]) == [notebook.COM, notebook.ORACLE]
    assert table.loc[0, "mean error (mm)"] == 20.0
    assert table.loc[1, "depth error (mm)"] == 8.0


def test_time_note_quotes_the_runners_table(clean_env, monkeypatch):

    monkeypatch.setattr(reproduce, "COMMITTED_FIGURES", clean_env / "figures")
    nb = notebook.start("smoke", run_dir=str(clean_env / "run"))
    assert "has been timed yet" in nb.time_note("03_pose_training.ipynb")
    summary = reproduce.RunSummary({"03_pose_training.ipynb": 60.0}, matmul_gflops=300.0)
    reproduce.write_notebook_times(summary, "smoke", "synthetic", clean_env / "figures")
    note = nb.time_note("03_pose_training.ipynb")
    assert note.startswith("time: 60 s in the runner's last smoke run (float32 matmul 300")
    assert "about 3.0 min at 100 GFLOP/s" in note


def test_methods_explorer_follows_the_dataset():
    controls = notebook.methods_explorer_controls(
        {"icvl": ["a", "b", "c"], "nyu": ["x", "y"]}, {"icvl": ["b", "c"], "nyu": ["y"]}
    )
    assert controls["methods"].value == ("b", "c")
    controls["dataset"].value = "nyu"
    assert controls["methods"].options == ("x", "y")
    assert controls["methods"].value == ("y",)


def test_a_notebook_opened_anywhere_never_writes_the_tracked_figures(monkeypatch):
    monkeypatch.delenv("HANDPOSE_FIGURES_DIR", raising=False)
    assert paths.figures_dir() == paths.INTERACTIVE_FIGURES
    assert paths.COMMITTED_FIGURES not in paths.figures_dir().parents


@pytest.mark.parametrize("formats", ["png", "png,pdf", "pdf"])
def test_save_shows_the_png_it_wrote_at_the_inline_size(clean_env, monkeypatch, formats):
    """The figure is drawn once: into its files, and the cell shows the PNG written (at the
    size the inline backend would give the figure); with PDF only, the backend draws it."""
    monkeypatch.setenv("HANDPOSE_FIGURE_FORMATS", formats)
    shown, backend_shows = [], []
    monkeypatch.setattr(notebook, "display", shown.append)
    monkeypatch.setattr(notebook.plt, "show", lambda: backend_shows.append(True))
    nb = notebook.start("smoke", run_dir=str(clean_env / "run"))
    fig, ax = plt.subplots(figsize=(4, 2), dpi=80)
    ax.plot([0, 1], [0, 1])
    nb.save(fig, "line")
    assert [p.name for p in nb.written] == [f"line.{f}" for f in formats.split(",")]
    if "png" not in formats:
        assert backend_shows == [True]
        assert not shown
        plt.close(fig)
        return
    assert not backend_shows
    assert not plt.fignum_exists(fig.number)  # closed: the backend does not draw it again
    (image,) = shown
    png = nb.figures_dir / "line.png"
    assert image.data == png.read_bytes()
    width_px = int.from_bytes(png.read_bytes()[16:20], "big")
    assert width_px > 4 * plots.figure_dpi() * 0.9  # 4 in, cropped to the content
    assert image.width == round(width_px * 80 / plots.figure_dpi())
    not_png = nb.figures_dir / "line.txt"
    not_png.write_text("a text file, not a picture")
    with pytest.raises(ValueError, match=r"line.txt: not a PNG file"):
        notebook.saved_png(not_png, 80)
