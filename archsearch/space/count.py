"""The exact number of distinct valid architectures in a space, counted without enumerating them.

Distinct parameter assignments give distinct ArchSpecs (layouts never share a stem kind and
stage count, a stage's blocks differ in mixer or mlp, every other parameter sets its own field),
so counting valid assignments counts architectures. The text tower, the embedding width and the
image tower are independent; the image tower is counted by dynamic programming over its stages,
carrying only what later checks look at: the last stage, its input width and the output stride.

Validity is decided by the ArchSpec validators themselves (on a one-stage tower whose stem
stands in for the stage's input), except for two rules mirrored below from
`ArchSpec._check_grid` and the `widths_non_decreasing` tie rule; the brute-force test in
tests/test_space.py keeps the count equal to what `sample` accepts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from itertools import product

from pydantic import BaseModel, ValidationError

from archsearch.space.choices import stage_widths, text_heads
from archsearch.space.schema import TEXT_FIELDS, LayoutChoices, SpaceFile, TextChoices
from archsearch.spec.arch import (
    DOWNSAMPLE_STRIDE, STEM_STRIDE, ImageHeadSpec, ImageTowerSpec, StageSpec, StemSpec, TextTowerSpec,
)

def count_space(space: SpaceFile) -> int:
    image = sum(_count_layout(layout, resolution, "widths_non_decreasing" in space.ties)
                for resolution in space.resolution.values for layout in space.image.layouts.values())
    return len(space.embed_dim.values) * image * _count_text(space.text)


def _combinations(choices_model: BaseModel) -> list[dict]:
    """Every assignment of a model's Choices fields."""
    fields = type(choices_model).model_fields
    return [dict(zip(fields, combo)) for combo in product(*(getattr(choices_model, f).values for f in fields))]


def _freeze(data: dict) -> tuple:
    """A dict as a hashable key (for the cache and the DP states)."""
    return tuple(sorted(data.items()))


@lru_cache(maxsize=None)
def _tower_valid(stem_kind: str, in_width: int, stage: tuple, head: tuple = ()) -> bool:
    """Whether `stage`, fed `in_width` channels, is valid (and, given a head, valid as the last stage)."""
    try:
        ImageTowerSpec(stem=StemSpec(kind=stem_kind, width=in_width), stages=(StageSpec(depth=1, **dict(stage)),),
                       head=ImageHeadSpec(**dict(head)))
    except ValidationError:
        return False
    return True


def _count_layout(layout: LayoutChoices, resolution: int, non_decreasing: bool) -> int:
    head_settings = [_freeze(head) for head in _combinations(layout.head)]
    total = 0
    for stem in _combinations(layout.stem):
        kind = stem["kind"]
        # (input width of the last stage so far, that stage, output stride) -> number of towers
        states = Counter({(None, None, STEM_STRIDE[kind]): 1})
        for stage in layout.stages:
            following: Counter = Counter()
            for (_, last, stride), ways in states.items():
                fed = dict(last)["width"] if last else stem["width"]  # this stage's input width
                for width, block in product(stage_widths(stage.width, fed).values, stage.blocks):
                    if non_decreasing and width < fed:
                        continue
                    for variant in block.stage_variants(stage.downsample):
                        out_stride = stride * DOWNSAMPLE_STRIDE[variant["downsample"]]
                        # ArchSpec._check_grid: a learned position embedding needs a whole grid.
                        if variant["pos"] == "learned" and resolution % out_stride:
                            continue
                        frozen = _freeze({**variant, "width": width})
                        if _tower_valid(kind, fed, frozen):
                            following[(fed, frozen, out_stride)] += ways * len(stage.depth.values)
            states = following
        for (fed, last, stride), ways in states.items():
            # ArchSpec._check_grid: the image must be at least one output pixel.
            if resolution >= stride:
                total += ways * sum(_tower_valid(kind, fed, last, head) for head in head_settings)
    return total


def _count_text(text: TextChoices) -> int:
    """Valid tower-wide settings (validated on a one-layer tower) times the layer sequences."""
    valid = sum(_text_valid(settings, text.mixer.values[0]) for settings in _text_settings(text))
    return valid * sum(len(text.mixer.values) ** depth for depth in text.depth.values)


def _text_settings(text: TextChoices) -> Iterator[dict]:
    """Every assignment of the tower-wide text fields. Heads given by their width offer only the
    whole head counts of each width; a head_dim that does not divide it builds nothing."""
    others = [f for f in TEXT_FIELDS if f != "heads"]
    for combo in product(*(getattr(text, f).values for f in others)):
        settings = dict(zip(others, combo))
        for heads in text_heads(text.heads, settings["width"]).values:
            yield {**settings, "heads": heads}


def _text_valid(settings: dict, mixer: str) -> bool:
    try:
        TextTowerSpec(**settings, layers=(mixer,))
    except ValidationError:
        return False
    return True
