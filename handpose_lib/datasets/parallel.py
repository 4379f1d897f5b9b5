"""Work over many frames in worker processes (writing them, cropping them, finding their
centres), with the output of one process."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

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


_WORKER: dict[str, Any] = {}  # in a map_frames worker process: its source and work


def _start_worker(work: Callable[[FrameSource, list[int]], list[Any]], source: FrameSource) -> None:
    _WORKER.update(work=work, source=source)


def _run_chunk(indices: list[int]) -> list[Any]:
    return _WORKER["work"](_WORKER["source"], indices)


def map_frames(
    work: Callable[[FrameSource, list[int]], list[Any]],
    source: FrameSource,
    indices: Iterable[int],
    workers: int = 1,
    desc: str | None = None,
    chunk: int = 256,
) -> list[Any]:
    """`work(source, chunk_of_indices)` over `indices` in chunks of `chunk` frames, on `workers`
    processes; results in the order of `indices`, the same as one process gives. `work` and
    the source pickle once per worker (a source may hold all of a split's labels). `desc`:
    show a progress bar (frames done) with that title."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    indices = [int(i) for i in indices]
    # At most `chunk` frames, and at least four chunks per worker to share the work out.
    size = max(1, min(chunk, math.ceil(len(indices) / (4 * workers))))
    chunks = [indices[k : k + size] for k in range(0, len(indices), size)]
    bar = tqdm(total=len(indices), desc=desc, disable=desc is None, unit="frame")
    results: list[Any] = []
    try:
        if workers == 1 or len(chunks) <= 1:
            for part in chunks:
                results.extend(work(source, part))
                bar.update(len(part))
            return results
        # Forking a process that holds CUDA (or its threads) is unsafe: start afresh then.
        context = multiprocessing.get_context("spawn" if torch.cuda.is_initialized() else None)
        with ProcessPoolExecutor(
            min(workers, len(chunks)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(work, source),
        ) as pool:
            for part, done in zip(chunks, pool.map(_run_chunk, chunks), strict=True):
                results.extend(done)
                bar.update(len(part))
        return results
    finally:
        bar.close()
