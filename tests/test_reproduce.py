"""The papermill runner: parameters reach the notebooks, failures are reported by name."""

import json

import nbformat
import pytest

from handpose_lib import reproduce


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


def test_parameters_reach_the_notebook_and_summary_lists_outputs(notebooks, tmp_path):
    good, _ = notebooks
    summary = reproduce.reproduce(
        profile="smoke",
        output=tmp_path / "run",
        figures=tmp_path / "figs",
        notebooks=[good],
    )
    assert json.loads((tmp_path / "run" / "seen.json").read_text()) == {"profile": "smoke"}
    assert (tmp_path / "run" / "01_echo.ipynb").is_file()  # executed copy
    assert summary.headlines == {"answer": 42}
    assert [p.name for p in summary.written] == ["table.csv"]
    assert "01_echo.ipynb" in summary.format() and "answer: 42" in summary.format()


def test_undeclared_parameters_are_not_injected(notebooks):
    _, bad = notebooks
    params = reproduce.notebook_parameters(bad, {"PROFILE": "smoke", "DATASET": "icvl"})
    assert params == {"PROFILE": "smoke"}


def test_failing_notebook_is_reported_by_name_and_cell(notebooks, tmp_path):
    good, bad = notebooks
    with pytest.raises(reproduce.NotebookFailed, match=r"02_fails.ipynb failed in cell .*boom"):
        reproduce.reproduce(output=tmp_path / "run", figures=tmp_path / "f", notebooks=[good, bad])


def test_real_datasets_need_a_data_root():
    with pytest.raises(ValueError, match="needs --data-root"):
        reproduce.reproduce(dataset="icvl")


def test_numbered_notebooks_are_in_order():
    names = [p.name for p in reproduce.numbered_notebooks()]
    assert names == sorted(names) and "05_table1_and_figure3.ipynb" in names


def test_hung_cell_is_reported_by_notebook_name(tmp_path, monkeypatch):
    slow = _notebook(tmp_path / "03_slow.ipynb", 'PROFILE = "cpu"', "import time\ntime.sleep(30)")
    monkeypatch.setitem(reproduce.CELL_TIMEOUT_S, "smoke", 2)
    with pytest.raises(
        reproduce.NotebookFailed, match=r"03_slow.ipynb: a cell ran longer than 2 s"
    ):
        reproduce.reproduce(
            profile="smoke", output=tmp_path / "run", figures=tmp_path / "f", notebooks=[slow]
        )
