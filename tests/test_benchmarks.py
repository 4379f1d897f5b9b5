"""The paper-route benchmarks run at a tiny size on CPU and measure what they claim: no host
read of a device value per training step, a resumable plateau study, a throughput table whose
rows appear as they are measured, syncs counted over training steps only; and the prepared GPU
check (benchmarks/gpu_check.sh, gpu_wheels.sh) is well-formed."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    """A benchmark script as a module (they import their siblings by file name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.mark.slow  # four tiny trainings
def test_a_training_step_reads_nothing_back_from_the_device():
    step_costs = _load("step_costs")
    for profile in ("paper", "paper_faithful"):
        costs = step_costs.per_step(step_costs.step_config(profile, tiny=True, batch=4))
        # Loss parts and the NaN check stay on the device between sync_every reads; the fused
        # optimizer keeps its step counters there.
        assert costs["host reads"] == 0, (profile, costs)
        assert 500 < costs["aten ops"] < 5000, (profile, costs)


def test_the_host_read_counter_counts():
    step_costs = _load("step_costs")
    with step_costs.count_host_reads() as counts:
        value = torch.ones(3).sum()
        float(value)
        value.item()
        bool(value > 0)
    assert (counts["__float__"], counts["item"], counts["__bool__"]) == (1, 1, 1)
    assert float(torch.ones(1)) == 1.0  # methods restored


@pytest.mark.slow  # trains twice
def test_plateau_study_resumes_and_reports(tmp_path, capsys):
    plateau = _load("paper_plateau")
    tiny = ["--width", "8", "--input-size", "32", "--frames", "64", "--val-frames", "16"]
    tiny += ["--val-every", "2", "--checkpoint-every", "2", "--threads", "1"]
    root = tmp_path / "runs"
    assert plateau.main(["--profile", "paper", "--steps", "2", "--run-root", str(root), *tiny]) == 0
    assert plateau.main(["--profile", "paper", "--steps", "4", "--run-root", str(root), *tiny]) == 0
    assert "resuming" in capsys.readouterr().out
    history = pd.read_csv(root / "paper" / "history.csv")
    assert list(history["step"]) == [0, 1, 2, 3, 4]
    assert history["det_last/zero"].iloc[1] == pytest.approx(1.0)  # zero heads start at 0
    assert history["val_2d_mm"].notna().sum() == 3  # steps 0, 2, 4
    assert history["floor_2d_mm"].iloc[0] > 0
    out = tmp_path / "fig" / "paper_recipe"
    assert plateau.main(["--report", str(root), "--out", str(out)]) == 0
    table = out.with_suffix(".md").read_text()
    assert "paper: adam 0.001, Eq. 2 sum, sigma 2" in table
    assert out.with_suffix(".png").stat().st_size > 10_000


def _rows(out: str) -> dict[str, str]:
    """The bench's table rows, {measure: value as printed}."""
    return {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| measure")
    }


def _host_reads_hook(step_costs):
    """gpu_train_bench.count_syncs off CUDA: step_costs' host-read counter (each read of a
    device value is a sync on CUDA)."""

    @contextlib.contextmanager
    def count(device):
        with step_costs.count_host_reads() as counts:
            yield lambda: sum(counts.values())

    return count


@pytest.mark.slow  # writes a split and trains two tiny epochs
def test_gpu_train_bench_runs_the_real_path_tiny_on_cpu(capsys, monkeypatch):
    """The table of the real path; its sync count covers the timed steps, not the epoch's end:
    reads planted in the weight check and the checkpoint's copies (1000 each) are not in it,
    one planted in each step's loss is."""
    bench, step_costs = _load("gpu_train_bench"), _load("step_costs")
    engine = bench.engine
    monkeypatch.setattr(bench, "count_syncs", _host_reads_hook(step_costs))
    planted = {"loss": 0, "weights": 0, "checkpoint": 0}

    def reading(name, function, reads):
        def read_then_call(*args, **kwargs):
            planted[name] += 1
            for _ in range(reads):
                torch.ones(()).item()
            return function(*args, **kwargs)

        return read_then_call

    monkeypatch.setattr(engine, "compute_loss", reading("loss", engine.compute_loss, 1))
    monkeypatch.setattr(engine, "_check_weights", reading("weights", engine._check_weights, 1000))
    checkpoint = reading("checkpoint", engine.save_checkpoint, 1000)
    monkeypatch.setattr(engine, "save_checkpoint", checkpoint)
    assert bench.main(["--tiny", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert float(rows["train samples/s"]) > 0
    assert float(rows["data, PNG: samples/s per worker"]) > 0
    assert float(rows["data, cache: samples/s per worker"]) > 0
    assert "float32 matmul" in out
    assert planted["weights"] == 2
    assert planted["checkpoint"] >= 2
    assert planted["loss"] == 4
    timed, syncs = int(rows["timed steps"]), int(rows["host syncs in timed steps"])
    assert timed == 1  # steps 2 to 2 of epoch 2
    # The planted read of each timed step, and the engine's sync_every read at the last step.
    assert timed <= syncs < 1000, out
    assert "GPU busy %" not in rows  # CUDA only


def test_the_bench_prints_each_row_as_it_is_measured(tmp_path, monkeypatch):
    """A row is out (flushed) before the next measurement starts: a run a timeout kills keeps
    the rows it had measured."""
    bench = _load("gpu_train_bench")

    class Stream(io.StringIO):
        flushed = ""

        def flush(self):
            self.flushed = self.getvalue()

    class Killed(Exception):
        pass

    stream, seen = Stream(), []

    def killed(config):  # the second measurement: the run "dies" here
        seen.append(stream.flushed)
        raise Killed

    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.setattr(bench, "build_cache", killed)
    with pytest.raises(Killed):
        bench.main(["--tiny", "--device", "cpu", "--data-root", str(tmp_path / "icvl")])
    rows = _rows(seen[0])
    assert list(rows) == ["data, PNG: samples/s per worker"]
    assert float(rows["data, PNG: samples/s per worker"]) > 0


def test_syncs_are_counted_over_the_timed_steps_of_the_second_epoch_only(monkeypatch):
    """The window opens at the engine's timing boundary after epoch 2's first step and closes
    at the one after its last: the first epoch, each first step and the epoch's end (weight
    check, checkpoint, validation) are outside it."""
    bench, step_costs = _load("gpu_train_bench"), _load("step_costs")
    monkeypatch.setattr(bench, "count_syncs", _host_reads_hook(step_costs))
    cpu = torch.device("cpu")
    window = bench.StepWindow(cpu)
    throughput = window.throughput(cpu)
    value = torch.ones(())

    def epoch(steps: int, reads_per_step: int) -> None:  # as engine._train_epoch calls it
        for step in range(1, steps + 1):
            for _ in range(reads_per_step):
                value.item()
            if step == 1 or step >= steps:
                throughput.boundary(step)
        for _ in range(100):  # the epoch's end
            float(value)

    epoch(4, 5)
    epoch(4, 2)
    assert (window.steps, window.syncs) == (3, 3 * 2)
    assert window.seconds > 0
    assert throughput.summary(1)["steps_timed"] == 6  # the engine's own timing is unchanged


def test_gpu_busy_without_nvml_says_so_instead_of_nan(monkeypatch):
    """Where pynvml (nvidia-ml-py) is missing the GPU busy row reads "n/a (no NVML)"; with it,
    the mean of NVML's utilisation samples."""
    bench, step_costs = _load("gpu_train_bench"), _load("step_costs")
    cuda = torch.device("cuda", 0)
    # A window on "cuda" without touching CUDA (this may be a CPU build of torch).
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(bench, "count_syncs", _host_reads_hook(step_costs))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert bench.nvml_utilization(cuda) is None
    window = bench.StepWindow(cuda)
    window.open()
    window.close(3)
    assert window.busy == "n/a (no NVML)"
    assert bench.row("GPU busy %", window.busy) == "| GPU busy % | n/a (no NVML) |"

    fake = SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda uuid: "by uuid",
        nvmlDeviceGetHandleByIndex=lambda index: f"gpu {index}",
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=73),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    window = bench.StepWindow(cuda)
    window.open()
    window.close(3)
    assert window.busy == 73.0
    assert bench.row("GPU busy %", window.busy) == "| GPU busy % | 73 |"


GPU_CHECK = BENCHMARKS / "gpu_check.sh"
GPU_WHEELS = BENCHMARKS / "gpu_wheels.sh"
LOCK = BENCHMARKS.parent / "requirements" / "lock-linux-x86_64.txt"


def _commands(script: Path) -> str:
    """The script's commands: comment lines dropped, line continuations joined, runs of blanks
    made one."""
    lines = [line for line in script.read_text().splitlines() if not line.lstrip().startswith("#")]
    return re.sub(r"[ \t]+", " ", "\n".join(lines).replace("\\\n", " "))


@pytest.mark.parametrize("script", [GPU_CHECK, GPU_WHEELS], ids=lambda p: p.name)
def test_the_gpu_scripts_parse(script):
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_the_gpu_check_rehearses_the_paper_route_first_and_logs_as_it_goes():
    text = _commands(GPU_CHECK)
    write = "-m handpose_lib.rehearsal write-data --dataset icvl --root "
    rehearse = "-m handpose_lib.reproduce --rehearse --profile paper --dataset icvl --data-root "
    assert write in text
    assert "--train-frames 96 --test-frames 64" in text
    assert rehearse in text
    assert "--device cuda --output " in text
    assert "step rehearsal 240 " in text  # capped at 4 minutes
    assert text.index(rehearse) < text.index("benchmarks/gpu_train_bench.py")
    assert text.index("benchmarks/gpu_train_bench.py") < text.index("paper_plateau.py")
    for copied in ("rehearsal.md", "rehearsal.csv"):
        assert copied in text
    assert "export PYTHONUNBUFFERED=1" in text
    assert 'tee -a "$SUMMARY"' in text
    # The carried wheels, a python3 kernel with their PYTHONPATH, the package from the checkout
    assert "--target" in text
    assert ".whl/*.whl" in text
    assert "ipykernel install" in text
    assert "--name python3" in text
    assert 'export PYTHONPATH="$PWD' in text


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_gpu_wheels_are_packages_of_the_lock():
    """gpu_wheels.sh fetches only packages the lock pins (at the lock's versions)."""
    text = GPU_WHEELS.read_text()
    listed = re.search(r"^WHEELS=\((.*?)^\)", text, re.DOTALL | re.MULTILINE)
    assert listed is not None
    names = shlex.split(listed.group(1), comments=True)
    lock = {
        _normal(line.split("==")[0])
        for line in LOCK.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert names
    assert len(set(names)) == len(names)
    assert not [n for n in names if "=" in n or "<" in n or ">" in n]  # versions: the lock's
    assert not [n for n in names if _normal(n) not in lock]
    # The image's torch stack and what nothing imports are not carried.
    assert not {_normal(n) for n in names} & {"torch", "numpy", "debugpy", "jedi"}
    ignored = (BENCHMARKS.parent / ".gitignore").read_text().splitlines()
    assert "/.whl/" in ignored


def test_the_committed_recipe_table_is_the_report_of_the_committed_runs(tmp_path):
    """figures/paper_recipe.md comes from the histories in benchmarks/results (README
    "Profiles"), not typed in."""
    plateau = _load("paper_plateau")
    results = BENCHMARKS / "results" / "paper_recipe"
    out = tmp_path / "paper_recipe"
    roots = [str(results / "plateau_full"), str(results / "plateau_w32")]
    assert plateau.main(["--report", *roots, "--out", str(out)]) == 0
    committed = (BENCHMARKS.parent / "figures" / "paper_recipe.md").read_text()
    assert out.with_suffix(".md").read_text() == committed
    # The paper profile meets issue 16's target within 300 full-size steps.
    table = pd.read_csv(results / "plateau_full" / "paper" / "history.csv")
    steps = table[table["step"] > 0]
    assert steps["step"].max() >= 300
    assert steps["det_last/zero"].tail(10).mean() <= 0.6
    val = table.dropna(subset=["val_2d_mm"])
    assert val["val_2d_mm"].iloc[-1] < table["floor_2d_mm"].iloc[0]


def test_open_times_count_cell_time_to_the_first_figure_and_the_explorer(tmp_path):
    open_times = _load("notebook_open_times")

    def cell(source, seconds, figure=False):
        outputs = [{"data": {"image/png": "..."}}] if figure else []
        meta = {"papermill": {"duration": seconds}}
        return {"cell_type": "code", "source": source, "metadata": meta, "outputs": outputs}

    executed = tmp_path / "nb.ipynb"
    markdown = {"cell_type": "markdown", "source": "# x", "metadata": {}}
    cells = [cell("a = 1", 1.5), markdown, cell("plot()", 2.0, figure=True), cell("x", 0.5)]
    cells += [cell("nb.explore(view, {})", 3.0, figure=True), cell("nb.report()", 9.0)]
    executed.write_text(json.dumps({"cells": cells}))
    assert open_times.cell_times(executed) == (3.5, 7.0)
