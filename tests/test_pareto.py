"""The one front and hypervolume (archsearch/pareto.py), checked against brute force and Optuna."""

import numpy as np
import pytest
from optuna._hypervolume import compute_hypervolume

from archsearch.pareto import front_indices, hypervolume, staircase


def _brute_front(points):
    return sorted({i for i, (a, t) in enumerate(points)
                   if not any(a2 >= a and t2 <= t and (a2 > a or t2 < t) for a2, t2 in points)
                   and (a, t) not in points[:i]}, key=lambda i: (points[i][1], i))


@pytest.mark.parametrize("seed", range(5))
def test_front_and_hypervolume_match_brute_force_and_optuna(seed):
    rng = np.random.default_rng(seed)
    points = [(float(a), float(t)) for a, t in zip(rng.integers(0, 30, 40), rng.integers(1, 30, 40))]
    assert front_indices(points) == _brute_front(points)  # integer grid: ties in both objectives happen
    acc_ref, latency_ref = 5.0, 25.0
    inside = np.array([(-a, t) for a, t in points if a > acc_ref and t < latency_ref])
    expected = compute_hypervolume(inside, np.array([-acc_ref, latency_ref])) if len(inside) else 0.0
    assert hypervolume(points, acc_ref, latency_ref) == pytest.approx(expected)


def test_staircase_rises_with_latency_inside_the_box():
    points = [(10.0, 5.0), (20.0, 9.0), (15.0, 12.0), (30.0, 40.0), (1.0, 1.0)]
    assert staircase(points, acc_ref=2.0, latency_ref=20.0) == [(10.0, 5.0), (20.0, 9.0)]
    assert hypervolume([], 0.0, 1.0) == 0.0
