"""Reading depth PNGs with errors that name the file and what was expected."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from handpose_lib.uvd_format import FormatError


def read_png(path: str | os.PathLike, what: str) -> tuple[str, np.ndarray]:
    """(Pillow mode, pixel array) of a PNG; `what` describes the expected image for errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    try:
        with Image.open(path) as image:
            image.load()
            return image.mode, np.asarray(image)
    except (OSError, SyntaxError) as err:  # Pillow's way of reporting truncated/corrupt files
        raise FormatError(f"{path}: unreadable PNG ({err}); expected {what}") from err
