"""Shared test set-up (tests/ and the notebooks run by nbval).

The published labels are read from `../shared/published` (beside the checkout) unless
HANDPOSE_PUBLISHED_DIR names another copy; a missing copy fails the tests that need it.
Figures written by notebooks under nbval go to a temporary folder, never to figures/.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_PUBLISHED = REPO_ROOT.parent / "shared" / "published"


def pytest_configure(config):
    # Set before any kernel starts, so notebooks run by nbval inherit them.
    # An empty value (e.g. from the Makefile when no copy exists) counts as unset.
    defaults = {
        "HANDPOSE_PUBLISHED_DIR": str(DEFAULT_PUBLISHED),
        "HANDPOSE_FIGURES_DIR": tempfile.mkdtemp(prefix="handpose-figures-"),
        "HANDPOSE_PROFILE": "smoke",
        "HANDPOSE_HEADLESS": "1",
        "HANDPOSE_RUN_DIR": tempfile.mkdtemp(prefix="handpose-run-"),
    }
    for name, value in defaults.items():
        if not os.environ.get(name):
            os.environ[name] = value


@pytest.fixture(scope="session")
def published_dir() -> Path:
    """The local copy of the published files; its absence is a failure, not a skip."""
    path = Path(os.environ["HANDPOSE_PUBLISHED_DIR"])
    if not (path / "MANIFEST.tsv").is_file():
        pytest.fail(f"published labels missing: {path}/MANIFEST.tsv (set HANDPOSE_PUBLISHED_DIR)")
    return path
