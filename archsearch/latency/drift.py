"""Drift-corrected latency: a model timed against a fixed anchor model in the same window.

Shared vCPUs have slow phases and laptops throttle. A settled median taken in one reads 10-50%
high, and a sweep that measures its trials minutes apart records the phases as much as the
models. Timing the candidate and an anchor (by default MobileCLIP-S0's towers) in alternating
rounds puts both in the same phase, so their ratio cancels it, as a side-by-side benchmark does.
The figure recorded is that ratio times the anchor's quiet latency on this device.

The anchor's quiet latency is the lowest of several settled medians (a slow phase only ever adds
time); a sweep measures it once per device and caches it beside its measurements.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

from archsearch.latency.backends import TimedRun
from archsearch.latency.timing import TimingProtocol, TimingStats, time_until_settled

ANCHOR = "mobileclip_s0"


# The timing protocol read for two models in alternation: rounds of `round_size` runs of one model,
# then of the other, in ABBA order (so a trend within the window weighs on both alike), until the
# median round ratio settles after `min_runs` runs of each, or the budget ends.
DRIFT_PROTOCOL = TimingProtocol(warmup=3, round_size=3, min_runs=18, max_runs=180, max_seconds=30.0)


@dataclass(frozen=True)
class Ratio:
    ratio: float          # median over rounds of (candidate median / anchor median)
    cv: float             # of the round ratios: how well the window cancelled
    iqr: float            # of the round ratios
    rounds: int
    runs: int             # timed runs of each model
    warmup: int
    candidate_ms: float   # in-window medians, uncorrected: what a plain measurement would read
    anchor_ms: float
    settled: bool

    def to_dict(self) -> dict:
        return asdict(self)


def interleaved_ratio(candidate: TimedRun, anchor: TimedRun, protocol: TimingProtocol = DRIFT_PROTOCOL) -> Ratio:
    for _ in range(protocol.warmup):
        candidate(), anchor()
    ratios: list[float] = []
    candidate_all: list[float] = []
    anchor_all: list[float] = []
    deadline = time.monotonic() + protocol.max_seconds
    previous = None
    while True:
        order = (candidate, anchor) if len(ratios) % 4 in (0, 3) else (anchor, candidate)
        timed = {id(run): [run() for _ in range(protocol.round_size)] for run in order}
        mine, theirs = timed[id(candidate)], timed[id(anchor)]
        ratios.append(statistics.median(mine) / statistics.median(theirs))
        candidate_all += mine
        anchor_all += theirs
        current = statistics.median(ratios)
        settled = (len(candidate_all) >= protocol.min_runs and previous is not None
                   and abs(current - previous) <= protocol.rel_tol * current)
        if settled or len(candidate_all) >= protocol.max_runs or time.monotonic() > deadline:
            cv = statistics.stdev(ratios) / statistics.fmean(ratios) if len(ratios) > 1 else 0.0
            q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
            return Ratio(ratio=current, cv=cv, iqr=q3 - q1, rounds=len(ratios), runs=len(candidate_all),
                         warmup=protocol.warmup, candidate_ms=statistics.median(candidate_all),
                         anchor_ms=statistics.median(anchor_all), settled=settled)
        previous = current


def quiet_median(run: TimedRun, repeats: int = 5, protocol: TimingProtocol = TimingProtocol(max_seconds=10.0)
                 ) -> TimingStats:
    """The lowest of `repeats` settled medians: the figure least touched by a slow phase."""
    return min((time_until_settled(run, protocol) for _ in range(repeats)), key=lambda s: s.median_ms)


def corrected_stats(ratio: Ratio, anchor_quiet_ms: float) -> TimingStats:
    """The candidate's figure on the anchor's quiet scale, with the ratio's CV as its CV."""
    return TimingStats(median_ms=ratio.ratio * anchor_quiet_ms, iqr_ms=ratio.iqr * anchor_quiet_ms, cv=ratio.cv,
                       runs=ratio.runs, warmup=ratio.warmup, settled=ratio.settled)
