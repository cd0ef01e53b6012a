"""A study's trials sorted into what the plots draw: scored, the front, and the faint rest.

Latencies are on the study's settled scale (`search/latency_scale.py`). Scored trials (completed,
feasible, trained) are points; trials that broke a constraint or failed after their latency was
measured have a latency but no meaningful accuracy, so they are drawn faintly along the latency
axis; pruned, running and queued trials have neither and are counted only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch.analysis.front import Point, is_feasible, pareto_points, scored_points
from archsearch.analysis.open_study import StudySource, require_completed
from archsearch.search.latency_scale import settled_trials, study_scales


@dataclass(frozen=True)
class TrialSet:
    name: str
    trials: list[FrozenTrial]
    scored: list[Point]
    front: list[Point]
    infeasible: list[FrozenTrial]  # completed with a latency, not trained (a constraint broke)
    failed: list[FrozenTrial]      # failed after their latency was measured
    # (device fingerprint id, anchor) -> the settled scale the latencies are drawn on
    scales: dict = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, trials: list[FrozenTrial]) -> "TrialSet":
        scales = study_scales(trials)
        trials = settled_trials(trials, scales)
        scored = scored_points(trials)
        timed = [t for t in trials if "latency_ms" in t.user_attrs]
        return cls(name, trials, scored, pareto_points(scored),
                   [t for t in timed if t.state == TrialState.COMPLETE
                    and (t.user_attrs.get("trained") is False or not is_feasible(t))],
                   [t for t in timed if t.state == TrialState.FAIL], scales)

    @classmethod
    def of_source(cls, source: StudySource) -> "TrialSet":
        return cls.of(source.name, require_completed(source))

    def counts(self) -> dict[str, int]:
        """Trials by what became of them, for reports."""
        states = {s.name.lower(): sum(1 for t in self.trials if t.state == s) for s in TrialState}
        return {"total": len(self.trials), **{k: v for k, v in states.items() if v},
                "scored": len(self.scored), "infeasible": len(self.infeasible), "front": len(self.front)}

    def scored_study(self, study: optuna.Study) -> optuna.Study:
        """An in-memory copy of `study` holding only the scored trials, for Optuna's own plots
        (importances over infeasible trials would learn their stand-in accuracy of 0)."""
        copy = optuna.create_study(directions=study.directions, study_name=f"{self.name} (scored)")
        copy.add_trials([p.trial for p in self.scored])
        return copy
