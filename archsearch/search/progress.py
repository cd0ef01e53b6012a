"""What a running sweep looks like: trial counts and the current front, redrawn from storage."""

from __future__ import annotations

import time
from typing import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from archsearch.analysis.front import Point, pareto_points, scored_points
from archsearch.search.worker import Tally


def front_table(points: Sequence[Point], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("trial", "preset", "family", "layout", "params (M)", "GMACs", "latency (ms)", "zero-shot top-1",
                "I->T R@1"):
        table.add_column(col, justify="left" if col in ("preset", "family", "layout") else "right")
    for p in points:
        a = p.trial.user_attrs
        table.add_row(str(p.number), p.preset or "", a.get("family", ""), escape(a.get("layout", "")),
                      f"{a['params_m']:.1f}", f"{a['gmacs']:.3g}", f"{p.latency_ms:.1f}", f"{p.zeroshot_top1:.1f}",
                      f"{a.get('i2t_r1', float('nan')):.1f}")
    return table


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
                 front_table(front, f"current front ({len(front)} trials)"))
