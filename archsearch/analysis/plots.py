"""The Pareto plot as a PNG (matplotlib, no pyplot, so it runs headless and leaves no global state).

All scored trials are points coloured by family and mixer mix; the front is a step line over the
region it dominates (whose area is the hypervolume); presets carry their papers' names and front
trials their numbers, placed so that no two labels overlap; trials that broke a constraint or
failed have a latency but no real accuracy, so they sit faintly along the latency axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator
from matplotlib.transforms import Bbox

from archsearch.analysis.colours import MIXER_LEGEND, Colouring, colouring
from archsearch.analysis.front import Point
from archsearch.analysis.hypervolume import UNITS, ReferencePoint
from archsearch.analysis.labels import Label, Placement, marker_boxes, place_labels, step_boxes
from archsearch.analysis.front_rows import count, preset_label
from archsearch.analysis.trial_sets import TrialSet
from archsearch.search.record import OBJECTIVES

FIGSIZE = (11.0, 6.5)
DPI = 150
LOG_RATIO = 8.0  # a log axis once the largest value is this many times the smallest
FAINT = "0.55"
VS_COLOUR = "#7b3294"


@dataclass(frozen=True)
class Comparison:
    """A second study's front, drawn over the first (`archsearch pareto --vs`)."""
    trials: TrialSet
    hypervolume: float


def new_figure(figsize: tuple[float, float] = FIGSIZE, **kw) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, **kw)
    FigureCanvasAgg(fig)
    return fig


def is_wide(values: Sequence[float]) -> bool:
    """Whether `values` span enough of a range to want a log axis."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) >= LOG_RATIO


def set_log(ax: Axes, axis: str) -> None:
    """Log scale with plain tick labels (2, 5, 10 ms)."""
    getattr(ax, f"set_{axis}scale")("log")
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def scatter_by_colour(ax: Axes, points: Sequence[Point], colours: Colouring, x: Callable[[Point], float],
                      y: Callable[[Point], float]) -> None:
    """One scatter (and one legend entry) per colour key; presets as outlined diamonds on top."""
    for key, colour in colours.colours.items():
        group = [p for p in points if colours.keys.get(p.number) == key]
        if group:
            ax.scatter([x(p) for p in group], [y(p) for p in group], s=30, color=colour, alpha=0.85,
                       edgecolors="white", linewidths=0.5, label=key, zorder=3)
    presets = [p for p in points if p.preset]
    if presets:
        ax.scatter([x(p) for p in presets], [y(p) for p in presets], s=52, marker="D",
                   color=[colours.of(p.trial) for p in presets], edgecolors="black", linewidths=0.9, zorder=4)
        ax.scatter([], [], s=52, marker="D", color="white", edgecolors="black", linewidths=0.9,
                   label="preset (paper name)")


def point_labels(points: Sequence[Point], front: Sequence[Point], x: Callable[[Point], float],
                 y: Callable[[Point], float]) -> list[Label]:
    """Presets by their papers' names first, then the other front trials by number."""
    named = [Label(preset_label(p.preset), x(p), y(p)) for p in points if p.preset]
    numbered = [Label(f"#{p.number}", x(p), y(p)) for p in front if not p.preset]
    return named + numbered


def label_points(ax: Axes, points: Sequence[Point], front: Sequence[Point], x: Callable[[Point], float],
                 y: Callable[[Point], float], obstacles: Sequence[Bbox] = ()) -> Placement:
    """Labels clear of each other, of every point and of `obstacles` (e.g. the front's line)."""
    labels = point_labels(points, front, x, y)
    markers = marker_boxes(ax, [(x(p), y(p)) for p in points])
    return place_labels(ax, labels, markers + list(obstacles), fontsize=7.5, color="0.1")


def front_steps(front: Sequence[Point], right: float) -> tuple[list[float], list[float]]:
    """The staircase of the front, carried on to the reference latency."""
    xs = [p.latency_ms for p in front] + [right]
    ys = [p.zeroshot_top1 for p in front] + [front[-1].zeroshot_top1]
    return xs, ys


@dataclass(frozen=True)
class Limits:
    x: tuple[float, float]
    y: tuple[float, float]
    x_log: bool
    rug_y: float  # where the faint, latency-only trials sit (data units)


def pareto_limits(trials: TrialSet, reference: ReferencePoint, vs: Optional[Comparison] = None) -> Limits:
    """Axes that show every trial and the reference latency, with room below for the faint ones."""
    faint = [t.user_attrs["latency_ms"] for t in trials.infeasible + trials.failed]
    shown = trials.scored + (vs.trials.front if vs else [])
    latencies = [p.latency_ms for p in shown] + faint
    x_log = is_wide(latencies + [reference.latency_ms])
    low = min(latencies)
    x = (low / 1.25 if x_log else low - 0.05 * (reference.latency_ms - low), reference.latency_ms * 1.02)
    accuracies = [p.zeroshot_top1 for p in shown]
    pad = max((max(accuracies) - min(accuracies)) * 0.12, 1.0)
    bottom, top = min(accuracies) - pad, max(accuracies) + pad
    rug = 0.07 * (top - bottom) if faint else 0.0
    return Limits(x, (bottom - rug, top), x_log, bottom - 0.6 * rug)


def pareto_figure(trials: TrialSet, reference: ReferencePoint, hypervolume: float, subtitle: str = "",
                  vs: Optional[Comparison] = None) -> tuple[Figure, Placement]:
    """The PNG's figure, and where its labels went (a label that found no free place is dropped)."""
    fig = new_figure()
    ax = fig.add_subplot()
    colours = colouring([p.trial for p in trials.scored])
    limits = pareto_limits(trials, reference, vs)
    lat, acc = (lambda p: p.latency_ms), (lambda p: p.zeroshot_top1)

    xs, ys = front_steps(trials.front, reference.latency_ms)
    ax.fill_between(xs, ys, reference.zeroshot_top1, step="post", color="0.6", alpha=0.12, linewidth=0,
                    label=f"dominated region: hypervolume {hypervolume:.4g} {UNITS}\n"
                          f"(reference {reference.zeroshot_top1:g} %, {reference.latency_ms:.3g} ms)")
    ax.step(xs, ys, where="post", color="black", linewidth=1.5, zorder=2,
            label=f"Pareto front of {trials.name} ({count(len(trials.front), 'trial')})")
    scatter_by_colour(ax, trials.scored, colours, lat, acc)
    if vs is not None and vs.trials.front:
        vx, vy = front_steps(vs.trials.front, reference.latency_ms)
        ax.step(vx, vy, where="post", color=VS_COLOUR, linewidth=1.3, linestyle="--", zorder=2,
                label=f"front of {vs.trials.name} ({count(len(vs.trials.front), 'trial')})\n"
                      f"hypervolume {vs.hypervolume:.4g} {UNITS}")
        ax.scatter(vx[:-1], vy[:-1], s=34, facecolors="none", edgecolors=VS_COLOUR, linewidths=1.1, zorder=3)
    for group, marker, what in ((trials.infeasible, "x", "broke a constraint"), (trials.failed, "v", "failed")):
        if group:
            ax.scatter([t.user_attrs["latency_ms"] for t in group], [limits.rug_y] * len(group), marker=marker,
                       s=22, color=FAINT, alpha=0.5, zorder=1,
                       label=f"{what}, not trained ({len(group)}; latency only)")
    if limits.x_log:
        set_log(ax, "x")
    ax.set_xlim(*limits.x)
    ax.set_ylim(*limits.y)

    fig.suptitle(f"Pareto front of {trials.name}: zero-shot top-1 vs latency", fontsize=13, x=0.01, ha="left")
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.3", loc="left")
    ax.set_xlabel(OBJECTIVES["latency_ms"].label, fontsize=10)
    ax.set_ylabel(f"proxy {OBJECTIVES['zeroshot_top1'].label}", fontsize=10)
    ax.grid(True, which="major", color="0.9", linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, title=colours.title, title_fontsize=8,
              frameon=False, borderaxespad=0.0, alignment="left")
    if "mixers" in colours.title:
        fig.text(0.99, 0.01, f"mixers: {MIXER_LEGEND}", fontsize=7.5, color="0.3", ha="right", va="bottom")
    fig.tight_layout()
    lines = step_boxes(ax, xs, ys)
    if vs is not None and vs.trials.front:
        lines += step_boxes(ax, vx, vy) + marker_boxes(ax, list(zip(vx[:-1], vy[:-1])))
    return fig, label_points(ax, trials.scored, trials.front, lat, acc, lines)


def save_png(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
