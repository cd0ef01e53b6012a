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

import math
import statistics
import time
from dataclasses import asdict, dataclass

from archsearch.latency.backends import TimedRun
from archsearch.latency.timing import TimingProtocol, TimingStats, time_until_settled

ANCHOR = "mobileclip_s0"


@dataclass(frozen=True)
class DriftProtocol:
    """Two models timed in alternation: rounds of `round_size` runs of the slower model and as
    many runs of the faster one as take the same time, in ABBA order (a trend within the window
    weighs on both alike), until the median round ratio is known to within `precision` (its
    distribution-free 95% interval, after at least `min_rounds`), or the budget ends.

    Equal halves matter: with 3 runs of each, a 300 ms candidate's half lasts three times its
    100 ms anchor's, so a slow phase of a second lands on one side more often than the other.
    The precision rule replaces "the median moved by < 0.5%", which stopped after six rounds
    however widely they scattered (a sweep recorded MobileCLIP-S2 8% high with rounds at CV 12%)."""

    warmup: int = 3
    round_size: int = 3
    min_rounds: int = 8
    max_rounds: int = 200
    max_seconds: float = 45.0
    precision: float = 0.02
    max_runs_per_half: int = 64  # the faster model's runs per half, at most (a text tower of a few ms)


DRIFT_PROTOCOL = DriftProtocol()


@dataclass(frozen=True)
class Ratio:
    ratio: float          # median over rounds of (candidate median / anchor median)
    cv: float             # of the round ratios: how well the window cancelled
    iqr: float            # of the round ratios
    ci95: tuple[float, float] | None  # distribution-free 95% interval of the median ratio
    rounds: int
    runs: int             # timed runs of the candidate
    anchor_runs: int
    warmup: int
    candidate_ms: float   # in-window medians, uncorrected: what a plain measurement would read
    anchor_ms: float
    settled: bool         # the interval met the protocol's precision within its budget

    def to_dict(self) -> dict:
        return asdict(self)


def median_ci95(values: list[float]) -> tuple[float, float] | None:
    """The order-statistic 95% interval of the median (no assumption on the round ratios'
    distribution: a slow phase makes them skewed); None below 6 values, where none exists."""
    n = len(values)
    # the largest k with P(Binomial(n, 1/2) < k) <= 2.5%: [x_(k), x_(n+1-k)] covers the median >= 95%
    k, below = 0, 0
    while (below := below + math.comb(n, k)) <= 0.025 * 2 ** n:
        k += 1
    if k < 1:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


def _runs_per_half(candidate_ms: float, anchor_ms: float, protocol: DriftProtocol) -> tuple[int, int]:
    slow, fast = max(candidate_ms, anchor_ms), max(min(candidate_ms, anchor_ms), 1e-6)
    matched = min(protocol.max_runs_per_half, max(protocol.round_size, round(protocol.round_size * slow / fast)))
    return (protocol.round_size, matched) if candidate_ms >= anchor_ms else (matched, protocol.round_size)


def interleaved_ratio(candidate: TimedRun, anchor: TimedRun, protocol: DriftProtocol = DRIFT_PROTOCOL) -> Ratio:
    warm = [(candidate(), anchor()) for _ in range(max(protocol.warmup, 1))]
    per_half = _runs_per_half(min(c for c, _ in warm), min(a for _, a in warm), protocol)
    ratios: list[float] = []
    candidate_all: list[float] = []
    anchor_all: list[float] = []
    deadline = time.monotonic() + protocol.max_seconds
    while True:
        if len(ratios) % 4 in (0, 3):  # ABBA
            mine = [candidate() for _ in range(per_half[0])]
            theirs = [anchor() for _ in range(per_half[1])]
        else:
            theirs = [anchor() for _ in range(per_half[1])]
            mine = [candidate() for _ in range(per_half[0])]
        ratios.append(statistics.median(mine) / statistics.median(theirs))
        candidate_all += mine
        anchor_all += theirs
        current = statistics.median(ratios)
        ci = median_ci95(ratios)
        settled = (len(ratios) >= protocol.min_rounds and ci is not None
                   and ci[1] - ci[0] <= 2 * protocol.precision * current)
        if settled or len(ratios) >= protocol.max_rounds or time.monotonic() > deadline:
            cv = statistics.stdev(ratios) / statistics.fmean(ratios) if len(ratios) > 1 else 0.0
            q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
            return Ratio(ratio=current, cv=cv, iqr=q3 - q1, ci95=ci, rounds=len(ratios), runs=len(candidate_all),
                         anchor_runs=len(anchor_all), warmup=len(warm), candidate_ms=statistics.median(candidate_all),
                         anchor_ms=statistics.median(anchor_all), settled=settled)


def quiet_median(run: TimedRun, repeats: int = 5, protocol: TimingProtocol = TimingProtocol(max_seconds=10.0)
                 ) -> TimingStats:
    """The lowest of `repeats` settled medians: the figure least touched by a slow phase."""
    return min((time_until_settled(run, protocol) for _ in range(repeats)), key=lambda s: s.median_ms)


def corrected_stats(ratio: Ratio, anchor_quiet_ms: float) -> TimingStats:
    """The candidate's figure on the anchor's quiet scale, with the ratio's CV as its CV."""
    return TimingStats(median_ms=ratio.ratio * anchor_quiet_ms, iqr_ms=ratio.iqr * anchor_quiet_ms, cv=ratio.cv,
                       runs=ratio.runs, warmup=ratio.warmup, settled=ratio.settled)
