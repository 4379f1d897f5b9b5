"""DDP on gloo: how a step's batch is split over the processes, that the split and the
gradient averaging are right (two gloo processes of 16 give the gradients of one process of
32), the command-line trainer under torchrun (replicas identical, rank 0 writes the run), and
that run resumed by one process (a checkpoint carries over to another number of processes).
The gloo checks share one torchrun start of two processes (about 7 s of interpreter, torch and
torch._dynamo imports each time)."""

from __future__ import annotations

import copy
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from handpose_lib import machine
from handpose_lib import train as train_cli
from handpose_lib.profiles import make_run_config
from handpose_lib.training import distributed, engine
from handpose_lib.training.checkpoint import load_checkpoint
from handpose_lib.training.config import RunConfig, TrainConfig
from handpose_lib.training.inference import load_model

REPO = Path(__file__).resolve().parent.parent

# One forward / backward of the engine's first batch (its sampler, loader and loss), through
# DDP when torchrun starts more than one process; rank 0 saves the gradients. Mode "eval":
# on CPU, BatchNorm in eval mode (with batch statistics a half batch normalizes differently
# by design); mode "sync": on CUDA, BatchNorm with batch statistics, SyncBatchNorm over the
# processes.
GRADIENTS = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from handpose_lib.profiles import make_run_config
    from handpose_lib.training import distributed, engine
    from handpose_lib.training.config import build_model

    mode = sys.argv[2]
    kind = "cpu" if mode == "eval" else "cuda"
    info = distributed.init_distributed(kind)
    device = distributed.select_device(kind, info.local_rank)
    config = make_run_config("smoke", "attention").with_overrides(
        {"train.batch_size": 32, "data.train.num_frames": 64, "data.val": None,
         "train.device": kind}
    )
    torch.manual_seed(0)
    model = build_model(config).to(device)
    model.train()
    if mode == "eval":
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                module.eval()
    step_model = model
    if info.world_size > 1:
        if mode == "sync":
            model = step_model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        step_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    train_set, sampler, _, _ = engine.training_data(config, info)
    sampler.set_epoch(0)
    loader = engine.make_loader(train_set, sampler, config.train, info, device)
    keys = ("image", "heatmaps", "depth", "uvd_crop")
    batch = {k: v.to(device) for k, v in next(iter(loader)).items() if k in keys}
    loss, _ = engine.compute_loss(config, step_model, batch)
    loss.backward()
    if info.is_main:
        torch.save([p.grad.cpu() for p in model.parameters()], sys.argv[1])
    """
)
LEAVE_THE_GROUP = "distributed.finish(info)\n"


def _torchrun(processes: int, *args: str, timeout: float = 180) -> None:
    """`torchrun --standalone --nproc_per_node PROCESSES ARGS`, one torch thread per rank, in a
    session of its own: past the timeout the launcher and its ranks are killed together
    (killing the launcher alone would leave hung ranks behind)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", str(processes), *args]
    with subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            pytest.fail(f"ran past {timeout} s; killed with its children:\n{stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]


def _gradients(tmp_path: Path, processes: int, mode: str = "eval") -> list[torch.Tensor]:
    """The gradients of GRADIENTS: under torchrun for more than one process, else in this
    process (torchrun's one process is a plain run: WORLD_SIZE 1 joins no group)."""
    script, out = tmp_path / "gradients.py", tmp_path / f"grads_{mode}_{processes}.pt"
    script.write_text(GRADIENTS + LEAVE_THE_GROUP)
    if processes == 1:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("WORLD_SIZE", raising=False)
            patch.setattr(sys, "argv", [str(script), str(out), mode])
            runpy.run_path(str(script), run_name="__main__")
        return torch.load(out)
    _torchrun(processes, str(script), str(out), mode)
    return torch.load(out)


# After GRADIENTS, in the same two processes: the command-line trainer, as
# `torchrun --nproc_per_node 2 -m handpose_lib.train ARGS` runs it (`cli` is its entry point),
# in the process group already joined (leaving it and joining a new one can hang gloo when
# one rank leaves late).
THEN_THE_TRAINER = """
from handpose_lib import train as train_cli
status = train_cli.cli(sys.argv[3:])
distributed.finish(info)
raise SystemExit(status)
"""


@pytest.fixture(scope="module")
def gloo_pair(tmp_path_factory) -> tuple[list[torch.Tensor], Path]:
    """One torchrun start of two gloo processes: the gradients of GRADIENTS (mode "eval"),
    then a one-epoch smoke run of the command-line trainer; the gradients and the run folder."""
    folder = tmp_path_factory.mktemp("gloo")
    script, out, run_dir = folder / "gloo_pair.py", folder / "grads_eval_2.pt", folder / "ddp"
    script.write_text(GRADIENTS + THEN_THE_TRAINER)
    trainer = ["--profile", "smoke", "--model", "attention", "--run-dir", str(run_dir)]
    trainer += ["--device", "cpu", "--set", "train.epochs=1"]
    _torchrun(2, str(script), str(out), "eval", *trainer)
    return torch.load(out), run_dir


@pytest.mark.slow  # two processes under torchrun
def test_two_processes_of_16_give_the_gradients_of_one_of_32(tmp_path, gloo_pair):
    one, two = _gradients(tmp_path, 1), gloo_pair[0]
    assert len(one) == len(two) > 0
    for a, b in zip(one, two, strict=True):
        assert a is not None
        assert b is not None
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    # Not trivially equal: the gradients are far from zero.
    assert max(float(g.abs().max()) for g in one) > 1e-3


def test_the_batch_is_global_unless_said_per_process():
    global_32 = TrainConfig(batch_size=32)
    assert engine.batch_split(global_32, 1) == (32, 32)
    assert engine.batch_split(global_32, 4) == (8, 32)
    per_gpu = TrainConfig(batch_size=32, batch_scope="per_process")
    assert engine.batch_split(per_gpu, 4) == (32, 128)
    with pytest.raises(ValueError, match=r"batch_size 32 does not split over 3 .*per_process"):
        engine.batch_split(global_32, 3)
    with pytest.raises(ValueError, match="batch_scope must be global or per_process"):
        TrainConfig(batch_scope="per_gpu")


def test_sync_batchnorm_on_a_cpu_run_is_a_clear_error(monkeypatch, tmp_path):
    config = make_run_config("smoke").with_overrides(
        {"train.sync_batchnorm": True, "train.device": "cpu"}
    )
    monkeypatch.setattr(engine.distributed, "init_distributed", lambda _: engine.DistInfo(0, 2, 0))
    with pytest.raises(ValueError, match="sync_batchnorm needs CUDA"):
        engine.train(config, tmp_path / "run")


@pytest.mark.slow
@pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="SyncBatchNorm runs on CUDA; needs two GPUs"
)
def test_sync_batchnorm_over_two_gpus_of_16_gives_the_gradients_of_one_of_32(tmp_path):
    one, two = _gradients(tmp_path, 1, "sync"), _gradients(tmp_path, 2, "sync")
    for a, b in zip(one, two, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # two processes under torchrun
def test_ddp_two_processes_on_gloo(gloo_pair):
    run_dir = gloo_pair[1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    digest_0, digest_1 = summary["replica_digests"]
    assert digest_0 == digest_1
    model, _ = load_model(run_dir, "last")
    assert distributed.parameter_digest(model) == digest_0
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 1
    written = {"config.json", "checkpoint.pt", "best.pt", "metrics.csv", "summary.json"}
    written |= {"progress.json"}
    assert {p.name for p in run_dir.iterdir()} == written  # rank 0 only, no temporary files


def _record_epoch_starts(monkeypatch) -> list[dict]:
    """Patch engine._train_epoch to copy the model's and the optimizer's state as each epoch
    starts; the copies, in call order ({"model": ..., "optimizer": ...})."""
    starts: list[dict] = []
    train_epoch = engine._train_epoch

    def recording(config, training, *args, **kwargs):
        model = distributed.unwrap(training.model).state_dict()
        optimizer = training.optimizer.state_dict()
        starts.append({"model": copy.deepcopy(model), "optimizer": copy.deepcopy(optimizer)})
        return train_epoch(config, training, *args, **kwargs)

    monkeypatch.setattr(engine, "_train_epoch", recording)
    return starts


@pytest.mark.slow  # two smoke epochs in this process (the torchrun start is gloo_pair's)
def test_a_two_process_run_resumes_in_one_process(gloo_pair, tmp_path, monkeypatch):
    """gloo_pair's epoch 1 (2 processes x 2 samples) continued by one process (1 x 4), once
    through `engine.train` and once through the command line, each from a copy (the run folder
    stays as test_ddp_two_processes_on_gloo reads it)."""
    ddp_run = gloo_pair[1]
    by_engine, by_cli = tmp_path / "engine", tmp_path / "cli"
    shutil.copytree(ddp_run, by_engine)
    shutil.copytree(ddp_run, by_cli)
    saved = load_checkpoint(ddp_run / "checkpoint.pt")
    starts = _record_epoch_starts(monkeypatch)
    # The command line's first log lines measure the CPU's matmul rate (1-3 s); not under test.
    monkeypatch.setattr(machine, "cached_matmul_gflops", lambda device="cpu": 100.0)

    config = RunConfig.load(by_engine).with_overrides({"train.epochs": 2})
    result = engine.train(config, by_engine, resume=True)
    status = train_cli.cli(["--run-dir", str(by_cli), "--resume", "--set", "train.epochs=2"])
    assert status == 0

    # Each resume trained epoch 2 only, from the 2-process checkpoint's weights and momenta.
    assert len(starts) == 2
    for start in starts:
        torch.testing.assert_close(start["model"], saved["model"], rtol=0, atol=0)
        momenta, saved_momenta = start["optimizer"]["state"], saved["optimizer"]["state"]
        assert len(momenta) == len(saved_momenta) > 0
        torch.testing.assert_close(momenta, saved_momenta, rtol=0, atol=0)
    # Epoch 1's row is the 2-process run's, unchanged; epoch 2's lr is the restored schedule's.
    ddp_rows = pd.read_csv(ddp_run / "metrics.csv")
    rows = pd.read_csv(by_engine / "metrics.csv")
    assert rows["epoch"].tolist() == [1, 2]
    assert result.history["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(rows.loc[:0, list(ddp_rows.columns)], ddp_rows)
    assert rows["lr"][1] == saved["optimizer"]["param_groups"][0]["lr"] < rows["lr"][0]
    final = load_checkpoint(by_engine / "checkpoint.pt")
    # The schedule went on from the checkpoint's (a fresh one would stand at epoch 1).
    assert final["scheduler"]["last_epoch"] == 2

    summary = json.loads((by_engine / "summary.json").read_text())
    assert (summary["world_size"], summary["batch_per_process"], summary["epochs"]) == (1, 4, 2)
    weights = {k: w for k, w in final["model"].items() if w.is_floating_point()}
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())
    assert any(not torch.equal(w, saved["model"][k]) for k, w in weights.items())  # trained
    # Deterministic on CPU: the command line's resume of the same checkpoint ends identical.
    by_cli_summary = json.loads((by_cli / "summary.json").read_text())
    assert by_cli_summary["world_size"] == 1
    assert by_cli_summary["replica_digests"] == summary["replica_digests"]
