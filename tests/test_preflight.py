"""Checks before any data work (`training.preflight`): the machine lines, the GPU profiles'
refusal of a silent CPU fallback, /dev/shm for the loader workers and the crop cache's disk,
each refusal with its numbers and fix in one line; the byte estimates against a real item
and a real crop cache; the command line's exit status 2."""

from __future__ import annotations

import shutil
import sys
import types

import pytest
import torch
from torch.utils.data import DataLoader

from handpose_lib import machine
from handpose_lib import train as cli
from handpose_lib.profiles import make_run_config
from handpose_lib.training import data, engine, preflight
from handpose_lib.training.preflight import PreflightError

GiB, MiB = 2**30, 2**20


@pytest.fixture
def cpu_only(monkeypatch):
    """A CPU build of torch on a CPU of 100 GFLOP/s (no matmul measured)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(machine, "cached_matmul_gflops", lambda device="cpu": 100.0)


def fake_free(monkeypatch, free: int) -> None:
    usage = types.SimpleNamespace(total=free, used=0, free=free)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)


def one_line(message: str) -> str:
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------
# The device


@pytest.mark.usefixtures("cpu_only")
@pytest.mark.parametrize("profile", ["paper", "paper_faithful", "paper-rehearsal-cpu"])
def test_a_gpu_profile_refuses_a_silent_cpu(profile):
    with pytest.raises(PreflightError) as err:
        preflight.check_device(profile, "auto")
    message = one_line(str(err.value))
    assert message.startswith(f"profile {profile!r} is sized for a GPU, but CUDA is not usable")
    assert f"this torch ({torch.__version__}) is a CPU build" in message
    assert "float32 matmul 100 GFLOP/s" in message
    assert "measured: 11 s a step of 32 at 300 GFLOP/s" in message
    assert "make setup TORCH_INDEX=https://download.pytorch.org/whl/cu<XYZ>" in message
    assert 'pass --device cpu (DEVICE="cpu" for the runner and notebooks)' in message
    if profile == "paper-rehearsal-cpu":  # 1 epoch of 3 steps of 4 at 300 / 100 x 11 / 32 s
        assert "a step of 4 takes ~4 s" in message
        assert "an epoch of 3 steps ~12 s and its 1 epoch(s) ~12 s" in message
    else:  # 300,000 synthetic frames in steps of 32, 20 epochs
        assert "a step of 32 takes ~33 s" in message
        assert "an epoch of 9375 steps ~3.6 days and its 20 epoch(s) ~71.6 days" in message


@pytest.mark.usefixtures("cpu_only")
def test_the_cost_comes_from_the_runs_own_steps():
    icvl = make_run_config("paper", "attention", data="icvl")  # all 331,006 training frames
    with pytest.raises(PreflightError, match=r"an epoch of 10343 steps ~31.6 h") as err:
        preflight.check_device("paper", "auto", config=icvl, gflops=300.0)
    assert "a step of 32 takes ~11 s" in str(err.value)


@pytest.mark.usefixtures("cpu_only")
def test_cpu_named_or_another_profile_passes():
    assert preflight.check_device("paper", "cpu") == torch.device("cpu")
    assert preflight.check_device("paper-rehearsal-cpu", "cpu") == torch.device("cpu")
    for profile in ("cpu", "long", "smoke", "cpu-rehearsal-cpu", ""):
        assert preflight.check_device(profile, "auto") == torch.device("cpu")
    with pytest.raises(PreflightError, match=r"device cuda requested, but CUDA is not usable"):
        preflight.check_device("cpu", "cuda")
    with pytest.raises(PreflightError, match="device must be auto, cuda or cpu"):
        preflight.check_device("cpu", "gpu")


def test_with_cuda_auto_is_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert preflight.check_device("paper", "auto", local_rank=1) == torch.device("cuda", 1)
    assert preflight.check_device("cpu", "auto") == torch.device("cuda", 0)
    assert preflight.check_device("paper", "cpu") == torch.device("cpu")


def test_a_cuda_build_without_a_gpu_says_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(preflight, "driver_version", lambda: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(PreflightError) as err:
        preflight.check_device("paper", "auto", gflops=100.0)
    assert "is built for CUDA 12.8, but no GPU is visible, or the NVIDIA driver (not found)" in (
        one_line(str(err.value))
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(PreflightError, match=r"CUDA_VISIBLE_DEVICES='' hides every GPU"):
        preflight.check_device("paper", "auto", gflops=100.0)


# ------------------------------------------------------------------------------------------
# The machine


@pytest.mark.usefixtures("cpu_only")
def test_machine_lines_on_a_cpu_name_the_matmul_rate(monkeypatch):
    monkeypatch.setattr(machine, "cached_matmul_gflops", lambda device="cpu": 123.4)
    lines = preflight.machine_lines()
    assert lines[0] == f"torch {torch.__version__}, CPU build"
    assert lines[1].startswith(f"CPU: {preflight.cpu_model()}, ")
    assert f"torch threads {torch.get_num_threads()}" in lines[1]
    assert lines[2] == "CPU float32 matmul: 123 GFLOP/s"
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(preflight, "driver_version", lambda: None)
    assert preflight.machine_lines()[:2] == [
        f"torch {torch.__version__}, CUDA 12.8 build",
        f"GPU: none usable (torch {torch.__version__} is built for CUDA 12.8, but no GPU is "
        "visible, or the NVIDIA driver (not found) is older than CUDA 12.8 needs)",
    ]


def test_machine_lines_on_a_gpu_name_each_gpu_and_the_driver(monkeypatch, tmp_path):
    props = types.SimpleNamespace(name="NVIDIA H100", total_memory=80 * GiB, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not importable
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert preflight.machine_lines() == [
        f"torch {torch.__version__}, CUDA 12.8 build",
        "GPU 0: NVIDIA H100, 80.0 GiB, compute capability 9.0",
        "GPU 1: NVIDIA H100, 80.0 GiB, compute capability 9.0",
        "driver: unknown",
    ]
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 550.54.15\necho 550.54.15\n")
    smi.chmod(0o755)
    assert preflight.machine_lines()[-1] == "driver: 550.54.15"
    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"570.86.10",
    )
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert preflight.driver_version() == "570.86.10"


# ------------------------------------------------------------------------------------------
# Shared memory


def test_sample_bytes_are_a_real_items(monkeypatch):
    config = make_run_config("smoke", "attention")
    dataset = data.build_dataset(config, "train")
    item = dataset[0]
    assert sum(t.numel() * t.element_size() for t in item.values()) == preflight.sample_bytes(
        config
    )
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert sum(t.numel() * t.element_size() for t in batch.values()) == 4 * (
        preflight.sample_bytes(config)
    )
    # LocNet's runs load the same items; NYU's have 14 joints.
    assert preflight.sample_bytes(make_run_config("smoke", "locnet")) == preflight.sample_bytes(
        config
    )
    nyu = make_run_config("smoke", "attention", data="nyu")
    joints_less = 2 * (16 * 16 * 4 + 4 + 3 * 4 + 3 * 8)  # two joints fewer
    assert preflight.sample_bytes(nyu) == preflight.sample_bytes(config) - joints_less

    # No workers: nothing in shared memory. With 2 workers, 2 processes on the node:
    # two training loaders of 2 a process and rank 0's validation loader.
    assert preflight.loader_shm_bytes(config) == 0
    workers = config.with_overrides({"train.num_workers": 2})
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    item_bytes = preflight.sample_bytes(config)
    assert preflight.loader_shm_bytes(workers) == 3 * 2 * 2 * 2 * item_bytes
    no_val = workers.with_overrides({"data.val": None})
    assert preflight.loader_shm_bytes(no_val, local_world_size=1, world_size=1) == 2 * 2 * 4 * (
        item_bytes
    )


def test_a_small_dev_shm_refuses_with_the_fix(monkeypatch, tmp_path):
    paper = make_run_config("paper")  # 8 workers, batch 32 of 128 px crops
    needed = preflight.loader_shm_bytes(paper, local_world_size=1, world_size=1)
    assert needed == 2 * 8 * 2 * 32 * preflight.sample_bytes(paper)
    assert 300 * MiB < needed < 350 * MiB
    fake_free(monkeypatch, 64 * MiB)  # Docker's default
    with pytest.raises(PreflightError) as err:
        preflight.check_shm(needed, tmp_path, workers=8)
    message = one_line(str(err.value))
    assert message.startswith(f"{tmp_path} has 64.0 MiB free, but the DataLoaders keep ~320.7 MiB")
    assert "8 worker(s) per loader, 2 batches each; with a 1.5x margin 481.1 MiB" in message
    # 1 worker: 2 x 2 x 10.0 MiB x 1.5 = 60.1 MiB fits in 64
    assert message.endswith(
        "Fix: docker run --shm-size=2g (or --ipc=host), or fewer loader workers: "
        "--set train.num_workers=1"
    )
    fake_free(monkeypatch, 16 * MiB)
    with pytest.raises(PreflightError, match=r"train.num_workers=0 \(loading in the training"):
        preflight.check_shm(needed, tmp_path, workers=8)
    fake_free(monkeypatch, 3 * GiB)
    with pytest.raises(PreflightError, match=r"--shm-size=5g .* train.num_workers=5$"):
        preflight.check_shm(3 * GiB, tmp_path, workers=8)


def test_enough_dev_shm_no_dev_shm_or_no_workers_pass(monkeypatch, tmp_path):
    fake_free(monkeypatch, 1 * GiB)
    preflight.check_shm(600 * MiB, tmp_path, workers=8)  # 1.5 x 600 MiB < 1 GiB
    fake_free(monkeypatch, 1)
    preflight.check_shm(600 * MiB, tmp_path / "missing", workers=8)  # macOS: no /dev/shm
    preflight.check_shm(0, tmp_path)


# ------------------------------------------------------------------------------------------
# Disk


def test_crop_cache_bytes_are_the_built_caches_files(tmp_path):
    # Context 1.5 stores 32 + 2 x 8 px crops; train (16 frames) and validation (8) caches.
    config = make_run_config("smoke", "attention").with_overrides(
        {"crop.context": 1.5, "data.cache_dir": str(tmp_path / "cache")}
    )
    folder, needed = preflight.cache_needs(config)
    assert folder == tmp_path / "cache"
    assert needed == preflight.crop_cache_bytes(config, 16) + preflight.crop_cache_bytes(config, 8)
    data.build_dataset(config, "train")
    train_files = list((tmp_path / "cache" / "train").glob("*.npy"))
    assert len(train_files) == 5
    assert sum(p.stat().st_size for p in train_files) == preflight.crop_cache_bytes(config, 16)
    images = (tmp_path / "cache" / "train" / "images.npy").stat().st_size
    assert images == 128 + 16 * 48 * 48 * 2
    # A resumed run reuses the cache: only what is missing counts.
    assert preflight.cache_needs(config)[1] == needed - preflight.crop_cache_bytes(config, 16)
    data.build_dataset(config, "val")
    assert preflight.cache_needs(config)[1] == 0
    # Dataset files read whole: the distribution's split sizes.
    nyu = make_run_config("paper", "attention", data="nyu")
    assert nyu.data.cache_dir == "run"
    assert preflight.cache_needs(nyu) is None  # not resolved to a folder yet
    nyu = nyu.with_overrides({"data.cache_dir": str(tmp_path / "nyu")})
    nyu_bytes = preflight.crop_cache_bytes(nyu, 72757) + preflight.crop_cache_bytes(nyu, 8252)
    assert preflight.cache_needs(nyu)[1] == nyu_bytes
    assert 7 * GiB < nyu_bytes < 8 * GiB  # 218 x 218 float16 crops (context 1.71)
    assert preflight.cache_needs(make_run_config("paper")) is None  # no cache


def test_a_full_disk_refuses_with_the_numbers(monkeypatch, tmp_path):
    fake_free(monkeypatch, 1 * GiB)
    target = tmp_path / "run" / "cache"
    with pytest.raises(PreflightError) as err:
        preflight.check_disk(target, 7 * GiB)
    message = one_line(str(err.value))
    assert message.startswith(
        f"{target}: the crop cache needs ~7.0 GiB, but the disk of {tmp_path} has 1.0 GiB free"
    )
    assert "--set data.cache_dir=DIR" in message
    assert "--set data.cache_dir=null" in message
    preflight.check_disk(target, 1 * GiB)


# ------------------------------------------------------------------------------------------
# The command line


@pytest.mark.usefixtures("cpu_only")
@pytest.mark.parametrize("profile", ["paper", "paper-rehearsal-cpu"])
def test_the_train_command_refuses_in_one_line(profile, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert cli.cli(["--profile", profile, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: profile {profile!r} is sized for a GPU")
    assert "--device cpu" in err
    assert not run_dir.exists()  # before any data work


@pytest.mark.usefixtures("cpu_only")
def test_the_train_command_takes_a_rehearsal_with_cpu_named(monkeypatch, tmp_path, caplog):
    seen = {}

    def fake_train(config, run_dir, resume=False):
        seen["config"] = config
        return types.SimpleNamespace(metric="m", best_metric=1.0, best_epoch=1)

    monkeypatch.setattr(cli, "train", fake_train)
    monkeypatch.setattr(preflight, "SHM_PATH", str(tmp_path / "none"))  # a small /dev/shm
    args = ["--profile", "paper-rehearsal-cpu", "--device", "cpu", "--run-dir", str(tmp_path)]
    with caplog.at_level("INFO", logger="handpose_lib.train"):
        assert cli.cli(args) == 0
    assert seen["config"].profile == "paper-rehearsal-cpu"
    assert seen["config"].train.device == "cpu"
    assert (seen["config"].train.batch_size, seen["config"].train.steps_per_epoch) == (4, 3)
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0] == f"torch {torch.__version__}, CPU build"
    assert "CPU float32 matmul: 100 GFLOP/s" in logged


def test_an_unknown_profile_lists_the_known_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--profile", "papr", "--run-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--profile: unknown profile 'papr': expected one of ('paper', " in err
    assert "paper-rehearsal-cpu" in err


@pytest.mark.usefixtures("cpu_only")
def test_the_command_refuses_a_small_dev_shm_before_any_data_work(monkeypatch, tmp_path, capsys):
    assert preflight.SHM_PATH == "/dev/shm"
    monkeypatch.setattr(preflight, "SHM_PATH", str(tmp_path))
    fake_free(monkeypatch, MiB // 10)
    run_dir = tmp_path / "run"
    args = ["--profile", "smoke", "--device", "cpu", "--run-dir", str(run_dir)]
    assert cli.cli([*args, "--set", "train.num_workers=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: {tmp_path} has 0.1 MiB free, but the DataLoaders keep ~0.6 MiB")
    assert err.endswith("--set train.num_workers=0 (loading in the training process, slower)")
    assert not run_dir.exists()


@pytest.mark.usefixtures("cpu_only")
def test_the_command_refuses_a_full_disk_before_any_data_work(monkeypatch, tmp_path, capsys):
    # The cpu profile crops 4096 synthetic frames and the 1596 rendered test poses into
    # <run_dir>/cache: 64 x 64 float16 crops, ~47 MiB.
    config = make_run_config("cpu")
    expected = preflight.crop_cache_bytes(config, 4096) + preflight.crop_cache_bytes(config, 1596)
    assert 45 * MiB < expected < 50 * MiB
    fake_free(monkeypatch, 10 * MiB)
    run_dir = tmp_path / "run"
    args = ["--profile", "cpu", "--device", "cpu", "--run-dir", str(run_dir)]
    assert cli.cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(
        f"error: {run_dir / 'cache'}: the crop cache needs ~{expected / MiB:.1f} MiB, but the "
        f"disk of {tmp_path} has 10.0 MiB free"
    )
    assert not run_dir.exists()


# ------------------------------------------------------------------------------------------
# Callers of engine.train (no preflight): a warning in one line


@pytest.mark.usefixtures("cpu_only")
def test_engine_warns_where_a_gpu_profile_falls_back_to_the_cpu():
    cpu = torch.device("cpu")
    paper = make_run_config("paper-rehearsal-cpu")
    warning = one_line(engine.cpu_fallback_warning(paper, cpu))
    assert warning.startswith(
        "attention: profile 'paper-rehearsal-cpu' is sized for a GPU, but trains on the CPU "
        "(a CPU build of torch)"
    )
    assert warning.endswith(
        "set train.device='cpu' to mean it, or install a CUDA build of torch "
        "(docs/install-and-tests.md)"
    )
    assert engine.cpu_fallback_warning(paper.with_overrides({"train.device": "cpu"}), cpu) == ""
    assert engine.cpu_fallback_warning(paper, torch.device("cuda", 0)) == ""
    assert engine.cpu_fallback_warning(make_run_config("cpu"), cpu) == ""


@pytest.mark.slow  # trains (one smoke epoch)
@pytest.mark.usefixtures("cpu_only")
def test_engine_train_logs_the_warning_once(tmp_path, caplog):
    # The smoke network under a GPU profile's name: the warning, then training as before.
    config = make_run_config("smoke").with_overrides(
        {"profile": "paper", "train.epochs": 1, "data.val": None}
    )
    with caplog.at_level("WARNING", logger="handpose_lib.training.engine"):
        engine.train(config, tmp_path)
    lines = [r.getMessage() for r in caplog.records if "sized for a GPU" in r.getMessage()]
    assert lines == [engine.cpu_fallback_warning(config, torch.device("cpu"))]
