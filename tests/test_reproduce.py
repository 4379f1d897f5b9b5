"""The papermill runner: parameters reach the notebooks, failures are reported by name,
progress is shown, and only the default run writes the committed figures/."""

import dataclasses
import io
import json
import logging
import os
import time
from pathlib import Path

import nbformat
import papermill
import pytest

from handpose_lib import notebook, paths, profiles, reproduce
from handpose_lib.training.preflight import PreflightError


def _notebook(path, parameters_src, body_src):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(parameters_src, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body_src),
    ]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    good = _notebook(
        src / "01_echo.ipynb",
        'PROFILE = "cpu"\nRUN_DIR = ""\nOUTPUT_DIR = ""',
        "import json, pathlib\n"
        "from handpose_lib.reproduce import record_headline\n"
        "pathlib.Path(RUN_DIR, 'seen.json').write_text(json.dumps({'profile': PROFILE}))\n"
        "pathlib.Path(OUTPUT_DIR, 'table.csv').write_text('a\\n1\\n')\n"
        "record_headline('answer', 42)",
    )
    bad = _notebook(src / "02_fails.ipynb", 'PROFILE = "cpu"', "x = 1\nraise RuntimeError('boom')")
    return good, bad


@pytest.mark.notebooks
def test_parameters_reach_the_notebook_and_summary_lists_outputs(notebooks, tmp_path):
    good, _ = notebooks
    stream = io.StringIO()
    summary = reproduce.reproduce(
        profile="smoke",
        output=tmp_path / "run",
        figures=tmp_path / "figs",
        notebooks=[good],
        stream=stream,
    )
    assert json.loads((tmp_path / "run" / "seen.json").read_text()) == {"profile": "smoke"}
    assert (tmp_path / "run" / "01_echo.ipynb").is_file()  # executed copy
    assert summary.headlines == {"answer": 42}
    assert [p.name for p in summary.written] == ["table.csv"]
    assert "01_echo.ipynb" in summary.format()
    assert "answer: 42" in summary.format()
    assert "[1/1] 01_echo.ipynb done in" in stream.getvalue()


@pytest.mark.notebooks
def test_headless_retrain_and_non_default_profile_figures(tmp_path, monkeypatch):
    """HEADLESS=True and RETRAIN arrive as parameters (not only through the environment), a
    missing run folder is created, and a smoke run writes its figures under the run folder.
    Notebook 04 (the self-comparison) gets RETRAIN=False from the default --retrain pose."""
    monkeypatch.delenv(paths.ENV_HEADLESS, raising=False)
    monkeypatch.delenv(paths.ENV_FIGURES_DIR, raising=False)
    nb = _notebook(
        tmp_path / f"{reproduce.SELF_COMPARISON_NOTEBOOK}.ipynb",
        'HEADLESS = False\nRETRAIN = None\nRUN_DIR = ""\nOUTPUT_DIR = ""\nSEEDS = 0\nVARIANTS = ""',
        "import json, pathlib\n"
        "seen = [HEADLESS, RETRAIN, SEEDS, VARIANTS]\n"
        "pathlib.Path(RUN_DIR, 'params.json').write_text(json.dumps(seen))\n"
        "pathlib.Path(OUTPUT_DIR, 'fig.png').write_bytes(b'png')",
    )
    committed = paths.REPO_ROOT / "figures"
    before = {p.name: p.stat().st_mtime_ns for p in committed.glob("*")}
    run = tmp_path / "not" / "yet" / "run"
    summary = reproduce.reproduce(
        profile="smoke",
        output=run,
        notebooks=[nb],
        stream=io.StringIO(),
        seeds=3,
        variants="plain,attention",
    )
    assert json.loads((run / "params.json").read_text()) == [True, False, 3, "plain,attention"]
    assert [p for p in summary.written] == [run / "figures" / "fig.png"]
    assert {p.name: p.stat().st_mtime_ns for p in committed.glob("*")} == before


def test_figures_folder_per_profile(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.ENV_FIGURES_DIR, raising=False)
    run = tmp_path / "run"
    committed = paths.REPO_ROOT / "figures"
    assert reproduce.run_figures_dir("cpu", "synthetic", run) == committed
    for profile, dataset in [("smoke", "synthetic"), ("paper", "synthetic"), ("cpu", "icvl")]:
        assert reproduce.run_figures_dir(profile, dataset, run) == run / "figures"
    assert reproduce.run_figures_dir("smoke", "synthetic", run, tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv(paths.ENV_FIGURES_DIR, str(tmp_path / "env"))
    assert reproduce.run_figures_dir("cpu", "synthetic", run) == tmp_path / "env"


def test_record_headline_creates_a_missing_run_folder(tmp_path, monkeypatch, capsys):
    run = tmp_path / "new" / "run"
    monkeypatch.setenv(paths.ENV_RUN_DIR, str(run))
    reproduce.record_headline("mean_error_mm", 12.5)
    reproduce.record_headline("frames", 1596)
    assert json.loads((run / "headlines.json").read_text()) == {
        "mean_error_mm": 12.5,
        "frames": 1596,
    }


def test_undeclared_parameters_are_not_injected(notebooks):
    _, bad = notebooks
    params = reproduce.notebook_parameters(bad, {"PROFILE": "smoke", "DATASET": "icvl"})
    assert params == {"PROFILE": "smoke"}


@pytest.mark.notebooks
def test_failing_notebook_is_reported_by_name_and_cell(notebooks, tmp_path):
    _, bad = notebooks
    with pytest.raises(reproduce.NotebookFailed, match=r"02_fails.ipynb failed in cell .*boom"):
        reproduce.reproduce(output=tmp_path / "run", figures=tmp_path / "f", notebooks=[bad])


def test_real_datasets_need_a_data_root():
    with pytest.raises(ValueError, match="needs --data-root"):
        reproduce.reproduce(dataset="icvl")


def test_numbered_notebooks_are_in_order():
    names = [p.name for p in reproduce.numbered_notebooks()]
    assert names == sorted(names)
    assert "05_table1_and_figure3.ipynb" in names


@pytest.mark.notebooks
def test_hung_cell_is_reported_by_notebook_name(tmp_path, monkeypatch):
    slow = _notebook(tmp_path / "03_slow.ipynb", 'PROFILE = "cpu"', "import time\ntime.sleep(30)")
    fast = dataclasses.replace(profiles.PROFILES["smoke"], cell_timeout_s=1)
    monkeypatch.setitem(profiles.PROFILES, "smoke", fast)
    with pytest.raises(
        reproduce.NotebookFailed, match=r"03_slow.ipynb: a cell ran longer than 1 s"
    ):
        reproduce.reproduce(
            profile="smoke", output=tmp_path / "run", figures=tmp_path / "f", notebooks=[slow]
        )


@pytest.mark.notebooks
def test_notebook_that_cannot_fetch_published_files_fails_with_one_line(tmp_path):
    nb = _notebook(
        tmp_path / "05_offline.ipynb",
        'PROFILE = "cpu"',
        "from handpose_lib.published import PublishedUnavailable\n"
        "raise PublishedUnavailable('published file icvl/x.txt is not available: download from "
        "http://127.0.0.1:9/x failed')",
    )
    with pytest.raises(reproduce.NotebookFailed) as err:
        reproduce.reproduce(output=tmp_path / "run", figures=tmp_path / "f", notebooks=[nb])
    message = str(err.value)
    assert message.count("\n") == 0
    assert message.startswith("notebook 05_offline.ipynb: published file icvl/x.txt")


# --- progress ---------------------------------------------------------------------------


def _progress_json(path, updated, **record):
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = dict(name="attention", epoch=3, epochs=6, step=40, steps=128, elapsed_s=100.0)
    path.write_text(json.dumps({**defaults, **record, "updated": updated}))
    os.utime(path, (updated, updated))
    return path


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "<1 min"), (59, "<1 min"), (61, "~2 min"), (240, "~4 min"), (4800, "~1 h 20 min")],
)
def test_format_duration(seconds, text):
    assert reproduce.format_duration(seconds) == text


def test_progress_line_with_training(tmp_path):
    now = time.time()
    _progress_json(tmp_path / "pose_attention" / "progress.json", now, eta_s=230.0)
    training = reproduce.latest_training_progress(tmp_path, since=now - 10)
    assert reproduce.format_progress("03_pose_training", 7, 19, training) == (
        "03_pose_training: cell 7/19 · attention epoch 3/6 step 40/128 · ~4 min left"
    )
    assert reproduce.format_progress("01_data", 2, 9) == "01_data: cell 2/9"
    no_eta = reproduce.latest_training_progress(
        _progress_json(tmp_path / "b" / "progress.json", now + 1, eta_s=None).parent, now
    )
    assert reproduce.format_progress("03", 1, 2, no_eta).endswith("step 40/128")


def test_latest_training_progress_takes_the_newest_current_file(tmp_path):
    now = time.time()
    _progress_json(tmp_path / "old" / "progress.json", now - 100, name="finished")
    _progress_json(tmp_path / "a" / "progress.json", now - 2, name="plain")
    _progress_json(tmp_path / "b" / "deeper" / "progress.json", now - 1, name="two_branch")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "progress.json").write_text("{half a file")  # being replaced
    assert reproduce.latest_training_progress(tmp_path, since=now - 50).name == "two_branch"
    assert reproduce.latest_training_progress(tmp_path, since=now + 50) is None


def test_progress_is_printed_as_plain_lines_off_a_terminal(tmp_path, monkeypatch):
    monkeypatch.setitem(reproduce.REFRESH_S, False, 0.05)
    progress = reproduce.NotebookProgress("03_pose_training", cells=19, run_dir=tmp_path)
    stream = io.StringIO()  # not a TTY
    with reproduce.ProgressLine(progress, stream):
        time.sleep(0.2)
        for _ in range(7):
            progress.on_cell_execute()
        _progress_json(tmp_path / "pose" / "progress.json", time.time() + 1, eta_s=230.0)
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("    03_pose_training: starting the kernel (0:00 so far)")
    assert lines[-1].startswith(
        "    03_pose_training: cell 7/19 · attention epoch 3/6 step 40/128 · ~4 min left"
    )


def test_cells_counted_like_papermill_runs_them(notebooks):
    good, _ = notebooks
    assert reproduce.count_executed_cells(good, {}) == 2
    assert reproduce.count_executed_cells(good, {"PROFILE": "smoke"}) == 3


# --- the numbered notebooks -------------------------------------------------------------


@pytest.mark.parametrize("notebook", reproduce.numbered_notebooks(), ids=lambda p: p.stem)
def test_parameters_cell_parses_and_declares_headless(notebook, caplog):
    """papermill reads every parameter (a comment it cannot parse prints a warning in every
    run) and the notebook takes HEADLESS from the runner."""
    with caplog.at_level(logging.WARNING, logger="papermill"):
        declared = papermill.inspect_notebook(str(notebook))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert "HEADLESS" in declared
    assert declared["HEADLESS"]["default"] == "False"


# --------------------------------------------------------------------------------------------
# Table 1's "Ours" row from the model's predictions on a real dataset


def _ours_file(run_dir, frames: int):
    path = run_dir / reproduce.OURS_PREDICTIONS
    path.parent.mkdir(parents=True)
    path.write_text("1 2 3\n" * frames)
    return path


def test_ours_row_only_for_the_published_test_set(tmp_path, monkeypatch):
    stream = io.StringIO()
    path = _ours_file(tmp_path, 1596)
    assert reproduce.ours_parameters("synthetic", None, tmp_path, stream) == {}
    monkeypatch.setattr(reproduce, "check_published_source", lambda source: None)
    monkeypatch.setattr(reproduce, "IcvlSource", lambda root, split, check_counts: None)
    assert reproduce.ours_parameters("icvl", "/data/ICVL", tmp_path, stream) == {
        "OURS_ICVL_PREDICTIONS": str(path)
    }


def test_ours_row_refuses_a_subset_or_another_split(tmp_path, monkeypatch):
    stream = io.StringIO()
    _ours_file(tmp_path, 200)
    monkeypatch.setattr(reproduce, "check_published_source", lambda source: None)
    monkeypatch.setattr(reproduce, "IcvlSource", lambda root, split, check_counts: None)
    assert reproduce.ours_parameters("icvl", "/data/ICVL", tmp_path, stream) == {}
    assert "200 frames, the published ICVL test set 1596" in stream.getvalue()

    def not_published(source):
        raise reproduce.FormatError("/data/ICVL/Testing: test frame 3 is 'x.png'")

    monkeypatch.setattr(reproduce, "check_published_source", not_published)
    assert reproduce.ours_parameters("icvl", "/data/ICVL", tmp_path, stream) == {}
    assert "keeps the printed 'Ours' row: /data/ICVL/Testing: test frame 3" in stream.getvalue()


def test_summary_states_the_machine_rate_and_the_time_at_the_reference_rate():
    summary = reproduce.RunSummary(
        notebook_seconds={"01.ipynb": 60.0, "02.ipynb": 540.0}, matmul_gflops=200.0
    )
    text = summary.format()
    assert "all notebooks" in text
    assert "600.0 s" in text
    # 600 s at 200 GFLOP/s is 1200 s = 20 min at the reference 100 GFLOP/s.
    assert "float32 matmul 200 GFLOP/s" in text
    assert "100 GFLOP/s: about 20 min" in text


def test_retrain_reaches_only_the_self_comparison(tmp_path):
    """Notebooks 02-03 always train; notebook 04 trains only with --retrain all (the long
    profile's default, since it makes the shipped weights)."""
    nb03, nb04 = Path("03_pose_training.ipynb"), Path(f"{reproduce.SELF_COMPARISON_NOTEBOOK}.ipynb")
    for profile, retrain, expected in [
        ("cpu", None, (True, False)),
        ("cpu", "pose", (True, False)),
        ("cpu", "all", (True, True)),
        ("long", None, (True, True)),
    ]:
        chosen = reproduce.resolve_retrain(profile, retrain)
        got = (reproduce.retrain_parameter(nb03, chosen), reproduce.retrain_parameter(nb04, chosen))
        assert got == expected, (profile, retrain)
    with pytest.raises(ValueError, match="retrain 'some': expected one of"):
        reproduce.reproduce("smoke", output=tmp_path / "x", notebooks=[], retrain="some")
    # Through papermill: test_headless_retrain_and_non_default_profile_figures.


def test_notebooks_selected_by_number():
    chosen = reproduce.select_notebooks("05, 1,03")
    assert [p.name[:2] for p in chosen] == ["01", "03", "05"]
    assert reproduce.select_notebooks("02") == [reproduce.numbered_notebooks()[1]]
    with pytest.raises(ValueError, match=r"no notebook numbered '07' \(known: 01,02,03,04,05\)"):
        reproduce.select_notebooks("01,07")
    with pytest.raises(ValueError, match="name at least one notebook number"):
        reproduce.select_notebooks(" , ")


def test_cli_refuses_an_unknown_notebook_number_in_one_line(capsys):
    assert reproduce.main(["--profile", "smoke", "--notebooks", "9"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --notebooks: no notebook numbered")


def test_paper_profile_fills_table1_before_the_self_comparison():
    order = [p.name[:2] for p in reproduce.table1_first(reproduce.numbered_notebooks())]
    assert order == ["01", "02", "03", "05", "04"]
    subset = reproduce.select_notebooks("01,02,03,05")
    assert reproduce.table1_first(subset) == subset
    assert reproduce.TABLE1_FIRST_PROFILES == ("paper", "paper_faithful")


def test_seeds_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="--seeds 0: expected at least one seed"):
        reproduce.reproduce("smoke", output=tmp_path / "x", notebooks=[], seeds=0)


def test_notebook_times_table_merges_runs_and_scales_to_the_reference_rate(tmp_path):
    first = reproduce.RunSummary(
        notebook_seconds={"01_a.ipynb": 10.0, "02_b.ipynb": 100.0}, matmul_gflops=400.0
    )
    reproduce.write_notebook_times(first, "cpu", "synthetic", tmp_path)
    other = reproduce.RunSummary(notebook_seconds={"01_a.ipynb": 5.0}, matmul_gflops=200.0)
    reproduce.write_notebook_times(other, "smoke", "synthetic", tmp_path)
    again = reproduce.RunSummary(notebook_seconds={"02_b.ipynb": 50.0}, matmul_gflops=400.0)
    reproduce.write_notebook_times(again, "cpu", "synthetic", tmp_path)

    row = reproduce.measured_notebook_time("02_b.ipynb", "cpu", fig_dir=tmp_path)
    assert row["seconds"] == 50.0  # the later run of the same notebook replaces the earlier
    assert row["seconds at 100 GFLOP/s"] == 200.0  # 50 s at 400 GFLOP/s
    kept = reproduce.measured_notebook_time("01_a.ipynb", "cpu", fig_dir=tmp_path)
    assert kept["seconds at 100 GFLOP/s"] == 40.0
    smoke = reproduce.measured_notebook_time("01_a.ipynb", "smoke", fig_dir=tmp_path)
    assert smoke["seconds at 100 GFLOP/s"] == 10.0
    assert reproduce.measured_notebook_time("03_c.ipynb", "cpu", fig_dir=tmp_path) is None
    assert "| 02_b.ipynb" in (tmp_path / "notebook_times.md").read_text()


# --- the runner's preflight (training.preflight) ------------------------------------------


def test_the_runner_refuses_to_run_under_torchrun(monkeypatch, capsys, tmp_path):
    """Four runners would write one run folder and race on headlines.json: one line saying
    how several GPUs are used instead, before anything runs."""
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert reproduce.main(["--profile", "smoke", "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "under torchrun (WORLD_SIZE=4)" in err
    assert "one per GPU" in err
    assert not (tmp_path / "run").exists()


def test_the_paper_profile_refuses_this_cpu_unless_it_is_named(monkeypatch, capsys, tmp_path):
    """No CUDA here: `--profile paper` stops in one line with the fixes; `--device cpu` would
    pass the check (not run here: hours)."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    out = tmp_path / "run"
    assert reproduce.main(["--profile", "paper", "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "profile 'paper' is sized for a GPU, but CUDA is not usable here" in err
    assert "--device cpu" in err
    assert not out.exists()
    assert reproduce.check_runner("paper", "synthetic", "cpu", io.StringIO()) == "cpu"


def test_the_runner_log_opens_with_the_machine():
    stream = io.StringIO()
    assert reproduce.check_runner("smoke", "synthetic", "auto", stream) == "cpu"
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("torch ")
    assert any("matmul" in line and "GFLOP/s" in line for line in lines)


def test_a_notebook_refuses_the_paper_profile_on_a_cpu_unless_device_is_named(
    monkeypatch, tmp_path
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv(profiles.ENV_PROFILE, raising=False)
    args = ("paper", "synthetic", "", str(tmp_path / "run"), str(tmp_path / "fig"), True)
    with pytest.raises(PreflightError, match="DEVICE"):
        notebook.start(*args, device="auto")
    assert notebook.start(*args, device="cpu").device == "cpu"
    assert notebook.start(*args).device == "auto"  # notebooks that train nothing: no check
