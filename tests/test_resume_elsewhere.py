"""A checkpoint resumed on another machine: the CUDA RNG states saved for one number of visible
GPUs go to the GPUs present on another (`checkpoint.set_rng_state`). CUDA is simulated: the
tests patch what checkpoint.py asks torch.cuda (is_available, device_count) and record what it
passes to torch.cuda.set_rng_state. (Resuming with another number of processes:
tests/test_batch_split.py, which reuses its torchrun start.)"""

from __future__ import annotations

import logging

import pytest
import torch

from handpose_lib.training import checkpoint
from handpose_lib.training.checkpoint import (
    CHECKPOINT_VERSION,
    gpu_count_line,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

LOGGER = checkpoint.__name__


def _pretend_gpus(monkeypatch, count: int) -> list[tuple[int, torch.Tensor]]:
    """torch.cuda as checkpoint.py sees it on a machine with `count` GPUs (0: no CUDA); the
    (device, state) pairs that reach torch.cuda.set_rng_state, in call order."""
    calls: list[tuple[int, torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, device="cuda": calls.append((device, state))
    )
    return calls


def _saved_gpu_states(count: int) -> list[torch.Tensor]:
    """`count` distinct stand-ins for torch.cuda.get_rng_state_all() (16 bytes each)."""
    return [torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(count)]


def _state_with_gpus(count: int) -> dict:
    """This process's CPU generators, with the CUDA states of `count` GPUs added."""
    return {**rng_state(), "cuda": _saved_gpu_states(count)}


def test_four_saved_one_present_restores_state_0_onto_device_0_only(monkeypatch, caplog):
    calls = _pretend_gpus(monkeypatch, 1)
    state = _state_with_gpus(4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        set_rng_state(state)
    assert [device for device, _ in calls] == [0]
    assert torch.equal(calls[0][1], state["cuda"][0])
    assert [r.getMessage() for r in caplog.records] == [gpu_count_line(4, 1)]
    assert "4 GPU(s), 1 visible" in caplog.records[0].getMessage()


def test_one_saved_two_present_restores_device_0_and_leaves_device_1(monkeypatch, caplog):
    calls = _pretend_gpus(monkeypatch, 2)
    state = _state_with_gpus(1)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        set_rng_state(state)
    assert [device for device, _ in calls] == [0]
    assert torch.equal(calls[0][1], state["cuda"][0])
    assert [r.getMessage() for r in caplog.records] == [gpu_count_line(1, 2)]


def test_as_many_present_as_saved_restores_each_in_order_without_a_warning(monkeypatch, caplog):
    calls = _pretend_gpus(monkeypatch, 2)
    state = _state_with_gpus(2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        set_rng_state(state)
    assert [device for device, _ in calls] == [0, 1]
    assert all(
        torch.equal(got, saved) for (_, got), saved in zip(calls, state["cuda"], strict=True)
    )
    assert caplog.records == []


def test_without_cuda_the_saved_gpu_states_are_skipped(monkeypatch, caplog):
    calls = _pretend_gpus(monkeypatch, 0)
    state = _state_with_gpus(4)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        set_rng_state(state)  # no error
    assert calls == []
    assert [r.getMessage() for r in caplog.records] == [gpu_count_line(4, 0)]
    # The CPU generators are still restored.
    torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.get_rng_state(), state["torch"])


def test_the_gpu_states_survive_a_weights_only_load(monkeypatch, tmp_path):
    calls = _pretend_gpus(monkeypatch, 1)
    saved = _state_with_gpus(4)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"version": CHECKPOINT_VERSION, "rng": saved})
    set_rng_state(load_checkpoint(path)["rng"])  # torch.load(weights_only=True)
    assert [device for device, _ in calls] == [0]
    assert torch.equal(calls[0][1], saved["cuda"][0])


@pytest.mark.parametrize(
    ("saved", "present", "line"),
    [
        (4, 1, "4 GPU(s), 1 visible here: restored on GPU 0, the states of GPUs 1-3 unused, "),
        (1, 2, "1 GPU(s), 2 visible here: restored on GPU 0, GPU 1 left as is, "),
        (4, 0, "4 GPU(s), 0 visible here: the states of GPUs 0-3 unused"),
        (0, 2, "0 GPU(s), 2 visible here: GPUs 0-1 left as is, "),
    ],
)
def test_the_warning_says_which_states_went_where(saved, present, line):
    assert line in gpu_count_line(saved, present)
