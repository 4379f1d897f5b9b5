"""The GPU profiles' shared crop caches (`training.data.shared_cache_root`): one cache per data
source and crop setting, built once and opened by every run that needs it, also by processes
asking at the same time; every other profile keeps its per-run cache. Smoke-size runs marked
as the paper profile's stand for the GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from handpose_lib.paths import ENV_CROP_CACHE_DIR, REPO_ROOT
from handpose_lib.preprocess import cache
from handpose_lib.profiles import get_profile, make_run_config
from handpose_lib.training.config import RunConfig
from handpose_lib.training.data import (
    build_dataset,
    cache_root,
    shared_cache_root,
    uses_shared_cache,
    with_run_cache,
)
from handpose_lib.training.engine import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smoke_run(profile: str) -> RunConfig:
    """The smoke profile's run (16 synthetic training frames, 8 validation frames, crops
    of 32 px) with a crop cache of "run", under the profile name `profile`."""
    config = get_profile("smoke").run_config("attention", "synthetic")
    return replace(config, profile=profile, data=replace(config.data, cache_dir="run"))


@pytest.fixture
def shared_root(tmp_path, monkeypatch) -> Path:
    """A fresh shared crop cache root, set as $HANDPOSE_CROP_CACHE_DIR."""
    root = tmp_path / "crop-cache"
    monkeypatch.setenv(ENV_CROP_CACHE_DIR, str(root))
    return root


@pytest.fixture
def builds(monkeypatch) -> list[Path]:
    """The folders crop caches are built in (written, not reopened), in order."""
    built: list[Path] = []
    write = cache._write_cache

    def counted(source, directory, *args, **kwargs):
        built.append(directory)
        return write(source, directory, *args, **kwargs)

    monkeypatch.setattr(cache, "_write_cache", counted)
    return built


def cache_folder(config: RunConfig, run_dir: Path, role: str = "train") -> Path:
    """The folder of the crop cache a run in `run_dir` opens for `role` (built if needed)."""
    dataset = build_dataset(with_run_cache(config, run_dir), role, report=lambda _: None)
    assert dataset.cache is not None
    return dataset.cache.directory


# --------------------------------------------------------------------------- which runs share


def test_gpu_profiles_and_their_rehearsals_share_cpu_profiles_do_not(tmp_path, shared_root):
    for name in ("paper", "paper_faithful", "paper-rehearsal", "paper-rehearsal-cpu"):
        config = get_profile(name).run_config("attention", "nyu")
        assert config.data.cache_dir == "run"
        assert uses_shared_cache(config), name
        assert cache_root(config, tmp_path / "run") == shared_root
    for name in ("cpu", "long"):
        config = make_run_config(name, "attention", "synthetic")
        assert config.data.cache_dir == "run"
        assert not uses_shared_cache(config), name
        assert cache_root(config, tmp_path / "run") == tmp_path / "run" / "cache"
    # The paper profile caches NYU crops only: its synthetic runs have no cache at all.
    synthetic = get_profile("paper").run_config("attention", "synthetic")
    assert not uses_shared_cache(synthetic)
    assert cache_root(synthetic, tmp_path / "run") is None


def test_the_root_is_the_environment_variable_else_the_checkouts_data_folder(monkeypatch):
    monkeypatch.setenv(ENV_CROP_CACHE_DIR, "/somewhere/crop-cache")
    assert shared_cache_root() == Path("/somewhere/crop-cache")
    for unset in ("", None):
        if unset is None:
            monkeypatch.delenv(ENV_CROP_CACHE_DIR)
        else:
            monkeypatch.setenv(ENV_CROP_CACHE_DIR, unset)
        assert shared_cache_root() == REPO_ROOT / "data" / "cache" / "crops"  # ignored by git


# --------------------------------------------------------------------------- one build each


def test_two_gpu_runs_share_one_cache_built_once(tmp_path, shared_root, builds):
    config = smoke_run("paper")
    first = cache_folder(config, tmp_path / "run1")
    second = cache_folder(config, tmp_path / "run2")
    assert first == second
    assert builds == [first]  # the second run opened it
    assert first.parent == shared_root
    assert first.name.startswith("icvl-")  # synthetic hands in the ICVL layout
    assert (shared_root / f"{first.name}.lock").is_file()  # beside the folder, not in it
    assert json.loads((first / "meta.json").read_text())["complete"]
    assert not (tmp_path / "run1" / "cache").exists()
    assert not (tmp_path / "run2" / "cache").exists()

    # Validation crops are another cache; a rehearsal's run of the same crops shares both.
    val = cache_folder(config, tmp_path / "run1", "val")
    assert val.parent == shared_root
    assert val != first
    rehearsal = replace(config, profile="paper-rehearsal-cpu")
    assert cache_folder(rehearsal, tmp_path / "run3", "val") == val
    assert builds == [first, val]


def test_another_crop_setting_or_other_centres_get_another_cache(tmp_path, shared_root, builds):
    config = smoke_run("paper")
    plain = cache_folder(config, tmp_path / "run1")
    wider = cache_folder(config.with_overrides({"crop.cube_mm": 300.0}), tmp_path / "run2")
    com = cache_folder(config.with_overrides({"data.train.centers": "com"}), tmp_path / "run3")
    assert len({plain, wider, com}) == 3
    assert {p.parent for p in (plain, wider, com)} == {shared_root}
    assert builds == [plain, wider, com]


def test_a_cpu_profile_run_keeps_its_own_cache(tmp_path, shared_root, builds):
    run_dir = tmp_path / "run"
    folder = cache_folder(smoke_run("cpu"), run_dir)
    assert folder == run_dir / "cache" / "train"
    assert builds == [folder]
    assert sorted(p.name for p in (run_dir / "cache").iterdir()) == ["train"]  # no lock file
    assert not shared_root.exists()


def test_an_interrupted_shared_build_is_rebuilt(tmp_path, shared_root, builds):
    config = smoke_run("paper")
    folder = cache_folder(config, tmp_path / "run1")
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "complete": False}))  # as if killed
    with pytest.warns(UserWarning, match="incomplete"):
        assert cache_folder(config, tmp_path / "run2") == folder
    assert builds == [folder, folder]


@pytest.mark.slow  # trains
def test_a_gpu_runs_saved_config_still_says_run(tmp_path, shared_root):
    config = smoke_run("paper").with_overrides(
        {"train.epochs": 1, "train.steps_per_epoch": 1, "train.device": "cpu"}
    )
    train(config, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["cache_dir"] == "run"
    assert RunConfig.load(tmp_path / "run") == config
    assert not (tmp_path / "run" / "cache").exists()
    assert len([p for p in shared_root.iterdir() if p.is_dir()]) == 2  # train and val crops


# --------------------------------------------------------------------------- at the same time

# Loads a run config, waits for the start signal, then opens the run's training crops; each
# build appends the process id to BUILDS and takes half a second more, so that the other
# process asks while it is under way.
_CHILD = """
import json, os, sys, time
from pathlib import Path
from handpose_lib.preprocess import cache
from handpose_lib.training.config import RunConfig
from handpose_lib.training.data import build_dataset, with_run_cache

config_file, run_dir, builds, go = sys.argv[1:]
write = cache._write_cache

def counted(*args, **kwargs):
    with open(builds, "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(0.5)
    return write(*args, **kwargs)

cache._write_cache = counted
config = RunConfig.from_dict(json.loads(Path(config_file).read_text()))
Path(run_dir).mkdir()
(Path(run_dir) / "ready").touch()
while not Path(go).exists():
    time.sleep(0.01)
dataset = build_dataset(with_run_cache(config, run_dir), "train")
print(dataset.cache.directory)
"""


@pytest.mark.slow  # two Python processes importing torch
def test_two_processes_asking_at_once_build_it_once(tmp_path, shared_root):
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(smoke_run("paper").to_dict()))
    builds, go = tmp_path / "builds.txt", tmp_path / "go"
    runs = [tmp_path / "run1", tmp_path / "run2"]
    env = {**os.environ, ENV_CROP_CACHE_DIR: str(shared_root), "OMP_NUM_THREADS": "1"}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(config_file), str(run), str(builds), str(go)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((run / "ready").exists() for run in runs):
            assert all(child.poll() is None for child in children), "a child process ended"
            assert time.monotonic() < deadline, "the child processes did not start"
            time.sleep(0.05)
        go.touch()  # both ask now
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    folders = {Path(out.strip()) for out, _ in outputs}
    assert len(folders) == 1
    assert next(iter(folders)).parent == shared_root
    assert len(builds.read_text().split()) == 1  # one built it, the other waited and opened it
