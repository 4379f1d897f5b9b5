"""Writing many frames in worker processes, with the output of one process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from handpose_lib.datasets.frame import FrameSource

Job = TypeVar("Job")


def map_in_chunks(
    write: Callable[[FrameSource, Path, list[Job]], list[Any]],
    source: FrameSource,
    folder: Path,
    jobs: Sequence[Job],
    workers: int,
) -> list[Any]:
    """`write(source, folder, jobs)` with the jobs dealt out over `workers` processes (the
    source and `write` must be picklable); results in the order of `jobs`, the same as one
    process gives. One worker, or fewer jobs than workers, runs in this process."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    jobs = list(jobs)
    if workers == 1 or len(jobs) < workers:
        return write(source, folder, jobs)
    chunks = [jobs[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(write, [source] * workers, [folder] * workers, chunks))
    # Chunks are strided, so position k of chunk c is job c + k * workers.
    results: list[Any] = [None] * len(jobs)
    for c, part in enumerate(parts):
        results[c::workers] = part
    return results
