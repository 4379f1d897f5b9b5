"""The rehearsal of the paper's route (`python -m handpose_lib.reproduce --rehearse`): it takes
no cheaper road than the full run (only the named differences), its projection is the measured
rate times the full run's work, and it runs every stage end to end (smoke sizes here, on a
small NYU folder in the real format)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from handpose_lib import evaluate, profiles, rehearsal, reproduce, tables, uvd_format
from handpose_lib.training.config import RunConfig
from handpose_lib.uvd_format import read_uvd

# Bookkeeping a rehearsal training may also differ in: the profile's name (a rehearsal's own),
# the device it was told to use, progress bars; the notebooks set the same roots and
# validation centres in a full run.
BOOKKEEPING = ("profile", "train.device", "train.progress")
SET_BY_THE_NOTEBOOKS = ("data.train.root", "data.val.root", "data.val.centers")


def flat(data: dict, prefix: str = "") -> dict[str, object]:
    """{"train": {"lr": 1}} -> {"train.lr": 1}."""
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(a: RunConfig, b: RunConfig) -> set[str]:
    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return {k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)}


def allowed(extra: tuple[str, ...] = ()) -> set[str]:
    return set(profiles.REHEARSAL_DIFFERENCES) | set(BOOKKEEPING) | set(extra)


# --- the rehearsal profile -------------------------------------------------------------------


@pytest.mark.parametrize("base", ["paper", "paper_faithful", "cpu"])
@pytest.mark.parametrize("cpu", [True, False])
@pytest.mark.parametrize("dataset", ["synthetic", "icvl", "nyu"])
def test_a_rehearsal_differs_from_its_profile_only_in_the_named_fields(base, cpu, dataset):
    name = profiles.rehearsal_name(base, cpu)
    for model in ("attention", "plain", "locnet"):
        own = profiles.make_run_config(base, model, dataset)
        rehearsed = profiles.make_run_config(name, model, dataset)
        assert differences(own, rehearsed) <= allowed(), (name, model)
    rehearsed = profiles.get_profile(name)
    assert rehearsed.promises_learning is False
    assert rehearsed.train.steps_per_epoch == profiles.REHEARSAL.steps
    if not cpu:  # on a GPU the profile's own batch
        assert rehearsed.train.batch_size == profiles.get_profile(base).train.batch_size


def test_the_cheaper_roads_a_rehearsal_may_not_take_are_caught():
    """The comparison fails on anything outside the list: a smaller network, no workers, no
    mixed precision, another optimizer."""
    own = profiles.make_run_config("paper", "attention", "nyu")
    for field, value in (
        ("model.channels", 64),
        ("train.num_workers", 0),
        ("train.amp", False),
        ("train.optimizer", "sgd"),
        ("data.cache_dir", None),
    ):
        cheaper = own.with_overrides({field: value})
        assert differences(own, cheaper) - allowed() == {field}


def test_rehearsal_names_round_trip_and_unknown_ones_are_refused():
    assert profiles.rehearsal_name("paper", cpu=True) == "paper-rehearsal-cpu"
    assert profiles.parse_rehearsal("paper-rehearsal") == ("paper", False)
    assert profiles.base_profile_name("paper_faithful-rehearsal-cpu") == "paper_faithful"
    assert profiles.parse_rehearsal("paper") is None
    with pytest.raises(ValueError, match="unknown profile 'nope-rehearsal'"):
        profiles.get_profile("nope-rehearsal")


# --- the projection ---------------------------------------------------------------------------


def test_the_projection_is_the_measured_rate_times_the_full_runs_work():
    full = profiles.make_run_config("paper", "attention", "nyu")
    summary = {"samples_per_s": 8.0, "data_prep_s": 2.0, "data_prep_frames": 64}
    one = rehearsal.project_training(full, summary, inference_frames_per_s=20.0)
    frames = 72757  # NYU's training split: the paper profile reads all of it
    steps = frames // 32
    assert one.samples == full.train.epochs * steps * 32
    assert one.train_s == pytest.approx(one.samples / 8.0)
    assert one.cache_s == pytest.approx(2.0 / 64 * frames)
    passes = math.ceil(full.train.epochs / full.train.val_every)
    assert one.val_s == pytest.approx(passes * 8252 / 20.0)
    # Twice the rate, half the training time; the same rate on twice the epochs, twice.
    twice = rehearsal.project_training(full, {**summary, "samples_per_s": 16.0}, 20.0)
    assert twice.train_s == pytest.approx(one.train_s / 2)
    longer = full.with_overrides({"train.epochs": 2 * full.train.epochs})
    assert rehearsal.project_training(longer, summary, 20.0).train_s == pytest.approx(
        2 * one.train_s
    )


def test_a_training_without_a_measured_rate_cannot_be_projected():
    full = profiles.make_run_config("paper", "attention", "icvl")
    with pytest.raises(ValueError, match="no training rate measured"):
        rehearsal.project_training(full, {"name": "x", "samples_per_s": None}, 1.0)


def test_the_self_comparison_projection_counts_its_trainings_and_devices():
    base = profiles.get_profile("paper")
    rate = {"samples_per_s": 100.0, "world_size": 1}
    summaries = {
        rehearsal.LOCNET_RUN: rate,
        rehearsal.POSE_RUN: rate,
        f"{rehearsal.SELFCOMP_DIR}/plain_seed0": rate,
    }
    torchrun = {"samples_per_s": 150.0, "world_size": 2}
    rows = rehearsal.projection_rows(base, "icvl", summaries, {}, None, 4, torchrun)
    seconds = {r["stage"]: r["seconds"] for r in rows}
    per_run = rehearsal.project_training(base.run_config("attention", "icvl"), rate, None).total_s
    assert rehearsal.selfcomp_trainings(base) == 11
    assert seconds["self-comparison (notebook 04), 1 device"] == round(11 * per_run)
    assert seconds["self-comparison, 4 GPUs, one job each"] == round(3 * per_run)
    split = seconds["self-comparison, torchrun 2 processes, batch 32 split"]
    assert split == round(11 * per_run * 100 / 150)


# --- end to end -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory) -> Path:
    """A small NYU folder in the real format (train/, test/), written by the package."""
    root = tmp_path_factory.mktemp("rehearsal") / "NYU"
    return rehearsal.write_data("nyu", root, train_frames=64, test_frames=24)


@pytest.mark.slow
@pytest.mark.notebooks
def test_the_rehearsal_runs_every_stage_and_writes_its_table(
    nyu_root, tmp_path, monkeypatch, published_dir
):
    """`python -m handpose_lib.reproduce --rehearse --profile smoke --dataset nyu --device cpu`
    (the smoke profile's sizes stand in for the paper's here): the five notebooks in the full
    run's order with a rehearsal "Ours" row, torchrun and its resume, predict and evaluate; the
    table and projection in the run folder and nothing in figures/. Notebook 05 reads the
    published NYU files (`published_dir`: skipped with its reason where they cannot be had)."""
    committed = Path(reproduce.COMMITTED_FIGURES)
    before = {p: p.stat().st_mtime for p in committed.iterdir()}
    monkeypatch.delenv("HANDPOSE_FIGURES_DIR", raising=False)
    out = tmp_path / "run"
    argv = ["--rehearse", "--profile", "smoke", "--dataset", "nyu", "--device", "cpu"]
    assert reproduce.main([*argv, "--data-root", str(nyu_root), "--output", str(out)]) == 0
    executed = sorted(p.name for p in out.glob("[0-9][0-9]_*.ipynb"))
    assert executed == [p.name for p in reproduce.numbered_notebooks()]
    assert {p: p.stat().st_mtime for p in committed.iterdir()} == before

    # Every training took only the named differences from the profile's own run.
    name = profiles.rehearsal_name("smoke", cpu=True)
    trained = [out / "locnet", out / "pose_attention", out / rehearsal.TORCHRUN_RUN]
    trained += sorted((out / "selfcomp").glob("*_seed0"))
    # LocNet, notebook 03's attention (reused by notebook 04), plain in 04, torchrun
    assert len(trained) == 4
    for run in trained:
        saved = RunConfig.load(run)
        assert saved.profile == name
        model = "locnet" if saved.task == "locnet" else saved.model.variant
        own = profiles.make_run_config("smoke", model, "nyu")
        # The torchrun run was resumed for one more epoch (train.epochs, in the list).
        assert differences(own, saved) <= allowed(SET_BY_THE_NOTEBOOKS), run

    # torchrun with two gloo processes, then --resume with one.
    summary = json.loads((out / rehearsal.TORCHRUN_RUN / "summary.json").read_text())
    assert summary["world_size"] == 1
    assert summary["epochs"] == 2
    history = pd.read_csv(out / rehearsal.TORCHRUN_RUN / "metrics.csv")
    assert list(history["epoch"]) == [1, 2]

    # Table 1's rehearsal row: the rehearsal's frames, marked, not compared with the paper.
    table1 = pd.read_csv(out / "figures" / "table1.csv")
    row = table1[table1["method"] == evaluate.OURS_REHEARSAL_NAME].iloc[0]
    assert row["frames"] == profiles.REHEARSAL.val_frames
    assert pd.isna(row["difference (mm)"])
    assert row["source"].startswith("rehearsal: ")
    assert len(read_uvd(out / reproduce.OURS_PREDICTIONS, 14)) == profiles.REHEARSAL.val_frames

    # The stage table and the projection.
    report = (out / "rehearsal.md").read_text()
    for stage in ("torchrun, 2 processes", "--resume with 1 process", "predict", "evaluate"):
        assert f"| {stage} |" in report
    assert "Table 1 reached after" in report
    assert "bfloat16 autocast" in report  # what a CPU cannot exercise, under the table
    stages = pd.read_csv(out / "rehearsal.csv").set_index("stage")
    walls = stages.loc[stages["kind"] == "stage", "wall (s)"]
    assert (walls.dropna() > 0).all()
    assert walls.notna().sum() == 5 + 4  # five notebooks, four command-line stages
    # A training's rows carry its rate (wall time: its notebook's), the projection a time.
    assert stages.loc["  training pose_attention", "samples/s"] > 0
    projected = stages.loc[stages["kind"] == "projection", "seconds"]
    assert (projected > 0).all()


def test_a_rehearsal_row_in_table1_is_marked_and_not_compared(tmp_path, published_dir):
    """notebook 05 with OURS_NOTE: the row is named as a rehearsal, counts its own frames
    (scored against their own labels) and has no difference from the paper's number."""
    results = {"icvl": evaluate.evaluate_published("icvl", local_dir=published_dir)}
    uvd = np.random.default_rng(0).uniform(50, 250, (4, 16, 3))
    labels = uvd_format.write_uvd(tmp_path / "labels.txt", uvd)
    pred = uvd_format.write_uvd(tmp_path / "pred.txt", uvd + 1.0)
    note = "rehearsal: 4 frames"
    ours = {"icvl": evaluate.ours_result("icvl", pred, labels, note)}
    assert ours["icvl"].mean_error_mm > 0
    table = tables.table1(results, ours, note)
    row = table[table["method"] == evaluate.OURS_REHEARSAL_NAME].iloc[0]
    assert row["frames"] == 4
    assert pd.isna(row["difference (mm)"])
    assert row["source"] == note
    plain = tables.table1(results, {"icvl": evaluate.ours_result("icvl", pred, labels)})
    assert not pd.isna(plain.iloc[-1]["difference (mm)"])
