"""Tie rules: constraints between fields of a sampled architecture that a space file switches on
by name (`ties: [widths_non_decreasing, heads_divide_width]`). A rule returns what it found
broken, so that a pruned trial and a rejected spec say which fields broke it."""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Literal

TieRule = Literal["widths_non_decreasing", "heads_divide_width"]


def widths_non_decreasing(arch: dict) -> str | None:
    """Image widths never shrink from the stem through the last stage, as in every preset."""
    prev, prev_field = arch["image"]["stem"]["width"], "image.stem.width"
    for i, stage in enumerate(arch["image"]["stages"]):
        if stage["width"] < prev:
            return f"image.stages.{i}.width {stage['width']} < {prev_field} {prev}"
        prev, prev_field = stage["width"], f"image.stages.{i}.width"
    return None


def heads_divide_width(arch: dict) -> str | None:
    """Attention splits the width into whole heads: image head_dim and text heads divide the width.
    ArchSpec enforces this too; the rule names it when a trial is pruned for it."""
    for i, stage in enumerate(arch["image"]["stages"]):
        if stage["head_dim"] and stage["width"] % stage["head_dim"]:
            return f"image.stages.{i}.head_dim {stage['head_dim']} does not divide width {stage['width']}"
    text = arch["text"]
    if isinstance(text["heads"], Fraction):  # width / head_dim for a head_dim that does not divide the width
        return f"text.head_dim {text['width'] / text['heads']} does not divide text.width {text['width']}"
    if text["width"] % text["heads"]:
        return f"text.heads {text['heads']} does not divide text.width {text['width']}"
    return None


TIE_RULES: dict[str, Callable[[dict], str | None]] = {
    "widths_non_decreasing": widths_non_decreasing,
    "heads_divide_width": heads_divide_width,
}
