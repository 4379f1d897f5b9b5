"""Where outputs go. Environment variables let tests and the runner redirect them."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_FIGURES_DIR = "HANDPOSE_FIGURES_DIR"


def figures_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder for tables and figures: `override`, else $HANDPOSE_FIGURES_DIR, else figures/.

    Created if missing.
    """
    chosen = override or os.environ.get(ENV_FIGURES_DIR) or REPO_ROOT / "figures"
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path
