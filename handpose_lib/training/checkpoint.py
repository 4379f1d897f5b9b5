"""Checkpoints: atomic save / load with a format version, the RNG states a resume restores, and
whether a saved run may be resumed with a given config."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handpose_lib.training.atomic import atomic_write
from handpose_lib.training.config import ConfigError, RunConfig, resume_differences

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file has another format version; the message names the file."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    return state


def rng_state() -> dict[str, Any]:
    # Nothing here draws from numpy's global generator; saved for user code that does.
    np_state = np.random.get_state()  # noqa: NPY002
    assert isinstance(np_state, tuple)  # legacy form: numpy's global generator is MT19937
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # Lists, so that the checkpoint loads with weights_only=True.
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_resumable(saved: RunConfig, given: RunConfig, run_dir: str | os.PathLike) -> None:
    """ConfigError naming the fields when `given` may not continue the run `saved` started
    (`config.resume_differences`: only "validation" / "none" fields and train.epochs may
    change)."""
    differ = resume_differences(saved, given)
    if differ:
        raise ConfigError(
            f"{Path(run_dir) / 'config.json'}: cannot resume with a different config; "
            f"fields {differ} differ (only bookkeeping and validation fields and train.epochs "
            "may change)"
        )
