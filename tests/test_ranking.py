"""Rank statistics of proxy fidelity: tau-b and its bootstrap interval as scipy computes them,
the papers' preset order, and multiples of chance."""

import numpy as np
import pytest
from scipy.stats import bootstrap, kendalltau

from archsearch.analysis.ranking import (
    PUBLISHED_PRESETS, kendall_tau, multiple_of_chance, preset_order_swaps, tau_bootstrap_ci,
)

# a fixed table: 8 architectures, short proxy vs reference (one tie in the short scores)
SHORT = [8.9, 13.4, 17.3, 1.5, 12.4, 9.8, 13.4, 20.2]
REFERENCE = [25.5, 25.3, 27.0, 26.6, 24.1, 23.0, 25.9, 28.6]


def test_kendall_tau_is_tau_b_and_matches_scipy_on_a_fixed_table():
    assert kendall_tau(SHORT, REFERENCE) == pytest.approx(kendalltau(SHORT, REFERENCE).statistic, abs=1e-12)
    # by hand: 28 pairs, 1 tied in SHORT; concordant 19, discordant 8 -> (19-8)/sqrt(27*28)
    assert kendall_tau(SHORT, REFERENCE) == pytest.approx(11 / np.sqrt(27 * 28), abs=1e-12)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    with pytest.raises(ValueError, match="one length"):
        kendall_tau([1, 2], [1, 2, 3])


def test_bootstrap_interval_is_scipys_paired_percentile_bootstrap():
    low, high = tau_bootstrap_ci(SHORT, REFERENCE, resamples=999, seed=3)
    expected = bootstrap((np.array(SHORT), np.array(REFERENCE)), lambda x, y: kendalltau(x, y).statistic,
                         paired=True, vectorized=False, n_resamples=999, method="percentile",
                         rng=np.random.default_rng(3)).confidence_interval
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert -1 <= low < kendall_tau(SHORT, REFERENCE) < high <= 1
    # agreeing rankings give a tight interval at 1; more architectures give a narrower interval
    assert tau_bootstrap_ci(list(range(10)), list(range(10)), resamples=200) == pytest.approx((1.0, 1.0))
    rng = np.random.default_rng(0)
    wide = tau_bootstrap_ci(*_noisy(rng, 8), resamples=500)
    narrow = tau_bootstrap_ci(*_noisy(rng, 80), resamples=500)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def _noisy(rng, n):
    truth = rng.normal(size=n)
    return truth, truth + rng.normal(scale=0.7, size=n)


def test_preset_order_swaps_counts_pairs_against_the_papers():
    # the committed cpu-tiny spread: B below every other MobileCLIP, ViTamin fully reversed
    today = {"mobileclip_s0": 8.9, "mobileclip_s1": 13.4, "mobileclip_s2": 17.3, "mobileclip_b": 1.5,
             "vitamin_s": 12.4, "vitamin_b": 9.8, "vitamin_l": 1.6}
    assert preset_order_swaps(today) == {"MobileCLIP": 3.0, "ViTamin": 3.0}
    in_order = {name: float(i) for i, name in enumerate(PUBLISHED_PRESETS)}
    assert preset_order_swaps(in_order) == {"MobileCLIP": 0.0, "ViTamin": 0.0}
    one_swap = {**in_order, "mobileclip_s2": 3.5}  # S2 above B: one adjacent swap
    assert preset_order_swaps(one_swap) == {"MobileCLIP": 1.0, "ViTamin": 0.0}
    tie = {**in_order, "vitamin_b": in_order["vitamin_s"]}
    assert preset_order_swaps(tie)["ViTamin"] == 0.5
    assert preset_order_swaps({"mobileclip_s0": 1.0}) == {}  # a family with a variant missing is left out


def test_multiple_of_chance():
    assert multiple_of_chance(1.5625, 64) == pytest.approx(1.0)
    assert multiple_of_chance(25.0, 64) == pytest.approx(16.0)
