"""The trainer's parts: the one rule for which config fields change the weights, the
learning-rate schedules (values computed by hand), progress.json and the provenance of a run."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os

import pandas as pd
import pytest
import torch

from handpose_lib.profiles import make_run_config
from handpose_lib.training import data, provenance
from handpose_lib.training.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    config_differences,
    field_effect,
    is_resumable_change,
    load_provenance,
    resume_differences,
    validation_fields,
    weight_differences,
)
from handpose_lib.training.engine import train
from handpose_lib.training.progress import PROGRESS_FILE
from handpose_lib.training.schedule import cosine_factor, make_scheduler

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_field_effects_come_from_the_dataclass_metadata():
    assert field_effect("train.lr") == "weights"
    assert field_effect("model.channels") == "weights"
    assert field_effect("data.train.num_frames") == "weights"
    assert field_effect("data.cache_dir") == "weights"  # float16 crops change the numbers
    assert field_effect("crop.heatmap_sigma") == "weights"
    for bookkeeping in ("train.progress", "train.num_workers", "train.device", "profile"):
        assert field_effect(bookkeeping) == "none"
    # The whole validation source, and each of its fields, steer only validation.
    for name in ("data.val", "data.val.centers", "data.val.num_frames", "train.val_every"):
        assert field_effect(name) == "validation"
    assert field_effect("no.such.field") == "weights"  # unknown: assume it matters
    assert validation_fields() == ["data.val", "train.val_every"]
    assert is_resumable_change("train.epochs")
    assert is_resumable_change("data.val.centers")
    assert not is_resumable_change("train.lr")
    assert not is_resumable_change("train.seed")


def test_one_rule_for_reuse_and_resume():
    base = make_run_config("smoke", "attention")
    changed = base.with_overrides(
        {
            "train.progress": True,  # none
            "train.val_every": 2,  # validation
            "data.val.centers": "joints",  # validation
            "train.epochs": 3,  # weights, but a run can be continued
        }
    )
    assert config_differences(base, changed) == [
        "data.val.centers",
        "train.epochs",
        "train.val_every",
    ]
    assert weight_differences(base, changed, "last") == ["train.epochs"]
    assert resume_differences(base, changed) == []
    assert resume_differences(base, changed.with_overrides({"train.lr": 0.5})) == ["train.lr"]
    # A cosine schedule ends at the last epoch: its length may not change on resume.
    cosine = base.with_overrides({"train.lr_schedule": "cosine"})
    assert resume_differences(cosine, cosine.with_overrides({"train.epochs": 3})) == [
        "train.epochs"
    ]


def test_cosine_factor_by_hand():
    # 10 steps, 2 of warm-up: 0, 1/2, then half a cosine over the remaining 8 steps.
    expected = {0: 0.0, 1: 0.5, 2: 1.0, 4: 0.5 * (1 + math.cos(math.pi / 4)), 6: 0.5, 10: 0.0}
    for step, factor in expected.items():
        assert cosine_factor(step, 10, 2) == pytest.approx(factor, abs=1e-12)
    assert cosine_factor(0, 4) == 1.0  # no warm-up: starts at the full rate


def test_schedulers_give_the_hand_computed_rates():
    def rates(tc: TrainConfig, steps_per_epoch: int, calls: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=tc.lr)
        scheduler = make_scheduler(optimizer, tc, steps_per_epoch)
        out = []
        for _ in range(calls):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    cosine = TrainConfig(epochs=2, lr=0.1, lr_schedule="cosine", warmup_steps=1)
    # 2 epochs x 3 steps, 1 warm-up step: 0, then 0.05 (1 + cos(pi k / 5)), k = 0..4.
    expected = [0.0] + [0.05 * (1 + math.cos(math.pi * k / 5)) for k in range(5)]
    assert rates(cosine, 3, 6) == pytest.approx(expected)
    # The paper's step schedule, per epoch, as before: 0.1 until epoch 10, then 0.01, 0.001.
    step = TrainConfig(epochs=20, lr=0.1, lr_milestones=(10, 15))
    per_epoch = rates(step, 100, 20)
    assert per_epoch[:10] == pytest.approx([0.1] * 10)
    assert per_epoch[10:15] == pytest.approx([0.01] * 5)
    assert per_epoch[15:] == pytest.approx([0.001] * 5)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=5)  # only with the cosine schedule
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(lr_schedule="linear")


@pytest.mark.slow  # trains
def test_cosine_run_logs_progress_and_provenance(tmp_path):
    config = make_run_config("smoke", "attention").with_overrides(
        {"train.lr_schedule": "cosine", "train.warmup_steps": 2, "augment": None}
    )
    seen = []

    def read_progress(epoch, record):
        seen.append(json.loads((tmp_path / PROGRESS_FILE).read_text()))

    train(config, tmp_path, on_epoch_end=read_progress)
    # 16 frames / batch 4 = 4 steps per epoch, 8 in all: the rate at the start of epoch 2
    # (step 4) is 0.01 * (1 + cos(pi * 2 / 6)) / 2.
    history = pd.read_csv(tmp_path / "metrics.csv")
    assert list(history["lr"]) == pytest.approx([0.0, 0.01 * 0.75])

    keys = {"name", "epoch", "epochs", "step", "steps", "elapsed_s", "eta_s", "updated"}
    assert all(set(p) == keys for p in seen)
    assert [(p["epoch"], p["step"], p["steps"], p["epochs"]) for p in seen] == [
        (1, 4, 4, 2),
        (2, 4, 4, 2),
    ]
    assert seen[0]["name"] == "attention"
    assert seen[0]["eta_s"] > 0
    assert seen[1]["eta_s"] == 0
    assert seen[1]["elapsed_s"] >= seen[0]["elapsed_s"] > 0
    assert json.loads((tmp_path / PROGRESS_FILE).read_text()) == seen[-1]

    recorded = load_provenance(tmp_path)
    assert recorded["package_version"] == importlib.metadata.version("handpose_lib")
    assert recorded["source_sha256"] == provenance.source_sha256()
    assert recorded["torch"] == torch.__version__
    commit, dirty = provenance.git_state()
    assert (recorded["git_commit"], recorded["git_dirty"]) == (commit, dirty)
    if commit is not None:
        assert len(commit) == 40
    # Provenance sits beside the config, outside its equality.
    assert RunConfig.load(tmp_path) == config


def test_code_difference_rule():
    now = provenance.current()
    assert provenance.code_difference(now, now) is None
    other = {**now, "source_sha256": "0" * 64, "git_commit": "f" * 40}
    assert "ffffffffff" in provenance.code_difference(other, now)
    assert "no provenance" in provenance.code_difference(None, now)
    resumed = {**now, "resumed_by": [other]}
    assert provenance.code_difference(resumed, now) is not None  # part of it ran other code


def test_provenance_must_be_an_object(tmp_path):
    config = make_run_config("smoke", "attention")
    data = {**config.to_dict(), "provenance": "abc"}
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert RunConfig.load(tmp_path) == config
    with pytest.raises(ConfigError, match=r"config.json: provenance: expected an object"):
        load_provenance(tmp_path)


@pytest.mark.slow  # trains
def test_channels_last_trains_the_same_model_up_to_float_rounding(tmp_path):
    """channels_last changes only the memory layout (and so the order of float sums): the
    losses and weights match the default layout closely, and it is a
    bookkeeping field (a run in one layout is reused for the other)."""
    config = make_run_config("smoke", "attention").with_overrides({"augment": None})
    nhwc = config.with_overrides({"train.channels_last": True})
    assert field_effect("train.channels_last") == "none"
    assert weight_differences(config, nhwc) == []
    plain = train(config, tmp_path / "nchw")
    fast = train(nhwc, tmp_path / "nhwc")
    assert fast.history["train_loss"].tolist() == pytest.approx(
        plain.history["train_loss"].tolist(), rel=1e-3
    )
    a = torch.load(tmp_path / "nchw" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "nhwc" / "checkpoint.pt", weights_only=True)["model"]
    for name, tensor in a.items():
        if tensor.is_floating_point():  # 8 SGD steps amplify rounding a little: 1% of the scale
            scale = tensor.abs().max().item()
            assert (b[name] - tensor).abs().max().item() <= 0.01 * scale + 1e-6, name
    assert any(
        t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) for t in b.values()
    )


def test_one_off_data_work_uses_every_core_only_for_large_passes():
    cpu = make_run_config("cpu", "attention")
    assert cpu.train.num_workers == 0
    assert data.data_workers(cpu, data.PARALLEL_MIN_FRAMES - 1) == 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert data.data_workers(cpu, data.PARALLEL_MIN_FRAMES) == cores
    three = cpu.with_overrides({"train.num_workers": 3})
    assert data.data_workers(three, 10) == 3  # the run's own setting wins
