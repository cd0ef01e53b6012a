"""The pydantic models of a space file (`spaces/*.yaml`): which choices may be written where.

Field names follow `ArchSpec`, and a field a space omits is fixed at the ArchSpec default. The
image tower is declared as named *layouts* (stem, ordered stages, head), because architecture
families differ in their number of stages. A stage offers one or more *blocks*, each fixing a
mixer and an mlp kind, so that fields that only make sense for one block kind (head_dim, pos,
norm) are chosen per block. Checks here reject what could never build (a block none of whose
combinations is a valid stage, a 'none' downsampling that changes the width); the remaining
invalid combinations are pruned by the sampler and left out of `size()`.
"""

from __future__ import annotations

from itertools import product
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from archsearch.space.choices import (
    SAME, Choices, HeadsChoices, Times, WidthChoices, boolean, choices_of, non_negative_float, one_of,
    positive_float, positive_int,
)
from archsearch.space.ties import TieRule
from archsearch.spec.arch import (
    Downsample, ImageHeadSpec, Mixer, MlpKind, Norm, Pool, PosEncoding, StageSpec, StemKind, StemSpec, TextMixer,
    TextTowerSpec,
)

Ints = choices_of(positive_int)
Floats = choices_of(positive_float)
Bools = choices_of(boolean)


def _default(model: type[BaseModel], field: str) -> Any:
    """The ArchSpec default of `field`: the fixed choice of a space that omits it."""
    return Field(default=Choices.fixed(model.model_fields[field].default))


def block_id(mixer: str, mlp: str) -> str:
    """The name of a block kind, also its parameter prefix: `attention_geglu`."""
    return f"{mixer}_{mlp}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StemChoices(_Strict):
    kind: choices_of(one_of(StemKind))
    width: Ints
    scale_branch: Bools = _default(StemSpec, "scale_branch")


# The per-block choices, in sampling order.
BLOCK_FIELDS = ("mlp_ratio", "pos", "norm", "head_dim")


class BlockChoices(_Strict):
    """One block kind a stage may use. Its mixer and mlp are fixed and name it."""

    mixer: Mixer
    mlp: MlpKind
    mlp_ratio: Floats
    pos: choices_of(one_of(PosEncoding)) = _default(StageSpec, "pos")
    norm: choices_of(one_of(Norm)) = _default(StageSpec, "norm")
    head_dim: Ints = _default(StageSpec, "head_dim")

    @property
    def id(self) -> str:
        return block_id(self.mixer, self.mlp)

    @model_validator(mode="after")
    def _heads_iff_attention(self) -> "BlockChoices":
        has_heads = self.head_dim.values != (None,)
        if self.mixer == "attention" and not has_heads:
            raise ValueError("head_dim: attention blocks need head_dim choices")
        if self.mixer != "attention" and has_heads:
            raise ValueError(f"head_dim: only attention blocks have heads, not {self.mixer}; allowed: omit it")
        return self

    def stage_variants(self, downsample: Choices) -> list[dict]:
        """Every stage this block makes with these downsamplings, as StageSpec fields except depth
        and width (which never change what else is valid, beyond head_dim dividing the width)."""
        fields = {"downsample": downsample.values, **{f: getattr(self, f).values for f in BLOCK_FIELDS}}
        return [dict(zip(fields, combo), mixer=self.mixer, mlp=self.mlp) for combo in product(*fields.values())]


def _stage_problem(variants: list[dict]) -> str | None:
    """None if some variant is a valid stage (at a width its head_dim divides), else why the first is not."""
    problems = []
    for variant in variants:
        try:
            StageSpec(depth=1, width=variant["head_dim"] or 1, **variant)
            return None
        except ValidationError as exc:
            problems.append(exc.errors()[0]["msg"].removeprefix("Value error, "))
    return problems[0]


class StageChoices(_Strict):
    depth: Ints
    downsample: choices_of(one_of(Downsample)) = _default(StageSpec, "downsample")
    width: WidthChoices
    blocks: tuple[BlockChoices, ...] = Field(min_length=1)

    @field_validator("width")
    @classmethod
    def _none_keeps_width(cls, width: Choices | Times, info: ValidationInfo) -> Choices | Times:
        downsample = info.data.get("downsample")
        if downsample and "none" in downsample.values and width != SAME:
            raise ValueError("downsample 'none' keeps the input width; allowed: same")
        return width

    @field_validator("blocks")
    @classmethod
    def _blocks_buildable(cls, blocks: tuple[BlockChoices, ...], info: ValidationInfo) -> tuple[BlockChoices, ...]:
        ids = [block.id for block in blocks]
        for name in ids:
            if ids.count(name) > 1:
                raise ValueError(f"two blocks are {name}; offer each mixer and mlp pair once")
        downsample = info.data.get("downsample")
        if downsample is None:  # invalid itself, and reported as such
            return blocks
        for i, block in enumerate(blocks):
            problem = _stage_problem(block.stage_variants(downsample))
            if problem:
                raise ValueError(f"block {i} ({block.id}) builds no valid stage with downsample "
                                 f"{downsample.describe()}: {problem}")
        return blocks

    def block(self, name: str) -> BlockChoices:
        return next(block for block in self.blocks if block.id == name)


class HeadChoices(_Strict):
    pool: choices_of(one_of(Pool)) = _default(ImageHeadSpec, "pool")
    conv_expand: choices_of(non_negative_float) = _default(ImageHeadSpec, "conv_expand")
    norm: choices_of(one_of(ImageHeadSpec.model_fields["norm"].annotation)) = _default(ImageHeadSpec, "norm")
    proj_bias: Bools = _default(ImageHeadSpec, "proj_bias")


class LayoutChoices(_Strict):
    """One image-tower family: its stem, its ordered stages and its head."""

    stem: StemChoices
    stages: tuple[StageChoices, ...] = Field(min_length=1)
    head: HeadChoices = HeadChoices()

    def signatures(self) -> set[tuple[str, int]]:
        """(stem kind, number of stages) of every architecture in the layout."""
        return {(kind, len(self.stages)) for kind in self.stem.kind.values}


class ImageChoices(_Strict):
    layouts: dict[str, LayoutChoices] = Field(min_length=1)

    @field_validator("layouts")
    @classmethod
    def _layouts_disjoint(cls, layouts: dict[str, LayoutChoices]) -> dict[str, LayoutChoices]:
        """Each architecture belongs to one layout, so params_of finds it and size() counts it once."""
        owner: dict[tuple[str, int], str] = {}
        for name, layout in layouts.items():
            for signature in layout.signatures():
                if signature in owner:
                    raise ValueError(f"{name}: same stem kind ({signature[0]}) and stage count ({signature[1]}) "
                                     f"as layout {owner[signature]!r}; layouts must differ in one of them")
                owner[signature] = name
        return layouts


# Text fields chosen once per tower, in sampling order (depth and the per-layer mixers follow).
TEXT_FIELDS = ("vocab_size", "context_length", "width", "heads", "mlp_ratio", "causal_mask", "conv_kernel")


class TextChoices(_Strict):
    vocab_size: Ints = _default(TextTowerSpec, "vocab_size")
    context_length: Ints = _default(TextTowerSpec, "context_length")
    width: Ints
    heads: HeadsChoices
    mlp_ratio: Floats = _default(TextTowerSpec, "mlp_ratio")
    causal_mask: Bools = _default(TextTowerSpec, "causal_mask")
    conv_kernel: Ints = _default(TextTowerSpec, "conv_kernel")
    depth: Ints
    mixer: choices_of(one_of(TextMixer)) = Field(description="the choices of every layer's mixer")


class SpaceFile(_Strict):
    presets: tuple[str, ...] = Field((), description="presets the space contains (checked on load)")
    ties: tuple[TieRule, ...] = ()
    resolution: Ints
    embed_dim: Ints
    image: ImageChoices
    text: TextChoices

