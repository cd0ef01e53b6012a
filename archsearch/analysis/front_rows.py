"""The front as rows: one JSON-ready dict per trial, and the same rows as a rich table."""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table

from archsearch.analysis.front import Point
from archsearch.errors import UserError
from archsearch.spec.presets import paper_name

ROW_ATTRS = ("family", "layout", "mixers", "image_params", "text_params", "params_m", "image_gmacs", "text_gmacs",
             "gmacs", "image_ms", "text_ms", "latency_ms", "zeroshot_top1", "i2t_r1", "t2i_r1")


def _number(key: str, fmt: str, scale: float = 1.0) -> Callable[[dict], str]:
    def cell(row: dict) -> str:
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return fmt.format(value / scale if scale != 1.0 else value)
    return cell


def _params(row: dict) -> str:
    image, text = _number("image_params", "{:.3g}", 1e6)(row), _number("text_params", "{:.3g}", 1e6)(row)
    return f"{image}+{text}" if image and text else ""


# The columns of `archsearch pareto`, narrow enough for 110 columns: header, cell, is text
COLUMNS: tuple[tuple[str, Callable[[dict], str], bool], ...] = (
    ("trial", _number("number", "{}"), False),
    ("preset", lambda row: row.get("paper_name") or "", True),
    ("family", lambda row: row.get("family") or "", True),
    ("layout", lambda row: (row.get("layout") or "").replace(" | ", "\n"), True),
    ("params M\nimage+text", _params, False),
    ("GMACs", _number("gmacs", "{:.3g}"), False),
    ("latency\nms", _number("latency_ms", "{:.2f}"), False),
    ("top-1\n%", _number("zeroshot_top1", "{:.1f}"), False),
    ("R@1 %\nI->T", _number("i2t_r1", "{:.1f}"), False),
    ("R@1 %\nT->I", _number("t2i_r1", "{:.1f}"), False),
)


def count(n: int, noun: str) -> str:
    """'1 trial', '3 trials'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def preset_label(preset: Optional[str]) -> Optional[str]:
    """The paper's name of a preset (``MobileCLIP-S0``); an unknown name is shown as recorded."""
    if preset is None:
        return None
    try:
        return paper_name(preset)
    except UserError:
        return preset


def point_row(point: Point) -> dict:
    attrs = point.trial.user_attrs
    return {"number": point.number, "preset": point.preset, "paper_name": preset_label(point.preset),
            **{key: attrs.get(key) for key in ROW_ATTRS}}


def front_rows(points: Sequence[Point]) -> list[dict]:
    return [point_row(p) for p in points]


def front_table(rows: Sequence[dict], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header, _, text in COLUMNS:
        table.add_column(header, justify="left" if text else "right", no_wrap=header != "layout")
    for row in rows:
        table.add_row(*(escape(cell(row)) for _, cell, _ in COLUMNS))
    return table
