"""The Slurm job array of notebook 04's self-comparison (`handpose_lib.slurm`): the script's
tasks, and that a task's run is the one notebook 04 reuses."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from handpose_lib import ablation, machine, notebook, slurm
from handpose_lib import train as train_cli
from handpose_lib.profiles import ENV_PROFILE
from handpose_lib.training.config import RunConfig, config_differences


def parse_script(text: str) -> tuple[dict[str, str], dict[int, list[str]]]:
    """(#SBATCH option -> value, array index -> the task's command as argv)."""
    options = dict(re.findall(r"^#SBATCH --([\w-]+)=?(.*)$", text, re.MULTILINE))
    lines = re.findall(r"^ +(\d+)\) exec (.*) ;;$", text, re.MULTILINE)
    return options, {int(index): shlex.split(command) for index, command in lines}


def flag(argv: list[str], name: str) -> str:
    """The value after `name` in argv."""
    return argv[argv.index(name) + 1]


def write_script(tmp_path: Path, *extra: str, python: str | None = None) -> Path:
    """The script of a 2-variant x 2-seed paper array on NYU (nothing is read: the data root
    need not exist), written with --out; returns its path."""
    script = tmp_path / "selfcomp.sbatch"
    argv = ["--profile", "paper", "--dataset", "nyu", "--data-root", str(tmp_path / "nyu")]
    argv += ["--run-dir", str(tmp_path / "run"), "--seeds", "2", "--variants", "plain,attention"]
    argv += [*extra, "--out", str(script)]
    argv += ["--python", python] if python else []
    assert slurm.main(argv) == 0
    return script


def test_the_script_runs_one_task_per_variant_and_seed(tmp_path, monkeypatch):
    script = write_script(
        tmp_path, "--partition", "gpu", "--account", "lab", "--time", "1-12:00:00"
    )
    options, tasks = parse_script(script.read_text())
    assert options["array"] == "0-3"
    assert options["gres"] == "gpu:1"
    assert options["cpus-per-task"] == "10"  # the paper profile's 8 loader workers + 2
    assert (options["time"], options["partition"], options["account"]) == (
        "1-12:00:00",
        "gpu",
        "lab",
    )
    assert "requeue" in options
    log_dir = tmp_path / "run" / "slurm" / "logs"
    assert options["output"] == f"{log_dir}/selfcomp-paper-nyu_%A_%a.out"
    assert log_dir.is_dir()  # sbatch does not create it
    assert sorted(tasks) == [0, 1, 2, 3]

    # The notebook's own base config (its parameters as the runner passes them on a GPU).
    monkeypatch.delenv(ENV_PROFILE, raising=False)  # the tests' "smoke" would replace PROFILE
    nb = notebook.start(
        "paper", "nyu", str((tmp_path / "nyu").resolve()), str(tmp_path / "run"), str(tmp_path)
    )
    base = nb.run_config("attention")
    expected = [("plain", 0), ("plain", 1), ("attention", 0), ("attention", 1)]
    for index, (variant, seed) in enumerate(expected):
        argv = tasks[index]
        assert argv[1:3] == ["-m", "handpose_lib.train"]
        assert (flag(argv, "--model"), flag(argv, "--profile"), flag(argv, "--data")) == (
            variant,
            "paper",
            "nyu",
        )
        assert flag(argv, "--run-dir") == str(
            tmp_path / "run" / "selfcomp" / f"{variant}_seed{seed}"
        )
        assert flag(argv, "--set") == f"train.seed={seed}"
        assert flag(argv, "--device") == "cuda"
        assert "--resume" in argv
        # The config file is the run notebook 04 would train (only bookkeeping may differ).
        config = RunConfig.load(flag(argv, "--config"))
        assert config_differences(config, ablation.variant_config(base, variant, seed)) == []
        assert config.train.device == "cuda"


def test_notebook03_puts_attention_seed0_in_notebook_03s_folder(tmp_path):
    _, tasks = parse_script(write_script(tmp_path, "--notebook03").read_text())
    run = tmp_path / "run"
    assert flag(tasks[2], "--run-dir") == str(run / "pose_attention")
    assert flag(tasks[3], "--run-dir") == str(run / "selfcomp" / "attention_seed1")


def test_the_script_runs_the_task_slurm_names(tmp_path):
    """bash runs the line of $SLURM_ARRAY_TASK_ID (here printed by `echo` as the python)."""
    script = write_script(tmp_path, python="echo")
    _, tasks = parse_script(script.read_text())
    ran = subprocess.run(
        ["bash", str(script)],
        env={"SLURM_ARRAY_TASK_ID": "2", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.split() == tasks[2][1:]
    unknown = subprocess.run(
        ["bash", str(script)],
        env={"SLURM_ARRAY_TASK_ID": "4", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert (unknown.returncode, unknown.stderr.strip()) == (2, "no task 4")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variants", "plain,cnn"], "unknown variant 'cnn': expected one of ('plain',"),
        (["--variants", "plain,plain"], "['plain'] named more than once"),
        (["--seeds", "0"], "--seeds 0: expected at least one seed"),
        (["--time", "12h"], "--time '12h': expected HH:MM:SS or D-HH:MM:SS"),
        (["--cpus-per-task", "0"], "--cpus-per-task must be >= 1, got 0"),
        (["--variants", "plain", "--notebook03"], "--notebook03: attention seed 0 is not"),
        (["--profile", "gpu"], "unknown profile 'gpu': expected one of"),
        (["--dataset", "nyu"], "--dataset nyu needs --data-root"),
        (["--data-root", "/data/nyu"], "--data-root: synthetic data reads no dataset files"),
    ],
)
def test_bad_options_are_refused_naming_them(tmp_path, capsys, argv, message):
    base = ["--profile", "paper", "--run-dir", str(tmp_path), "--out", str(tmp_path / "s")]
    assert slurm.main([*base, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # one smoke training (seconds)
def test_an_array_task_trains_the_run_notebook_04_reuses(tmp_path, monkeypatch, one_torch_thread):
    """Run one task's command as the array would (on the CPU here), then notebook 04's path
    (`notebook.start` -> `nb.run_config` -> `ablation.train_all`) reuses it, training nothing."""
    # The trainer's first log lines measure the CPU's matmul rate (seconds): not tested here.
    monkeypatch.setattr(machine, "cached_matmul_gflops", lambda device="cpu": 100.0)
    run = tmp_path / "run"
    argv = ["--profile", "smoke", "--run-dir", str(run), "--variants", "plain", "--seeds", "1"]
    script = tmp_path / "smoke.sbatch"
    assert slurm.main([*argv, "--out", str(script)]) == 0
    _, tasks = parse_script(script.read_text())
    command = tasks[0][3:]  # after "python -m handpose_lib.train"
    command[command.index("--device") + 1] = "cpu"
    assert train_cli.main(command) == 0
    checkpoint = run / "selfcomp" / "plain_seed0" / "checkpoint.pt"
    trained_at = checkpoint.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("notebook 04 trained a run the array had finished")

    monkeypatch.setattr(ablation, "train", no_training)
    nb = notebook.start("smoke", "synthetic", "", str(run), str(tmp_path / "figures"), True)
    said: list[str] = []
    runs = ablation.train_all(
        nb.run_config("attention"), ["plain"], [0], nb.run_dir, jobs=1, report=said.append
    )
    assert [r.origin for r in runs] == ["loaded (finished earlier)"]
    assert runs[0].run_dir == run / "selfcomp" / "plain_seed0"
    assert checkpoint.stat().st_mtime_ns == trained_at
