"""Checkpoints: atomic save / load with a format version, the RNG states a resume restores, and
whether a saved run may be resumed with a given config.

A checkpoint may be resumed on another machine: with another number of visible GPUs (the CUDA
RNG states go to the devices present, `set_cuda_rng_states`), without CUDA, or with another
number of processes."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handpose_lib.training.atomic import atomic_write
from handpose_lib.training.config import ConfigError, RunConfig, resume_differences

CHECKPOINT_VERSION = 1

log = logging.getLogger(__name__)


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
    """The generators a resume restores: torch's CPU state, numpy's and Python's global ones,
    and with CUDA "cuda", one uint8 state tensor per visible GPU in device order. Tensors and
    lists only, so the checkpoint loads with weights_only=True."""
    # Nothing here draws from numpy's global generator; saved for user code that does.
    np_state = np.random.get_state()  # noqa: NPY002
    assert isinstance(np_state, tuple)  # legacy form: numpy's global generator is MT19937
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`'s generators; the CUDA ones onto the GPUs present here
    (`set_cuda_rng_states`), none where there is no CUDA."""
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    # No "cuda" entry: saved where CUDA was unavailable, i.e. the states of 0 GPUs.
    set_cuda_rng_states(state.get("cuda", []))


def visible_gpus() -> int:
    """The number of GPUs this process sees (0 without CUDA)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def set_cuda_rng_states(states: Sequence[torch.Tensor]) -> None:
    """Give GPU i the saved state `states[i]` (one uint8 tensor per GPU of the saving machine,
    in device order) for i < min(saved, present). GPUs beyond the saved ones keep their own
    state, saved states beyond the GPUs present are dropped, and a count that differs is
    logged (`gpu_count_line`). (torch.cuda.set_rng_state_all would index every saved device,
    so a checkpoint of 4 GPUs failed to resume where 1 is visible.)"""
    present = visible_gpus()
    if len(states) != present:
        log.warning("%s", gpu_count_line(len(states), present))
    for device in range(min(len(states), present)):
        torch.cuda.set_rng_state(states[device], device)


def gpu_count_line(saved: int, present: int) -> str:
    """The warning of a resume where the checkpoint holds the CUDA RNG states of `saved` GPUs
    and `present` GPUs are visible (the two differ): which states go where."""
    restored = min(saved, present)
    fates = []
    if restored:
        fates.append(f"restored on {_gpus(0, restored)}")
    if present > saved:
        fates.append(f"{_gpus(saved, present)} left as is")
    if saved > present:
        fates.append(f"the states of {_gpus(present, saved)} unused")
    line = f"checkpoint holds the CUDA RNG states of {saved} GPU(s), {present} visible here: "
    line += ", ".join(fates)
    # Without GPUs nothing draws from their generators; with them, the draws change.
    return line + (", so GPU random draws differ from an uninterrupted run" if present else "")


def _gpus(start: int, stop: int) -> str:
    """'GPU 0' or 'GPUs 1-3': the devices start .. stop - 1."""
    return f"GPU {start}" if stop - start == 1 else f"GPUs {start}-{stop - 1}"


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
