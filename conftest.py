"""Shared test set-up (tests/ and the notebooks run by nbval).

The published labels and predictions come the way a user gets them (`published.fetch`): from a
local copy when one is configured (HANDPOSE_PUBLISHED_DIR, or `../shared/published` beside the
checkout), otherwise downloaded once into the cache from HANDPOSE_PUBLISHED_URL (default: the
pinned upstream) and verified by sha256. Nothing here requires a local copy: offline with
nothing cached, the unit tests that need the files are skipped with the reason (marker
`published`), while the notebooks, which a user cannot run without them, fail.
Figures written by notebooks under nbval go to a temporary folder, never to figures/.

Markers (select with -m; `make test-fast` runs `not slow and not notebooks and not published`):
    slow       seconds or more: subprocess trainings, paper-size networks, many small trainings
    notebooks  starts a Jupyter kernel (nbval cells, papermill runs of the runner)
    published  needs the published files (added to every test that uses `published_dir`)

The notebooks under nbval run first in a session; a test that needs the outputs of a smoke run
of every numbered notebook (`smoke_outputs`) reuses theirs instead of executing the notebooks
a second time, and runs them once through the runner only when nbval did not.

Under pytest-xdist (`make test`: -n auto) the scheduler below sends work by `work_unit`: the
notebooks and the tests of their outputs to one worker, in order (notebook 03 reads notebook
02's LocNet centres from the run folder), every other module whole to one worker (its
module-scoped fixtures are built once), and the long runner tests one by one. Each worker runs
torch, and the kernels it starts, on one thread, so that the workers share the cores instead of
oversubscribing them.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

try:  # the `test` extra has it; without it the suite runs in one process
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pragma: no cover
    LoadScopeScheduling = None

MARKERS = {
    "slow": "seconds or more: subprocess trainings, paper-size networks, many small trainings",
    "notebooks": "starts a Jupyter kernel (nbval cells, papermill runs of the runner)",
    "published": "needs the published files (local copy, cache or download)",
}
SESSION_STARTED = time.time()
_notebook_reports: dict[str, list[bool]] = {}  # notebook file -> passed, per executed cell


def _torch():
    """torch, imported where a test needs it: xdist's controller runs no test, and importing
    torch and the package there (1.2 s) would only delay the workers' start."""
    import torch  # noqa: PLC0415 (see the docstring)

    return torch


def _handpose_lib():
    import handpose_lib.published  # noqa: PLC0415 (see _torch)
    import handpose_lib.reproduce  # noqa: PLC0415 (see _torch)

    return handpose_lib


SMOKE_GROUP = "smoke-notebooks"
# Fixtures that train networks: every test that uses one is `slow`.
TRAINING_FIXTURES = frozenset({"long_output", "shipped", "trained", "runs"})
# Tests that read the smoke run's outputs (fixture smoke_outputs): on the notebooks' worker.
SMOKE_OUTPUT_TESTS = ("tests/test_readme_figures.py::test_smoke_run_produces_every_listed_output",)
# Tests long enough to be scheduled one by one rather than with their module.
ONE_BY_ONE = (
    "tests/test_real_data_route.py::test_runner_runs_the_notebooks_on_the_dataset_files",
    "tests/test_rehearsal.py::test_the_rehearsal_runs_every_stage_and_writes_its_table",
)
# Modules whose work comes in long units (kernels, trainings): scheduled early.
HEAVY_MODULES = (
    "tests/test_pretrained.py",
    "tests/test_learning.py",
    "tests/test_ablation.py",
    "tests/test_batch_split.py",
    "tests/test_train.py",
    "tests/test_shared_crop_cache.py",
)


def _notebook_path(nodeid: str) -> str | None:
    """The notebook an nbval cell's node id belongs to, None for other tests."""
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") else None


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test, from its node id alone (the scheduler sees nothing else)."""
    if _notebook_path(nodeid) or nodeid.startswith(SMOKE_OUTPUT_TESTS):
        return SMOKE_GROUP
    if nodeid.startswith(ONE_BY_ONE):
        return nodeid
    return nodeid.split("::", 1)[0]


def _schedule_rank(nodeid: str) -> tuple[int, int]:
    """Longest work first, so that xdist's workers do not finish on one long tail: the runner
    tests, then the notebook cells (in their order) and the tests of their outputs, then the
    heavy modules, then the rest; each in collection order (the sort is stable)."""
    unit = work_unit(nodeid)
    if nodeid.startswith(ONE_BY_ONE):
        return (0, 0)
    if unit == SMOKE_GROUP:
        return (1, 0 if _notebook_path(nodeid) else 1)
    return (2, 0) if unit in HEAVY_MODULES else (3, 0)


if LoadScopeScheduling is not None:

    class GroupScheduling(LoadScopeScheduling):
        """LoadScopeScheduling with `work_unit` as the scope. (xdist_group markers with
        --dist loadgroup would say the same, but pytest-xdist 3.8 cannot rename the items of
        pytest 9, so they are ignored there.)"""

        def __init__(self, config, log=None):
            super().__init__(config, log)
            # xdist reorders the units by test count (the notebooks' many cells first, the
            # one-test runner units last, where they became the tail); keep the order that
            # pytest_collection_modifyitems gives, longest work first.
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(config, log):
        return GroupScheduling(config, log)


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"  # kernels and subprocesses started from here
        _torch().set_num_threads(1)
    # Set before any kernel starts, so notebooks run by nbval inherit them.
    # An empty value counts as unset.
    defaults = {
        "HANDPOSE_FIGURES_DIR": tempfile.mkdtemp(prefix="handpose-figures-"),
        "HANDPOSE_PROFILE": "smoke",
        "HANDPOSE_HEADLESS": "1",
        "HANDPOSE_RUN_DIR": tempfile.mkdtemp(prefix="handpose-run-"),
        # The GPU profiles' shared crop caches (a rehearsal's too): never the checkout's data/.
        "HANDPOSE_CROP_CACHE_DIR": tempfile.mkdtemp(prefix="handpose-crops-"),
        # PNG only, at 72 dpi, in the notebooks the tests run: the PDFs add seconds per
        # notebook and are written by the same call, and 150 dpi adds a quarter to each
        # figure (tests/test_plots.py checks both formats at the default resolution).
        "HANDPOSE_FIGURE_FORMATS": "png",
        "HANDPOSE_FIGURE_DPI": "72",
    }
    for name, value in defaults.items():
        if not os.environ.get(name):
            os.environ[name] = value


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if _notebook_path(item.nodeid):
            item.add_marker(pytest.mark.notebooks)
        if "published_dir" in fixtures:
            item.add_marker(pytest.mark.published)
        if TRAINING_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.slow)
        if "smoke_outputs" in fixtures and work_unit(item.nodeid) != SMOKE_GROUP:
            raise pytest.UsageError(
                f"{item.nodeid} uses smoke_outputs: list it in conftest.SMOKE_OUTPUT_TESTS"
            )
    items.sort(key=lambda item: _schedule_rank(item.nodeid))


def pytest_runtest_logreport(report):
    notebook = _notebook_path(report.nodeid)
    if notebook and (report.when == "call" or report.failed):
        _notebook_reports.setdefault(notebook, []).append(report.passed)


@pytest.fixture(scope="session")
def published_dir() -> Path:
    """A folder laid out like MANIFEST.tsv that holds every published file, all verified.

    The local copy when one is configured, else the download cache, filled on first use.
    Without either (no copy, no network) the test is skipped with the one-line
    PublishedUnavailable message as its reason.
    """
    published = _handpose_lib().published
    try:
        return published.fetch_all()
    except published.PublishedUnavailable as err:
        pytest.skip(f"published files unavailable: {err}")


@pytest.fixture(scope="session")
def smoke_outputs(request, tmp_path_factory) -> list[Path]:
    """The files that a smoke run of every numbered notebook wrote to its figures folder.

    Those of this session's nbval run when it executed every numbered notebook and every cell
    passed; otherwise a smoke run of the runner, once."""
    reproduce = _handpose_lib().reproduce
    expected = {f"notebooks/{p.name}" for p in reproduce.numbered_notebooks()}
    collected: dict[str, int] = {}
    for item in request.session.items:
        notebook = _notebook_path(item.nodeid)
        if notebook:
            collected[notebook] = collected.get(notebook, 0) + 1
    nbval_ran = expected <= set(collected) and all(
        len(_notebook_reports.get(nb, ())) == collected[nb] and all(_notebook_reports[nb])
        for nb in expected
    )
    if nbval_ran:
        folder = Path(os.environ["HANDPOSE_FIGURES_DIR"])
        return sorted(
            p for p in folder.iterdir() if p.is_file() and p.stat().st_mtime >= SESSION_STARTED
        )
    base = tmp_path_factory.mktemp("smoke-run")
    summary = reproduce.reproduce(profile="smoke", output=base / "run", figures=base / "figures")
    return list(summary.written)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """A test that changes torch's thread count does not change it for the tests after it."""
    torch = _torch()
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: the networks of the tests are tiny, and more threads
    only add overhead (or oversubscribe a machine that runs other work)."""
    torch = _torch()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
