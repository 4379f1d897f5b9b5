"""The profile registry: every profile builds a valid run of every model on every dataset, the
crops a notebook shows are the crops training uses, and names resolve with clear errors."""

from __future__ import annotations

import pytest

from handpose_lib import profiles
from handpose_lib.joints import num_joints
from handpose_lib.preprocess import AugmentConfig, required_context
from handpose_lib.profiles import ENV_PROFILE, PROFILES, get_profile, resolve_profile
from handpose_lib.training.config import MODELS, RunConfig


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_builds_every_run(name, tmp_path):
    profile = get_profile(name)
    assert profile.name == name
    for data in profiles.DATA_CHOICES:
        for model in MODELS:
            config = profile.run_config(model, data)
            assert isinstance(config, RunConfig)
            assert config.profile == name
            assert config.model.input_size == config.crop.input_size == profile.input_size
            if config.task == "pose":
                assert config.model.variant == model
                assert config.model.num_joints == num_joints(data if data == "nyu" else "icvl")
                assert config.data.train.centers == "joints"  # pose crops at the true centre
            else:
                assert config.data.train.centers == "com"
            assert config.train == profile.train
            assert RunConfig.load(config.save(tmp_path / "config.json")) == config


@pytest.mark.parametrize("name", list(PROFILES))
def test_notebook_crops_are_the_training_crops(name):
    profile = get_profile(name)
    for dataset, data in (("synthetic", "synthetic"), ("icvl", "icvl"), ("nyu", "nyu")):
        shown = profile.crop_config(dataset)
        trained = profile.run_config("attention", data).crop
        assert shown == trained
        assert shown.heatmap_sigma == profile.heatmap_sigma
    # Synthetic hands use ICVL's joint layout and cube.
    assert profile.crop_config("synthetic") == profile.crop_config("icvl")
    assert profile.crop_config("nyu").cube_mm != profile.crop_config("icvl").cube_mm
    with pytest.raises(ValueError, match="unknown dataset 'msra'"):
        profile.crop_config("msra")


def test_profile_values_the_notebooks_and_runner_read():
    assert {n: p.seeds for n, p in PROFILES.items()} == {
        "paper": (0, 1, 2),
        "paper_faithful": (0, 1, 2),
        "cpu": (0,),
        "smoke": (0, 1),
        "long": (0, 1, 2),
    }
    assert {n: p.cell_timeout_s for n, p in PROFILES.items()} == {
        "paper": None,
        "paper_faithful": None,
        "cpu": 3600,
        "smoke": 600,
        "long": None,
    }
    assert {n: p.notebook_frames for n, p in PROFILES.items()} == {
        "paper": 1000,
        "paper_faithful": 1000,
        "cpu": 200,
        "smoke": 20,
        "long": 200,
    }
    sigma = {n: p.heatmap_sigma for n, p in PROFILES.items()}
    assert sigma == {"paper": 2.0, "paper_faithful": 1.0, "cpu": 2.0, "smoke": 1.0, "long": 2.0}


def test_every_recipe_difference_from_the_paper_is_a_named_departure():
    assert profiles.recipe_differences("paper_faithful") == {}
    for name, profile in PROFILES.items():
        # Settings name fields exactly ("train.lr") or a whole group ("train.*").
        named = {f.strip() for d in profile.departures for f in d.setting.split(":")[-1].split(",")}
        differences = profiles.recipe_differences(name)
        unnamed = [f for f in differences if f not in named and f"{f.split('.')[0]}.*" not in named]
        assert not unnamed, f"{name}: {unnamed} differ from the paper without a departure"
        assert all(d.reason and d.paper and d.ours for d in profile.departures), name
    # The paper route's changes, each with its reason (README "Profiles").
    assert set(profiles.recipe_differences("paper")) == {
        "heatmap_sigma",
        "model.det_reduction",
        "model.zero_init_heads",
        "train.optimizer",
        "train.lr",
        "augment.rotation_deg",
    }
    rows = profiles.departures_table("paper")
    assert {"setting", "paper", "ours", "reason"} == set(rows[0])
    # long: the same networks and recipe as cpu, 3x the optimizer steps, three seeds.
    cpu, long = get_profile("cpu"), get_profile("long")
    assert (long.posenet, long.locnet, long.augment) == (cpu.posenet, cpu.locnet, cpu.augment)
    steps = {p.name: p.train.epochs * (p.train_frames // p.train.batch_size) for p in (cpu, long)}
    assert steps == {"cpu": 768, "long": 2304}


def test_paper_faithful_is_the_papers_recipe():
    faithful = get_profile("paper_faithful")
    for profile in (faithful, get_profile("paper")):
        assert (profile.input_size, profile.heatmap_size, profile.posenet.channels) == (
            128,
            64,
            128,
        )
        assert profile.posenet.num_stacks == 2
    tc = faithful.train
    assert (tc.optimizer, tc.batch_size, tc.lr, tc.momentum, tc.weight_decay) == (
        "sgd",
        32,
        0.1,
        0.9,
        5e-5,
    )
    assert (tc.lr_schedule, len(tc.lr_milestones), tc.lr_gamma) == ("step", 2, 0.1)
    assert faithful.posenet.det_reduction == "mse"  # nn.MSELoss(); the sum diverges under SGD 0.1
    assert not faithful.posenet.zero_init_heads
    # The paper route keeps the batch, weight decay and the schedule's shape.
    paper = get_profile("paper").train
    assert (paper.batch_size, paper.weight_decay, paper.lr_milestones) == (32, 5e-5, (10, 15))


def test_gpu_profiles_cache_nyu_crops_whole_under_rotation():
    for name in ("paper", "paper_faithful"):
        profile = get_profile(name)
        assert profile.data_config("nyu").cache_dir == "run"
        assert profile.data_config("icvl").cache_dir is None
        context = profile.crop_config("nyu").context
        assert (
            required_context(profile.augment) <= context < required_context(profile.augment) + 0.01
        )
    # +-30 degrees, scale up to 1.1, shift 10 %: 1.1 (cos 30 + sin 30) + 0.2 of the half side.
    assert required_context(AugmentConfig(rotation_deg=30.0)) == pytest.approx(1.7026, abs=1e-4)
    assert required_context(AugmentConfig(rotation_deg=0.0, scale=(1.0, 1.0), translate=0.0)) == 1


def test_unknown_names_are_clear_errors():
    with pytest.raises(
        ValueError, match=r"unknown profile 'huge'.*'paper', 'paper_faithful', 'cpu', 'smoke'"
    ):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        get_profile("smoke").run_config("resnet")
    with pytest.raises(ValueError, match="unknown data 'msra'"):
        get_profile("smoke").run_config("attention", "msra")


def test_resolve_profile_follows_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_PROFILE, "smoke")
    assert resolve_profile("cpu").name == "smoke"
    monkeypatch.delenv(ENV_PROFILE)
    assert resolve_profile("cpu") is get_profile("cpu")
    monkeypatch.setenv(ENV_PROFILE, "huge")
    with pytest.raises(ValueError, match=r"\$HANDPOSE_PROFILE='huge'"):
        resolve_profile("cpu")
    monkeypatch.delenv(ENV_PROFILE)
    with pytest.raises(ValueError, match="PROFILE='gpu'"):
        resolve_profile("gpu")


def test_inconsistent_profile_is_refused():
    cpu = get_profile("cpu")
    with pytest.raises(ValueError, match="disagree with the networks"):
        profiles.Profile(**{**cpu.__dict__, "name": "bad", "input_size": 128})
