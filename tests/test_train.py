"""Trainer: config round trip, training end to end, exact resume, divergence stop, predictions
in the community format, device fallback (DDP on gloo: tests/test_batch_split.py). Smoke sizes
(32 px crops, 16 frames)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from handpose_lib import profiles, uvd_format
from handpose_lib import train as cli
from handpose_lib.datasets.scene import LOCALIZATION_SCENE
from handpose_lib.evaluate import evaluate_uvd
from handpose_lib.profiles import make_run_config
from handpose_lib.training import data, engine
from handpose_lib.training.checkpoint import load_checkpoint
from handpose_lib.training.config import (
    ConfigError,
    RunConfig,
    SourceSpec,
    TrainConfig,
    center_kind,
)
from handpose_lib.training.data import read_centers
from handpose_lib.training.distributed import select_device
from handpose_lib.training.engine import TrainingDiverged, train
from handpose_lib.training.inference import evaluate_run, load_model, predict, write_predictions


def smoke(model: str = "attention", **overrides) -> RunConfig:
    return make_run_config("smoke", model).with_overrides(overrides)


def weights(run_dir: Path, name: str = "checkpoint.pt") -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / name)["model"]


def test_config_json_round_trip(tmp_path):
    for profile in profiles.PROFILES:
        for model in ("attention", "plain", "locnet"):
            config = make_run_config(profile, model)
            assert RunConfig.load(config.save(tmp_path / "config.json")) == config
    nyu = make_run_config("paper", "direct", data="nyu")
    assert (nyu.model.num_joints, nyu.crop.cube_mm, nyu.data.val.split) == (14, 300.0, "test")
    faithful = make_run_config("paper_faithful").train
    assert (faithful.batch_size, faithful.lr, faithful.momentum, faithful.weight_decay) == (
        32,
        0.1,
        0.9,
        5e-5,
    )
    assert len(faithful.lr_milestones) == 2
    assert faithful.lr_gamma == 0.1


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config field 'train.learning_rate'"):
        smoke(**{"train.learning_rate": 0.1})
    with pytest.raises(ValueError, match="input_size"):
        smoke(**{"crop.input_size": 64})
    bad = smoke().to_dict()
    bad["train"]["lr_scheduler"] = [1, 2]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match=r"config.json: config.train: unknown .*lr_sch"):
        RunConfig.load(path)
    path.write_text("{")
    with pytest.raises(ConfigError, match=r"config.json:1: not valid JSON"):
        RunConfig.load(path)
    with pytest.raises(FileNotFoundError):
        RunConfig.load(tmp_path / "missing")


@pytest.mark.slow  # trains
def test_smoke_training_learns_and_logs(tmp_path):
    config = smoke(**{"train.epochs": 4, "train.lr_milestones": [3], "augment": None})
    result = train(config, tmp_path)
    history = pd.read_csv(tmp_path / "metrics.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert {"lr", "train_loss", "train_det", "train_reg", "val_mean_error_mm", "time_s"} <= set(
        history.columns
    )
    assert list(history["lr"]) == pytest.approx([0.01, 0.01, 0.01, 0.001])
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert np.isfinite(history["val_mean_error_mm"]).all()
    assert result.best_metric == history["val_mean_error_mm"].min()
    assert RunConfig.load(tmp_path) == config
    model, loaded = load_model(tmp_path, "last")
    assert loaded == config
    assert not model.training
    saved = weights(tmp_path)
    assert all(torch.equal(tensor, saved[name]) for name, tensor in model.state_dict().items())
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        train(config, tmp_path)

    # The throughput record: 4 epochs of 4 steps, each epoch's first step untimed.
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs"] == 4
    assert summary["steps_timed"] == (4 - 1) * 4
    assert summary["samples_per_s"] > 0
    assert summary["batch_per_step"] == 4
    assert summary["peak_host_rss_mb"] > 50  # torch alone takes more
    assert summary["peak_gpu_mb"] is None
    assert summary["data_prep_frames"] == 16
    assert 0 < summary["data_prep_s"] < sum(history["time_s"]) + 60
    assert (summary["world_size"], summary["device"], summary["sync_batchnorm"]) == (
        1,
        "cpu",
        False,
    )


@pytest.mark.slow  # trains
def test_resume_gives_identical_weights(tmp_path):
    # Augmentation on; the lr drops after epoch 1 (restored with the optimizer) and again
    # after epoch 3, which only a restored scheduler gets right.
    overrides = {"train.epochs": 3, "train.lr_milestones": [1, 3]}
    config = smoke("two_branch", **overrides)
    train(config, tmp_path / "straight")

    def crash(epoch, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", on_epoch_end=crash)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["epoch"] == 1
    with pytest.raises(ValueError, match=r"\['train.lr'\] differ"):
        train(
            smoke("two_branch", **overrides, **{"train.lr": 0.5}), tmp_path / "resumed", resume=True
        )
    result = train(config, tmp_path / "resumed", resume=True)

    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    a = pd.read_csv(tmp_path / "straight" / "metrics.csv").drop(columns="time_s")
    b = pd.read_csv(tmp_path / "resumed" / "metrics.csv").drop(columns="time_s")
    pd.testing.assert_frame_equal(a, b)
    assert list(result.history["epoch"]) == [1, 2, 3]


@pytest.mark.slow  # trains
def test_diverging_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    config = smoke(**{"train.epochs": 3})
    saved: dict[int, str] = {}

    def remember(epoch, record):
        saved[epoch] = hashlib.sha256((tmp_path / "checkpoint.pt").read_bytes()).hexdigest()

    real_loss = engine.compute_loss
    calls = {"n": 0}

    def nan_in_epoch_2(config, model, batch):
        loss, parts = real_loss(config, model, batch)
        calls["n"] += 1
        if calls["n"] == 5:  # 4 steps per epoch: step 1 of epoch 2
            loss, parts = loss * float("nan"), {**parts, "total": parts["total"] * float("nan")}
        return loss, parts

    monkeypatch.setattr(engine, "compute_loss", nan_in_epoch_2)
    # Read back every 25 steps (here: at the epoch's last, step 4), it names step 1.
    assert config.train.sync_every > 4
    with pytest.raises(
        TrainingDiverged, match=r"epoch 2, step 1: loss = nan.*checkpoint .* is kept"
    ):
        train(config, tmp_path, on_epoch_end=remember)
    assert list(saved) == [1]
    assert hashlib.sha256((tmp_path / "checkpoint.pt").read_bytes()).hexdigest() == saved[1]
    model, _ = load_model(tmp_path, "last")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1

    # Through the command line: a huge learning rate, a clear message and exit status 2.
    monkeypatch.setattr(engine, "compute_loss", real_loss)
    code = cli.main(
        ["--profile", "smoke", "--run-dir", str(tmp_path / "cli"), "--set", "train.lr=1e6"]
    )
    assert code == 2
    assert "training stopped: loss diverged at epoch 1, step" in capsys.readouterr().err


@pytest.mark.slow  # trains
def test_predictions_in_community_format(tmp_path):
    train(smoke(**{"train.epochs": 1}), tmp_path / "pose")
    out = tmp_path / "pose_preds.txt"
    result = evaluate_run(tmp_path / "pose", out_path=out, device="cpu")
    uvd = uvd_format.read_uvd(out, 16, expected_frames=8)
    assert np.isfinite(result.mean_error_mm)
    assert result.errors_mm.shape == (8, 16)

    model, config = load_model(tmp_path / "pose")
    dataset = data.build_dataset(config, "val")
    direct = predict(model, dataset, batch_size=3)
    # The file keeps 3 decimals (0.5e-3 rounding); float32 convolutions at another batch size
    # add a few 1e-5 px on top.
    np.testing.assert_allclose(direct, uvd, atol=1e-3)
    gt = np.stack([dataset[i]["uvd"].numpy() for i in range(len(dataset))])
    again = evaluate_uvd(uvd, gt, "icvl", "ours").mean_error_mm
    assert again == pytest.approx(result.mean_error_mm, abs=1e-3)

    # LocNet: refined centres (N, 3), written as one-joint uvd, usable as pose-crop centres.
    train(smoke("locnet", **{"train.epochs": 1}), tmp_path / "loc")
    centers_path = tmp_path / "centers.txt"
    loc = evaluate_run(tmp_path / "loc", out_path=centers_path, device="cpu")
    centers = read_centers(centers_path, expected_frames=8)
    assert centers.shape == (8, 3)
    assert np.isfinite(loc.mean_error_mm)
    spec = SourceSpec("synthetic", num_frames=8, seed=1, centers=str(centers_path))
    item = data.build_dataset(config, "val", spec)[0]
    np.testing.assert_allclose(item["center_uvd"].numpy(), centers[0])
    write_predictions(tmp_path / "again.txt", centers)
    with pytest.raises(uvd_format.FormatError, match="8 frames, expected 16"):
        read_centers(tmp_path / "again.txt", expected_frames=16)


def test_throughput_times_the_steps_after_each_epochs_first():
    throughput = engine.Throughput(torch.device("cpu"))
    assert throughput.summary(32) == {"samples_per_s": None, "steps_timed": 0}
    for steps in (5, 1, 3):  # an epoch of one step times nothing
        throughput.boundary(1)
        if steps > 1:
            throughput.boundary(steps)
    assert throughput.steps == 4 + 2
    throughput.seconds = 3.0
    assert throughput.summary(32) == {"samples_per_s": 32 * 6 / 3.0, "steps_timed": 6}


def test_a_small_split_on_cuda_turns_sync_batchnorm_on_and_the_log_says_how():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    global_32 = TrainConfig(batch_size=32)
    per_gpu = replace(global_32, batch_scope="per_process", batch_size=8)
    assert not engine.use_sync_batchnorm(global_32, 1, cuda)
    assert not engine.use_sync_batchnorm(global_32, 2, cuda)  # 16 per process
    assert engine.use_sync_batchnorm(global_32, 4, cuda)  # 8 per process
    assert not engine.use_sync_batchnorm(global_32, 4, cpu)  # SyncBatchNorm: CUDA only
    assert not engine.use_sync_batchnorm(per_gpu, 4, cuda)  # the batch the user chose
    assert engine.use_sync_batchnorm(replace(per_gpu, sync_batchnorm=True), 4, cuda)
    assert engine.split_line("run", global_32, 1, False) == (
        "run: batch of 32 per step = 1 process(es) x 32"
    )
    assert engine.split_line("run", global_32, 4, True) == (
        "run: batch of 32 per step = 4 process(es) x 8 (train.batch_size 32 split over the "
        "processes; train.batch_scope=per_process gives each process 32), SyncBatchNorm "
        "(8 < 16 per process)"
    )
    assert engine.split_line("run", replace(per_gpu, sync_batchnorm=True), 4, True) == (
        "run: batch of 32 per step = 4 process(es) x 8 (train.batch_scope=per_process: 8 per "
        "process), SyncBatchNorm"
    )


def test_device_selection_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        select_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto", local_rank=1) == torch.device("cuda", 1)


def test_scene_is_on_for_the_localization_training_data_only(tmp_path):

    for profile in profiles.PROFILES:
        loc = make_run_config(profile, "locnet")
        assert loc.data.train.scene == LOCALIZATION_SCENE
        assert loc.data.val.scene is None  # the frames the pose runs are validated on
        assert make_run_config(profile, "attention").data.train.scene is None
        assert RunConfig.load(loc.save(tmp_path / "config.json")) == loc
    assert make_run_config("smoke", "locnet", data="icvl").data.train.scene is None
    off = make_run_config("smoke", "locnet").with_overrides({"data.train.scene": None})
    assert off.data.train.scene is None
    partial = SourceSpec(num_frames=2, scene={"background": True, "wall_gap_mm": [400, 500]})
    assert partial.scene.wall_gap_mm == (400, 500)
    assert not partial.scene.forearm_to_edge
    with pytest.raises(ValueError, match=r"SourceSpec.scene: unknown fields \['torso'\]"):
        SourceSpec(num_frames=2, scene={"torso": True})
    with pytest.raises(ValueError, match=r"scene applies to rendered frames .* not to 'icvl'"):
        SourceSpec("icvl", scene=LOCALIZATION_SCENE)

    # The scene changes the depth around the hand, never the hand's labels.
    spec = SourceSpec(num_frames=2, seed=3)
    plain, scened = (
        data.build_source(spec),
        data.build_source(replace(spec, scene=LOCALIZATION_SCENE)),
    )
    np.testing.assert_array_equal(plain[1].uvd, scened[1].uvd)
    assert not np.array_equal(plain[1].depth_mm, scened[1].depth_mm)
    assert asdict(loc)["data"]["train"]["scene"]["forearm_to_edge"] is True


def test_centre_kinds_are_explicit(tmp_path):
    assert center_kind("com") == ("com", None)
    assert center_kind("xyz:/d/center_test_refined.txt") == ("xyz", "/d/center_test_refined.txt")
    assert center_kind("uvd:c.txt") == ("uvd", "c.txt")
    assert center_kind("runs/centers.txt") == ("uvd", "runs/centers.txt")  # older configs
    with pytest.raises(ValueError, match=r"centers='xyz:': expected xyz:PATH"):
        SourceSpec(num_frames=1, centers="xyz:")
    assert data.centers_option("com") == "com"
    assert data.centers_option(str(tmp_path / "c.txt")) == f"xyz:{tmp_path / 'c.txt'}"
    assert data.centers_option("uvd:c.txt") == f"uvd:{Path('c.txt').resolve()}"


@pytest.mark.slow  # trains
def test_a_run_on_the_zero_plateau_says_so_once_in_one_line(tmp_path, caplog):
    # Zero heads and an lr too small to move them: the heatmaps stay all-zero (ratio 1).
    stuck = {
        "model.zero_init_heads": True,
        "train.lr": 1e-9,
        "train.plateau_check_steps": 3,
        "train.sync_every": 1,
        "data.val": None,
    }
    with caplog.at_level("WARNING", logger="handpose_lib.training.engine"):
        train(smoke(**stuck), tmp_path / "stuck")
    lines = [r.getMessage() for r in caplog.records if "zero plateau" in r.getMessage()]
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert "after 3 steps" in lines[0]
    assert "1.00 x that of all-zero" in lines[0]
    summary = json.loads((tmp_path / "stuck" / "summary.json").read_text())
    assert summary["plateau_warning"] == lines[0]
    progress = json.loads((tmp_path / "stuck" / "progress.json").read_text())
    assert progress["warning"] == lines[0]

    caplog.clear()
    with caplog.at_level("WARNING", logger="handpose_lib.training.engine"):
        train(smoke(**{**stuck, "train.plateau_check_steps": 0}), tmp_path / "off")
    assert not [r for r in caplog.records if "zero plateau" in r.getMessage()]
    assert "plateau_warning" not in json.loads((tmp_path / "off" / "summary.json").read_text())
