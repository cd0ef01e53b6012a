"""Point labels that overlap neither each other nor other points: greedy placement.

Labels are placed in the order given (most important first). Each tries offsets on rings around
its point, right and up first, measuring the box with the renderer's own text extent, and takes
the first that stays inside the axes and clears the labels already placed and every other point;
failing that, the first that clears the labels only; failing that, it is left out and reported,
since an overlapping label cannot be read. Offsets beyond the first ring get a thin leader line.
Place labels last: the axes limits and the figure layout must be final, as they move the points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Optional, Sequence

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

RINGS_PT = (4.0, 11.0, 20.0, 32.0, 46.0)
DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (0, 1), (0, -1), (-1, 0))
GAP_PX = 1.0


@dataclass(frozen=True)
class Label:
    text: str
    x: float  # data coordinates of the point it names
    y: float


@dataclass
class Placement:
    annotations: list[Annotation] = field(default_factory=list)
    dropped: list[Label] = field(default_factory=list)


def text_bbox(text: Text, renderer: RendererBase) -> Bbox:
    """The display box of a label's text alone (an annotation's own extent adds its leader line)."""
    if isinstance(text, Annotation):
        text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def boxes_overlap(a: Bbox, b: Bbox, gap: float = 0.0) -> bool:
    return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap


def overlapping_pairs(boxes: Sequence[Bbox]) -> list[tuple[int, int]]:
    return [(i, j) for i, j in combinations(range(len(boxes)), 2) if boxes_overlap(boxes[i], boxes[j])]


def _inside(box: Bbox, frame: Bbox) -> bool:
    return frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1


def _centred_on(box: Bbox, xy) -> bool:
    return abs((box.x0 + box.x1) / 2 - xy[0]) < 0.5 and abs((box.y0 + box.y1) / 2 - xy[1]) < 0.5


def _alignment(dx: int, dy: int) -> tuple[str, str]:
    return ({1: "left", -1: "right", 0: "center"}[dx], {1: "bottom", -1: "top", 0: "center"}[dy])


def marker_boxes(ax: Axes, xy: Sequence[tuple[float, float]], radius_pt: float = 4.0) -> list[Bbox]:
    """Display boxes of round markers at data points `xy`."""
    r = radius_pt * ax.get_figure(root=True).dpi / 72.0
    return [Bbox.from_bounds(x - r, y - r, 2 * r, 2 * r) for x, y in (ax.transData.transform(xy) if xy else ())]


def step_boxes(ax: Axes, xs: Sequence[float], ys: Sequence[float], width_pt: float = 1.5) -> list[Bbox]:
    """Display boxes of the segments of a ``where="post"`` step line (each one horizontal or vertical)."""
    vertices = [(xs[0], ys[0])]
    for x, y_before, y in zip(xs[1:], ys, ys[1:]):
        vertices += [(x, y_before), (x, y)]
    w = width_pt * ax.get_figure(root=True).dpi / 72.0
    display = ax.transData.transform(vertices)
    return [Bbox.from_extents(min(a[0], b[0]) - w, min(a[1], b[1]) - w, max(a[0], b[0]) + w, max(a[1], b[1]) + w)
            for a, b in zip(display, display[1:])]


def place_labels(ax: Axes, labels: Sequence[Label], obstacles: Sequence[Bbox] = (),
                 renderer: Optional[RendererBase] = None, **text_kw) -> Placement:
    """Annotate `ax` with `labels`, clear of each other and, where possible, of `obstacles`
    (display boxes of markers and lines: see `marker_boxes` and `step_boxes`)."""
    renderer = renderer or ax.get_figure(root=True).canvas.get_renderer()
    frame = ax.get_window_extent(renderer).padded(-2.0)
    placement, taken = Placement(), []
    for label in labels:
        anchor = ax.transData.transform((label.x, label.y))
        others = [b for b in obstacles if not _centred_on(b, anchor)]  # its own marker
        probe = ax.annotate(label.text, (label.x, label.y), xytext=(0, 0), textcoords="offset points", **text_kw)
        best, fallback = None, None
        for ring, r in enumerate(RINGS_PT):
            for dx, dy in DIRECTIONS:
                ha, va = _alignment(dx, dy)
                probe.xyann = (dx * r, dy * r)
                probe.set(ha=ha, va=va)
                box = text_bbox(probe, renderer)
                if not _inside(box, frame) or any(boxes_overlap(box, t, GAP_PX) for t in taken):
                    continue
                candidate = (ring, dx * r, dy * r, ha, va, box)
                fallback = fallback or candidate
                if not any(boxes_overlap(box, b) for b in others):
                    best = candidate
                    break
            if best:
                break
        probe.remove()
        chosen = best or fallback
        if chosen is None:
            placement.dropped.append(label)
            continue
        ring, ox, oy, ha, va, box = chosen
        arrow = dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3) if ring else None
        placement.annotations.append(ax.annotate(label.text, (label.x, label.y), xytext=(ox, oy),
                                                 textcoords="offset points", ha=ha, va=va, arrowprops=arrow,
                                                 **text_kw))
        taken.append(box)
    return placement
