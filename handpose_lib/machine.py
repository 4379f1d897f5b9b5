"""The machine a time was measured on: its float32 matmul rate.

Machines of the same kind differ about 2x in speed, so every wall time this package reports
stands next to the rate of a large float32 matmul measured in the same process, and budgets
are stated for a slow machine (`REFERENCE_GFLOPS`).
"""

from __future__ import annotations

import functools
import time

import torch

# The slow machine every time budget is sized for: 2 cores at 100 GFLOP/s.
REFERENCE_GFLOPS = 100.0


def matmul_gflops(device: torch.device | str = "cpu", repeats: int = 8) -> float:
    """Best-of-`repeats` rate of an n x n float32 matmul in GFLOP/s (n = 2048 on CPU, 8192
    on CUDA), with torch's current thread setting. (n = 2048 gives the rate of n = 4096 on
    the project's 2-core machine, 370 GFLOP/s both, measured side by side, in 0.45 s
    instead of 3.2 s; 6 s at one thread, once per runner process, before.)"""
    device = torch.device(device)
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(max(1, repeats)):
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def cached_matmul_gflops(device: torch.device | str = "cpu") -> float:
    """`matmul_gflops(device)` measured once per process and thread count: the runner states
    the rate beside its times, and measuring it costs 140 GFLOP on a CPU (0.5-1.5 s)."""
    return _cached_rate(str(torch.device(device)), torch.get_num_threads())


@functools.cache
def _cached_rate(device: str, threads: int) -> float:
    return matmul_gflops(device)


def at_reference_rate(seconds: float, gflops: float) -> float:
    """`seconds` measured at `gflops`, scaled to the reference machine (compute-bound work)."""
    return seconds * gflops / REFERENCE_GFLOPS


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
