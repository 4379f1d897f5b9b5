"""The runner's progress line: which notebook and cell run, and a training's epoch, step and
time left (read from the `progress.json` that `training.progress` writes in the run folder).

`ProgressLine` rewrites the line in place every second on a terminal and prints it every 30 s
otherwise (CI logs); `reproduce.run_notebook` feeds it through nbclient's cell hook.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

PROGRESS_FILE = "progress.json"  # written by handpose_lib.training.progress
# Seconds between progress updates: refreshed in place on a terminal, new lines in logs.
REFRESH_S = {True: 1.0, False: 30.0}


@dataclass(frozen=True)
class TrainingProgress:
    """One `progress.json` as the trainer writes it."""

    name: str
    epoch: int
    epochs: int
    step: int
    steps: int
    eta_s: float | None
    updated: float  # unix time
    warning: str | None = None

    @classmethod
    def from_json(cls, record: dict, fallback_updated: float) -> TrainingProgress:
        eta = record.get("eta_s")
        return cls(
            name=str(record["name"]),
            epoch=int(record["epoch"]),
            epochs=int(record["epochs"]),
            step=int(record["step"]),
            steps=int(record["steps"]),
            eta_s=None if eta is None else float(eta),
            updated=float(record.get("updated") or fallback_updated),
            warning=record.get("warning"),
        )


def latest_training_progress(run_dir: Path, since: float) -> TrainingProgress | None:
    """The most recently updated `progress.json` under `run_dir` written at or after `since`
    (unix time), or None. Files being replaced or not (yet) valid are skipped."""
    newest: TrainingProgress | None = None
    for path in run_dir.glob(f"**/{PROGRESS_FILE}"):
        try:
            mtime = path.stat().st_mtime
            if mtime < since:
                continue
            progress = TrainingProgress.from_json(json.loads(path.read_text()), mtime)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if progress.updated >= since and (newest is None or progress.updated > newest.updated):
            newest = progress
    return newest


def format_duration(seconds: float) -> str:
    """A rounded estimate: "<1 min", "~4 min", "~1 h 20 min"."""
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return "<1 min"
    if minutes < 60:
        return f"~{minutes} min"
    return f"~{minutes // 60} h {minutes % 60:02d} min"


def format_progress(
    notebook: str, cell: int, cells: int, training: TrainingProgress | None = None
) -> str:
    """E.g. "03_pose_training: cell 7/19 · attention epoch 3/6 step 40/128 · ~4 min left"."""
    line = f"{notebook}: cell {cell}/{cells}"
    if training is not None:
        line += (
            f" · {training.name} epoch {training.epoch}/{training.epochs}"
            f" step {training.step}/{training.steps}"
        )
        if training.eta_s is not None:
            line += f" · {format_duration(training.eta_s)} left"
        if training.warning:
            line += " · on the zero plateau" if "plateau" in training.warning else " · warning"
    return line


def count_executed_cells(notebook: Path, parameters: dict[str, object]) -> int:
    """Code cells papermill will run: the non-empty ones, plus its injected parameters cell."""
    import nbformat  # noqa: PLC0415 (the notebooks extra; see reproduce.declared_parameters)

    nb = nbformat.read(notebook, as_version=4)
    code = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.strip())
    return code + (1 if parameters else 0)


@dataclass
class NotebookProgress:
    """Where the running notebook is; `on_cell_execute` is nbclient's hook."""

    name: str
    cells: int
    run_dir: Path
    cell: int = 0
    cell_started: float = field(default_factory=time.time)

    def on_cell_execute(self, cell: object = None, cell_index: int = 0) -> None:
        self.cell += 1
        self.cell_started = time.time()

    def line(self) -> str:
        if self.cell == 0:
            return f"{self.name}: starting the kernel"
        # Only a progress file written since the current cell started belongs to it.
        training = latest_training_progress(self.run_dir, self.cell_started)
        return format_progress(self.name, self.cell, self.cells, training)


class ProgressLine:
    """Shows `NotebookProgress.line()` while a notebook runs: rewritten in place every second
    on a terminal, a new line every 30 s otherwise (CI logs)."""

    def __init__(self, progress: NotebookProgress, stream: TextIO | None = None) -> None:
        self.progress = progress
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._lock = threading.Lock()
        self._shown = False
        self._started = time.monotonic()

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")  # the final line is the caller's
                self.stream.flush()

    def _loop(self) -> None:
        interval = REFRESH_S[self.tty]
        while not self._stop.wait(interval):
            self.show()

    def show(self) -> None:
        elapsed = int(time.monotonic() - self._started)
        line = f"{self.progress.line()} ({elapsed // 60}:{elapsed % 60:02d} so far)"
        with self._lock:
            if self._stop.is_set():
                return
            if self.tty:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self.stream.write("\r\x1b[K" + line[:width])
            else:
                self.stream.write(f"    {line}\n")
            self.stream.flush()
            self._shown = True
