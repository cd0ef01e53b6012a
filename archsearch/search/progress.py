"""What a running sweep looks like: trial counts and the current front, redrawn from storage."""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group
from rich.text import Text

from archsearch.analysis.front import pareto_points, scored_points
from archsearch.analysis.table import front_rows, front_table
from archsearch.search.worker import Tally


def _infeasible(trials: list[FrozenTrial]) -> int:
    return sum(1 for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("trained") is False)


def status_line(trials: list[FrozenTrial], budget: int, started: float, workers_alive: int) -> Text:
    tally = Tally.of(trials)
    pruned = sum(1 for t in trials if t.state == TrialState.PRUNED)
    return Text.assemble(
        (f"{tally.done}/{budget} trials done", "bold"),
        f"  running {tally.running}  queued {tally.waiting}  failed {tally.failed}  pruned {pruned}  "
        f"infeasible {_infeasible(trials)}  requeued {tally.lost}  |  workers {workers_alive}  |  "
        f"{time.monotonic() - started:,.0f} s")


def sweep_view(study: optuna.Study, budget: int, started: float, workers_alive: int) -> Group:
    trials = study.get_trials(deepcopy=False)
    front = pareto_points(scored_points(trials))
    return Group(status_line(trials, budget, started, workers_alive),
                 front_table(front_rows(front), f"current front ({len(front)} trials)"))
