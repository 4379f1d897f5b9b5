"""Shared test set-up (tests/ and the notebooks run by nbval).

The published labels and predictions come the way a user gets them (`published.fetch`): from a
local copy when one is configured (HANDPOSE_PUBLISHED_DIR, or `../shared/published` beside the
checkout), otherwise downloaded once into the cache from HANDPOSE_PUBLISHED_URL (default: the
pinned upstream) and verified by sha256. Nothing here requires a local copy.
Figures written by notebooks under nbval go to a temporary folder, never to figures/.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from handpose_lib import published


def pytest_configure(config):
    # Set before any kernel starts, so notebooks run by nbval inherit them.
    # An empty value counts as unset.
    defaults = {
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
    """A folder laid out like MANIFEST.tsv that holds every published file, all verified.

    The local copy when one is configured, else the download cache, filled on first use.
    Without either (no copy, no network) the tests that need the files fail with the one-line
    PublishedUnavailable message: they are part of what a user runs.
    """
    return published.fetch_all()


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: the networks of the tests are tiny, and more threads
    only add overhead (or oversubscribe a machine that runs other work)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
