"""The accuracy-latency front of a study: trials no other feasible, trained trial beats on both.

The front is taken over the two objectives every sweep has (zero-shot top-1 up, latency down),
whatever extra objectives the study optimised, because that is the picture users decide from.
Trials that broke a constraint (not trained) or did not complete are never on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.pareto import front_indices
from archsearch.search.latency_scale import settled_trials


@dataclass(frozen=True)
class Point:
    number: int
    latency_ms: float
    zeroshot_top1: float
    preset: str | None
    trial: FrozenTrial


def is_feasible(trial: FrozenTrial) -> bool:
    return all(c <= 0 for c in trial.user_attrs.get("constraints", ()))


def scored_points(trials: list[FrozenTrial]) -> list[Point]:
    """Completed, feasible, trained trials as (latency, accuracy) points."""
    return [Point(t.number, t.user_attrs["latency_ms"], t.user_attrs["zeroshot_top1"], t.user_attrs.get("preset"), t)
            for t in trials
            if t.state == TrialState.COMPLETE and t.user_attrs.get("trained", True) and is_feasible(t)
            and "latency_ms" in t.user_attrs and "zeroshot_top1" in t.user_attrs]


def pareto_points(points: list[Point]) -> list[Point]:
    """Non-dominated points, by increasing latency (ties in both keep the lowest trial number)."""
    ordered = sorted(points, key=lambda p: p.number)
    return [ordered[i] for i in front_indices([(p.zeroshot_top1, p.latency_ms) for p in ordered])]


def pareto_front(study: optuna.Study) -> list[Point]:
    """The study's front, its latencies on the study's settled scale."""
    return pareto_points(scored_points(settled_trials(study.get_trials(deepcopy=False))))
