"""Training progress a runner can poll: run_dir/progress.json, written atomically.

Keys: name, epoch (1-based, the epoch in progress or just finished), epochs, step (optimizer
steps done in that epoch), steps (per epoch), elapsed_s (since this training call started),
eta_s (estimated seconds left for the whole run; null before the first step), updated (unix
time), and once the trainer has one, warning (one line: e.g. the zero-plateau check). Written at
most every `interval_s` seconds, at each epoch's end and on a warning.
"""

from __future__ import annotations

import time
from pathlib import Path

from handpose_lib.training.atomic import atomic_write_json

PROGRESS_FILE = "progress.json"


class ProgressFile:
    """Writes progress.json; `update` is cheap to call after every step."""

    def __init__(
        self,
        run_dir: Path,
        name: str,
        epochs: int,
        steps: int,
        start_epoch: int = 0,
        interval_s: float = 2.0,
        enabled: bool = True,
    ) -> None:
        self.path, self.name, self.epochs, self.steps = run_dir / PROGRESS_FILE, name, epochs, steps
        self.start_steps = start_epoch * steps  # done before this call (resume)
        self.interval_s, self.enabled = interval_s, enabled
        self.started = time.monotonic()
        self.written = -float("inf")
        self.warning: str | None = None
        self.last = (0, 0)

    def warn(self, message: str) -> None:
        """Add a one-line warning to progress.json (kept from then on)."""
        self.warning = message
        self.update(*self.last, force=True)

    def update(self, epoch: int, step: int, force: bool = False) -> None:
        """`step` steps of 0-based `epoch` are done."""
        self.last = (epoch, step)
        now = time.monotonic()
        if not self.enabled or (not force and now - self.written < self.interval_s):
            return
        elapsed = now - self.started
        done = epoch * self.steps + step - self.start_steps
        left = self.epochs * self.steps - epoch * self.steps - step
        # Mean time per step so far, validation and checkpoints included.
        eta = elapsed / done * left if done > 0 else None
        record = {
            "name": self.name,
            "epoch": epoch + 1,
            "epochs": self.epochs,
            "step": step,
            "steps": self.steps,
            "elapsed_s": round(elapsed, 3),
            "eta_s": None if eta is None else round(eta, 3),
            "updated": time.time(),
        }
        if self.warning:
            record["warning"] = self.warning
        atomic_write_json(self.path, record)
        self.written = now
