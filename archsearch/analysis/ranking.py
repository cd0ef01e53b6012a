"""How well one score ranks architectures like another: the statistics of proxy fidelity.

Kendall's tau-b (scipy), its percentile bootstrap interval over architectures (scipy, paired
resampling: an architecture's two scores travel together), the published order of the presets a
proxy must keep, and a score's distance from chance.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import bootstrap, kendalltau

# ImageNet zero-shot top-1 of the published variants (MobileCLIP Table; ViTamin at 1.28B samples
# seen): the order a proxy score should reproduce within each family.
PUBLISHED_TOP1: dict[str, dict[str, float]] = {
    "MobileCLIP": {"mobileclip_s0": 67.8, "mobileclip_s1": 72.6, "mobileclip_s2": 74.4, "mobileclip_b": 76.8},
    "ViTamin": {"vitamin_s": 62.2, "vitamin_b": 68.9, "vitamin_l": 73.9},
}
PUBLISHED_PRESETS = tuple(name for family in PUBLISHED_TOP1.values() for name in family)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b; ties in either list count as neither concordant nor discordant."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"kendall_tau needs two lists of one length >= 2, got {len(a)} and {len(b)}")
    return float(kendalltau(a, b).statistic)


def _tau_statistic(x: np.ndarray, y: np.ndarray) -> float:
    tau = kendalltau(x, y).statistic
    return 0.0 if np.isnan(tau) else float(tau)  # a resample of one repeated architecture has no order


def tau_bootstrap_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                     resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of Kendall's tau, resampling architectures with replacement."""
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"tau_bootstrap_ci needs two lists of one length >= 3, got {len(a)} and {len(b)}")
    result = bootstrap((np.asarray(a, float), np.asarray(b, float)), _tau_statistic, paired=True,
                       vectorized=False, n_resamples=resamples, confidence_level=confidence,
                       method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def preset_order_swaps(scores: Mapping[str, float]) -> dict[str, float]:
    """Per family, the pairs of published variants the scores put in the other order (a tie counts
    half): the number of adjacent swaps that would restore the papers' order. Families with a
    variant missing from `scores` are left out."""
    swaps = {}
    for family, published in PUBLISHED_TOP1.items():
        if not all(name in scores for name in published):
            continue
        ordered = sorted(published, key=published.get)
        swaps[family] = sum(1.0 if scores[lo] > scores[hi] else 0.5 if scores[lo] == scores[hi] else 0.0
                            for lo, hi in combinations(ordered, 2))
    return swaps


def multiple_of_chance(top1_percent: float, classes: int) -> float:
    """Zero-shot top-1 as a multiple of guessing (100 / classes %)."""
    return top1_percent / (100.0 / classes)
