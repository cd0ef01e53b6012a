"""Repeated timing until the median settles: the protocol behind every latency figure.

One call of `run` is one timed inference returning milliseconds (backends time themselves: CUDA
with events, CPU with a monotonic clock). After a warm-up, runs are taken in rounds; the
measurement stops once a round moves the running median by less than `rel_tol`, or at the
run/time budget. The median is what is reported (robust to the scheduler's outliers), with the
IQR and the coefficient of variation of the runs, so that a noisy figure says so.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable


@dataclass(frozen=True)
class TimingStats:
    median_ms: float
    iqr_ms: float
    cv: float          # standard deviation / mean of the timed runs
    runs: int
    warmup: int
    settled: bool      # False when the budget ran out before the median settled

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TimingProtocol:
    warmup: int = 5
    min_runs: int = 20
    round_size: int = 10
    max_runs: int = 300
    max_seconds: float = 20.0
    rel_tol: float = 0.005


def summarise(samples: list[float], warmup: int, settled: bool) -> TimingStats:
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive") if len(samples) > 1 else samples * 3
    mean = statistics.fmean(samples)
    cv = statistics.stdev(samples) / mean if len(samples) > 1 and mean > 0 else 0.0
    return TimingStats(median_ms=median, iqr_ms=q3 - q1, cv=cv, runs=len(samples), warmup=warmup, settled=settled)


def time_until_settled(run: Callable[[], float], protocol: TimingProtocol = TimingProtocol()) -> TimingStats:
    for _ in range(protocol.warmup):
        run()
    samples: list[float] = []
    previous_median = None
    deadline = time.monotonic() + protocol.max_seconds
    while True:
        samples.extend(run() for _ in range(protocol.round_size))
        median = statistics.median(samples)
        if len(samples) >= protocol.min_runs and previous_median is not None:
            if abs(median - previous_median) <= protocol.rel_tol * median:
                return summarise(samples, protocol.warmup, settled=True)
        if len(samples) >= protocol.max_runs or time.monotonic() > deadline:
            return summarise(samples, protocol.warmup, settled=False)
        previous_median = median
