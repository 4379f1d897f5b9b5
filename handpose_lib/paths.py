"""Where outputs go. Environment variables let tests and the runner redirect them.

(The profile variable, $HANDPOSE_PROFILE, belongs to `profiles.resolve_profile`.)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_FIGURES_DIR = "HANDPOSE_FIGURES_DIR"


COMMITTED_FIGURES = REPO_ROOT / "figures"  # the default run's tables and figures (tracked)
INTERACTIVE_FIGURES = REPO_ROOT / "outputs" / "interactive" / "figures"  # ignored by git


def figures_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder for tables and figures: `override`, else $HANDPOSE_FIGURES_DIR, else
    outputs/interactive/figures/: a notebook opened in any Jupyter never writes into the
    tracked figures/, which only the runner's default run fills (it passes that folder).

    Created if missing.
    """
    chosen = override or os.environ.get(ENV_FIGURES_DIR) or INTERACTIVE_FIGURES
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


ENV_RUN_DIR = "HANDPOSE_RUN_DIR"
# In a run folder: the LocNet centres (uvd) of the test frames, written by notebook 02 and read
# by notebooks 03-04 to crop them; a shipped set keeps the ones its predictions were cropped at.
CENTERS_FILE = Path("centers") / "val_locnet.txt"
ENV_HEADLESS = "HANDPOSE_HEADLESS"  # set by the runner and the tests: no widgets, static views
# The crop caches the GPU profiles' runs share (`training.data.shared_cache_root`); the runner
# sets it to a folder of its run, so that the trainings of one reproduction share theirs.
ENV_CROP_CACHE_DIR = "HANDPOSE_CROP_CACHE_DIR"


def run_dir(override: str | os.PathLike | None = None, profile: str = "cpu") -> Path:
    """Folder where notebooks hand trained models and prediction files to later notebooks.

    `override` (the runner's RUN_DIR parameter), else $HANDPOSE_RUN_DIR, else
    outputs/interactive-<profile>/ (ignored by git). Created if missing.
    """
    chosen = (
        override or os.environ.get(ENV_RUN_DIR) or REPO_ROOT / "outputs" / f"interactive-{profile}"
    )
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path
