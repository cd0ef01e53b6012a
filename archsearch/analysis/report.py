"""`archsearch pareto`: the front, its hypervolume and its plots, for one study or two.

With a second study (``--vs``) both hypervolumes use one reference point, set from the trials of
both, so that the two figures compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from archsearch.analysis.hypervolume import UNITS, ReferencePoint, hypervolume, reference_point
from archsearch.analysis.interactive import pareto_html, write_html
from archsearch.analysis.plots import Comparison, pareto_figure, save_png
from archsearch.analysis.open_study import StudySource
from archsearch.analysis.front_rows import count, front_rows
from archsearch.analysis.trial_sets import TrialSet
from archsearch.errors import UserError
from archsearch.search.record import STUDY_CONFIG

PNG, HTML, JSON = "pareto.png", "pareto.html", "pareto.json"


@dataclass(frozen=True)
class StudyFront:
    source: StudySource
    trials: TrialSet
    hypervolume: float

    def to_dict(self) -> dict:
        return {"study": self.source.name, "storage": self.source.storage,
                "run_dir": str(self.source.run_dir) if self.source.run_dir else None,
                "trials": self.trials.counts(), "front": front_rows(self.trials.front),
                "hypervolume": self.hypervolume,
                "latency_scales": [{"device": device, **scale.to_dict()}
                                   for (device, _), scale in self.trials.scales.items()]}


@dataclass(frozen=True)
class ParetoReport:
    main: StudyFront
    reference: ReferencePoint
    vs: Optional[StudyFront] = None

    def to_dict(self, files: dict[str, Path] | None = None) -> dict:
        out = {**self.main.to_dict(), "reference_point": self.reference.to_dict(), "hypervolume_units": UNITS,
               "subtitle": study_subtitle(self.main.source)}
        if self.vs is not None:
            out["vs"] = self.vs.to_dict()
        if files:
            out["plots"] = {kind: str(path) for kind, path in files.items()}
        return out


def _scored(source: StudySource) -> TrialSet:
    trials = TrialSet.of_source(source)
    if not trials.scored:
        counts = ", ".join(f"{n} {k}" for k, n in trials.counts().items() if k not in ("total", "front", "scored"))
        raise UserError(f"study {source.name!r} in {source.storage} has no scored trial (completed, feasible and "
                        f"trained) to draw a front from ({counts})")
    return trials


def build_report(source: StudySource, vs: Optional[StudySource] = None,
                 ref_latency_ms: Optional[float] = None) -> ParetoReport:
    mine = _scored(source)
    theirs = _scored(vs) if vs is not None else None
    reference = reference_point(mine.scored + (theirs.scored if theirs else []), ref_latency_ms)
    main = StudyFront(source, mine, hypervolume(mine.front, reference))
    other = StudyFront(vs, theirs, hypervolume(theirs.front, reference)) if theirs else None
    return ParetoReport(main, reference, other)


def study_subtitle(source: StudySource) -> str:
    """How the figures were measured, from the study's own settings (absent from foreign studies)."""
    config = source.study.user_attrs.get(STUDY_CONFIG) or {}
    latency, recipe = config.get("latency") or {}, (config.get("recipe") or {}).get("name")
    parts = [f"space {config['space_name']}" if config.get("space_name") else None,
             f"proxy recipe {recipe}" if recipe else None,
             f"latency on {latency.get('backend', '?')}, {count(latency.get('threads', 1), 'thread')}, "
             f"batch {latency.get('batch', 1)}"
             + (f", drift-corrected against {latency['anchor']}" if latency.get("anchor") else "") if latency else None,
             count(len(source.study.get_trials(deepcopy=False)), "trial")]
    return "; ".join(p for p in parts if p)


def write_plots(report: ParetoReport, out_dir: Path) -> dict[str, Path]:
    """pareto.png, pareto.html and pareto.json in `out_dir`; returns their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    vs = Comparison(report.vs.trials, report.vs.hypervolume) if report.vs else None
    subtitle = study_subtitle(report.main.source)
    fig, placement = pareto_figure(report.main.trials, report.reference, report.main.hypervolume, subtitle, vs)
    files = {"png": save_png(fig, out_dir / PNG),
             "html": write_html(pareto_html(report.main.trials, report.reference, report.main.hypervolume,
                                            subtitle, vs, placement), out_dir / HTML),
             "json": out_dir / JSON}
    files["json"].write_text(json.dumps(report.to_dict(files), indent=2) + "\n")
    return files
