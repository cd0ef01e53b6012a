"""The machine's measured fp32 matmul peak: the yardstick for how close a model runs to the limit."""

from __future__ import annotations

import time

import torch


def matmul_peak_gflops(threads: int, size: int = 2048, seconds: float = 3.0) -> float:
    """Best sustained fp32 GEMM rate at `threads` (GFLOP/s, 2 FLOPs per multiply-add)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        best, deadline = 0.0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
        return best
    finally:
        torch.set_num_threads(previous)
