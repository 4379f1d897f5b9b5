"""Throughput of the synthetic depth-hand renderer (single process = one core).

    python benchmarks/bench_renderer.py [--frames N] [--workers W]

Rows: SyntheticSource and RenderedPosesSource frames (sampling + rendering + sensor
model), the noiseless render alone, and writing an ICVL-format split to disk (PNG
encoding included) with one process and with W processes. RenderedPosesSource needs the
published ICVL labels (HANDPOSE_PUBLISHED_DIR, or `shared/published` beside the checkout).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from handpose_lib.datasets.rendered_poses import RenderedPosesSource
from handpose_lib.datasets.synthetic import (
    SyntheticSource,
    clear_render_memo,
    render_depth,
    write_icvl_split,
)

DEFAULT_PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "published"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _row(what: str, frames: int, seconds: float, processes: int = 1) -> dict:
    return {
        "what": what,
        "frames": frames,
        "processes": processes,
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "frames_per_s_per_core": frames / seconds / processes,
        "ms_per_frame": 1000 * seconds / frames * processes,
    }


def run(frames: int, workers: int) -> list[dict]:
    rows = []
    synthetic = SyntheticSource(frames, seed=0)
    synthetic[0]  # warm caches (ray grid) outside the timings
    clear_render_memo()  # every timing below renders its frames, none comes from the memo
    rows.append(
        _row("SyntheticSource[i]", frames, _timed(lambda: [synthetic[i] for i in range(frames)]))
    )

    hands = [synthetic.hand(i) for i in range(frames)]
    seconds = _timed(lambda: [render_depth(h.joints_xyz_mm, h.shape) for h in hands])
    rows.append(_row("render_depth only", frames, seconds))

    if not os.environ.get("HANDPOSE_PUBLISHED_DIR") and DEFAULT_PUBLISHED.is_dir():
        os.environ["HANDPOSE_PUBLISHED_DIR"] = str(DEFAULT_PUBLISHED)
    rendered = RenderedPosesSource(seed=0)
    n = min(frames, len(rendered))
    stride = len(rendered) // n  # spread over both test sequences
    seconds = _timed(lambda: [rendered[i * stride] for i in range(n)])
    rows.append(_row("RenderedPosesSource[i]", n, seconds))

    for processes in sorted({1, workers}):
        clear_render_memo()
        with tempfile.TemporaryDirectory() as root:
            seconds = _timed(lambda r=root, p=processes: write_icvl_split(r, synthetic, workers=p))
            size_mb = sum(f.stat().st_size for f in Path(root).rglob("*.png")) / 1e6
        rows.append(
            _row(
                f"write_icvl_split ({size_mb / frames * 1e3:.0f} kB/frame)",
                frames,
                seconds,
                processes,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500, help="frames per measurement")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the parallel split-writing row",
    )
    args = parser.parse_args(argv)
    if args.frames < 1 or args.workers < 1:
        parser.error("--frames and --workers must be >= 1")
    rows = run(args.frames, args.workers)
    print(
        f"{'what':<38} {'frames':>6} {'procs':>5} {'seconds':>8} {'frames/s':>9} "
        f"{'per core':>9} {'ms/frame':>9}"
    )
    for r in rows:
        print(
            f"{r['what']:<38} {r['frames']:>6} {r['processes']:>5} {r['seconds']:>8.2f} "
            f"{r['frames_per_s']:>9.1f} {r['frames_per_s_per_core']:>9.1f} "
            f"{r['ms_per_frame']:>9.2f}"
        )
    per_core = rows[0]["frames_per_s_per_core"]
    print(
        f"\n20000 synthetic training frames: {20000 / per_core:.0f} s on one core "
        f"(numpy {np.__version__}, {os.cpu_count()} cores visible)"
    )


if __name__ == "__main__":
    main()
