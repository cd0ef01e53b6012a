"""Hypervolume of the accuracy-latency front, with its reference point stated.

Computed as Optuna computes it, in minimisation form: each point is (-zero-shot top-1, latency)
and the hypervolume is the area it dominates up to the reference point. The reference point is
(zero-shot top-1 0 %, latency 1.1 x the slowest scored trial) unless given, so that every scored
trial counts; the figure is in % x ms and compares studies only under the same reference point
(`archsearch pareto --vs` uses one for both, and `--ref-latency-ms` fixes it across runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from archsearch import pareto
from archsearch.analysis.front import Point
from archsearch.errors import UserError

LATENCY_FACTOR = 1.1
UNITS = "% x ms"


@dataclass(frozen=True)
class ReferencePoint:
    zeroshot_top1: float
    latency_ms: float
    rule: str

    def to_dict(self) -> dict:
        return {"zeroshot_top1": self.zeroshot_top1, "latency_ms": self.latency_ms, "rule": self.rule}

    def __str__(self) -> str:
        return f"zero-shot top-1 {self.zeroshot_top1:g} %, latency {self.latency_ms:.4g} ms ({self.rule})"


def reference_point(points: Iterable[Point], latency_ms: Optional[float] = None) -> ReferencePoint:
    """(0 %, `latency_ms`), or (0 %, 1.1 x the slowest of `points`) when not given."""
    if latency_ms is not None:
        if not latency_ms > 0:
            raise UserError(f"--ref-latency-ms: {latency_ms} is not a positive latency in ms")
        return ReferencePoint(0.0, float(latency_ms), "given")
    slowest = max((p.latency_ms for p in points), default=None)
    if slowest is None:
        raise UserError("no scored trial (completed, feasible and trained) to set the hypervolume reference from")
    return ReferencePoint(0.0, LATENCY_FACTOR * slowest, f"{LATENCY_FACTOR:g} x the slowest scored trial")


def hypervolume(points: Iterable[Point], reference: ReferencePoint) -> float:
    """Area dominated by `points` (more accurate and faster) up to `reference`; points beyond
    the reference in either objective add nothing, as in Optuna."""
    return pareto.hypervolume([(p.zeroshot_top1, p.latency_ms) for p in points], reference.zeroshot_top1,
                              reference.latency_ms)
