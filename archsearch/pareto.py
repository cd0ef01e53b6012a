"""The accuracy-latency front and its hypervolume on plain (accuracy, latency) pairs.

One definition for every room that needs them: the EHVI sampler (search), the Pareto analysis
and the search benchmarks. Accuracy is maximised and latency minimised; the hypervolume is the
area the front dominates up to a reference point (accuracy floor, latency ceiling), as Optuna
defines it. Pure Python over pairs, so it sits below every room and imports none.
"""

from __future__ import annotations

from typing import Sequence

Pair = tuple[float, float]  # (accuracy, latency)


def front_indices(points: Sequence[Pair]) -> list[int]:
    """Indices of the points no other point dominates, by increasing latency; of points equal in
    both objectives only the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front: list[int] = []
    for i in order:
        if not front or points[i][0] > points[front[-1]][0]:
            front.append(i)
    return front


def staircase(points: Sequence[Pair], acc_ref: float, latency_ref: float) -> list[Pair]:
    """The front of the points strictly inside the reference box, by increasing latency (and so
    increasing accuracy): the steps whose area is the hypervolume."""
    inside = [p for p in points if p[0] > acc_ref and p[1] < latency_ref]
    return [inside[i] for i in front_indices(inside)]


def hypervolume(points: Sequence[Pair], acc_ref: float, latency_ref: float) -> float:
    """Area dominated by `points` up to (acc_ref, latency_ref); points outside the box add nothing."""
    area, floor = 0.0, acc_ref
    for acc, latency in staircase(points, acc_ref, latency_ref):
        area += (latency_ref - latency) * (acc - floor)
        floor = acc
    return area
