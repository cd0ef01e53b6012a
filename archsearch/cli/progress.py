"""What a running sweep looks like: trial counts and the current front, redrawn from storage on a
terminal; in a log (stdout not a terminal) one status line each time the counts change."""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group
from rich.text import Text

from archsearch.analysis.front import pareto_points, scored_points
from archsearch.analysis.front_rows import front_rows, front_table
from archsearch.search.worker import Tally


def trial_counts(trials: list[FrozenTrial]) -> dict[str, int]:
    tally = Tally.of(trials)
    return {"done": tally.done, "running": tally.running, "queued": tally.waiting, "failed": tally.failed,
            "pruned": sum(1 for t in trials if t.state == TrialState.PRUNED),
            "infeasible": sum(1 for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("trained") is False),
            "requeued": tally.lost}


def status_line(trials: list[FrozenTrial], budget: int, started: float, workers_alive: int) -> Text:
    counts = trial_counts(trials)
    rest = "  ".join(f"{name} {n}" for name, n in counts.items() if name != "done")
    return Text.assemble((f"{counts['done']}/{budget} trials done", "bold"),
                         f"  {rest}  |  workers {workers_alive}  |  {time.monotonic() - started:,.0f} s")


def sweep_view(study: optuna.Study, budget: int, started: float, workers_alive: int) -> Group:
    trials = study.get_trials(deepcopy=False)
    front = pareto_points(scored_points(trials))
    return Group(status_line(trials, budget, started, workers_alive),
                 front_table(front_rows(front), f"current front ({len(front)} trials)"))
