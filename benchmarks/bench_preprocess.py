"""Preprocessing throughput per core at paper size (S = 128, heatmaps 64, ICVL frames).

Frames are synthetic blobs made here (a tilted disc in front of a wall), so the numbers
measure the pipeline, not PNG decoding. One process, one thread:

    python benchmarks/bench_preprocess.py [--frames 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per-core numbers

import numpy as np
import torch

from handpose_lib.camera import ICVL
from handpose_lib.datasets.frame import DepthFrame
from handpose_lib.datasets.torch_dataset import HandPoseDataset
from handpose_lib.preprocess import (
    AugmentConfig,
    CropConfig,
    augment_crop,
    crop_depth,
    gaussian_heatmaps,
    hand_center,
    make_crop,
)


class BlobSource:
    """ICVL-sized frames: a tilted disc (the hand) at varying place and depth, far wall."""

    dataset = "icvl"

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.centers = np.column_stack(
            [rng.uniform(100, 220, n), rng.uniform(80, 160, n), rng.uniform(300, 500, n)]
        )
        self.cache_key = f"bench-blobs:{n}:{seed}"
        self._vv, self._uu = np.mgrid[0 : ICVL.height, 0 : ICVL.width].astype(np.float32)

    def __len__(self) -> int:
        return len(self.centers)

    def __getitem__(self, i: int) -> DepthFrame:
        cu, cv, cd = self.centers[i]
        disc = (self._uu - cu) ** 2 + (self._vv - cv) ** 2 < 35**2
        depth = np.where(disc, cd + 0.05 * (self._uu - cu), 1200.0).astype(np.float32)
        angle = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        uvd = np.column_stack([cu + 25 * np.cos(angle), cv + 25 * np.sin(angle), np.full(16, cd)])
        return DepthFrame(depth_mm=depth, uvd=uvd, camera=ICVL, name=f"blob_{i}")


def rate(fn, n: int) -> float:
    """Calls per second of fn(i) over i < n (after one warm-up call)."""
    fn(0)
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.frames
    config = CropConfig.for_dataset("icvl")
    source = BlobSource(n)
    frames = [source[i] for i in range(n)]
    centers = [hand_center(f.depth_mm, ICVL, config) for f in frames]
    crops = [make_crop(c, ICVL, config.cube_mm, config.input_size) for c in centers]
    uv = [c.image_to_crop(f.uvd)[:, :2] for c, f in zip(crops, frames, strict=True)]
    params = [AugmentConfig().sample(np.random.default_rng(i)) for i in range(n)]
    rows = [
        (
            "segmentation + CoM (320x240)",
            rate(lambda i: hand_center(frames[i].depth_mm, ICVL, config), n),
        ),
        ("cube crop 128x128", rate(lambda i: crop_depth(frames[i].depth_mm, crops[i]), n)),
        ("heatmaps 16x64x64", rate(lambda i: gaussian_heatmaps(uv[i], 64, 1.0), n)),
        (
            "augmented crop",
            rate(lambda i: crop_depth(frames[i].depth_mm, augment_crop(crops[i], params[i])), n),
        ),
    ]
    plain = HandPoseDataset(source, config, augment=AugmentConfig())
    rows.append(("full item (blob frame + CoM + aug)", rate(plain.__getitem__, n)))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cached = HandPoseDataset(source, config, cache_dir=tmp)
        build = n / (time.perf_counter() - start)
        cached_aug = HandPoseDataset(source, config, augment=AugmentConfig(), cache_dir=tmp)
        rows.append(("cache build (float16)", build))
        rows.append(("cached item read", rate(cached.__getitem__, n)))
        rows.append(("cached item read + aug", rate(cached_aug.__getitem__, n)))
    width = max(len(name) for name, _ in rows)
    print(f"{n} synthetic ICVL frames, S=128, heatmaps 64, one thread")
    print(f"| {'step':<{width}} | frames/s | ms/frame |")
    print(f"|{'-' * (width + 2)}|---------:|---------:|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value:8.0f} | {1000 / value:8.2f} |")


if __name__ == "__main__":
    main()
