"""Which code made a run: recorded beside its config, compared before a finished run is reused.

`current()` describes the code running now. A run's config.json keeps it under "provenance"
(outside the config itself: two runs of one config by different code have equal configs).

The code's identity (`code_identity`) is the sha256 of the package's Python sources plus the
torch version. It is exact also for a dirty git tree or an installed copy without git, where a
commit would say nothing or too little; the git commit and whether the package's files differ
from it (`git_dirty`) are recorded too, for people reading the file. The identity of a run made
before provenance was recorded is unknown, and such a run counts as made by other code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGE = "handpose_lib"
PACKAGE_DIR = Path(__file__).resolve().parent.parent


@functools.cache
def source_sha256(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over every .py file of the package (relative path and bytes, sorted by path).

    Computed once per process: the code a process runs is the code it imported first.
    """
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str, cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def git_state(package_dir: Path = PACKAGE_DIR) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding the package; (None, None) outside a checkout.
    dirty: the package's own files differ from the commit (modified or untracked)."""
    commit = _git("rev-parse", "HEAD", cwd=package_dir)
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--", ".", cwd=package_dir)
    return commit, None if status is None else bool(status)


def current() -> dict[str, Any]:
    """Provenance of the code running now (JSON-ready)."""
    commit, dirty = git_state()
    return {
        "package_version": package_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "source_sha256": source_sha256(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def code_identity(provenance: dict[str, Any] | None) -> str | None:
    """What must match for two runs to count as made by the same code; None when unknown."""
    if not provenance or not provenance.get("source_sha256"):
        return None
    return f"{provenance['source_sha256']} (torch {provenance.get('torch')})"


def describe(provenance: dict[str, Any] | None) -> str:
    """Short human description: version, commit (with +dirty) and source digest."""
    if not provenance:
        return "unknown code (no provenance recorded)"
    commit = provenance.get("git_commit")
    commit = "no git commit" if commit is None else commit[:10]
    dirty = "+dirty" if provenance.get("git_dirty") else ""
    sha = str(provenance.get("source_sha256"))[:12]
    return (
        f"handpose_lib {provenance.get('package_version')} at {commit}{dirty}, sources {sha}, "
        f"torch {provenance.get('torch')}"
    )


def code_difference(saved: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """Why `saved` (a run's provenance, with any sessions it was resumed by) is not the code
    of `now`; None when every training session of the run ran this code."""
    sessions = [] if not saved else [saved, *saved.get("resumed_by", [])]
    if not sessions or any(code_identity(s) is None for s in sessions):
        return f"it was made by {describe(saved if saved else None)}; this is {describe(now)}"
    other = [s for s in sessions if code_identity(s) != code_identity(now)]
    if other:
        return f"it was made by {describe(other[0])}; this is {describe(now)}"
    return None
