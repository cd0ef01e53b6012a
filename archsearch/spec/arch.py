"""`ArchSpec`: the one description of a concrete CLIP architecture that every stage passes on.

The spec is pure data (pydantic, no torch): a space samples it, the builder turns it into
modules, latency measures it, the proxy trains a scaled-down copy of it, and export writes it.
Field values are deliberately few and named after the blocks they select, so that a spec reads
like the architecture table of a paper.

Image tower: ``stem -> stages -> head -> projection``. A stage is a stack of identical blocks
chosen by its token ``mixer`` and ``mlp`` kind:

==========  ==========  =============================================================
mixer       mlp         block
==========  ==========  =============================================================
repmixer    convffn     FastViT RepMixerBlock (reparameterizable depthwise mixing)
attention   convffn     FastViT AttentionBlock (BatchNorm/LayerNorm2d, NCHW)
attention   mlp, geglu  pre-norm transformer block on tokens (ViT / ViTamin)
mbconv      none        ViTamin MbConv-LN block (the inverted bottleneck is its MLP)
==========  ==========  =============================================================
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

Mixer = Literal["repmixer", "mbconv", "attention"]
MlpKind = Literal["mlp", "convffn", "geglu", "none"]
PosEncoding = Literal["none", "repcpe", "learned"]
Downsample = Literal["none", "patch_embed", "patch_embed_se", "conv_ln", "strided_block"]
Norm = Literal["batchnorm", "layernorm"]
StemKind = Literal["mobileone", "vitamin", "convstem"]
Pool = Literal["avg", "token"]
TextMixer = Literal["repmixer1d", "attention"]

# Output stride of each stem and the stride added by each stage downsampling.
STEM_STRIDE = {"mobileone": 4, "vitamin": 2, "convstem": 16}
DOWNSAMPLE_STRIDE = {"none": 1, "patch_embed": 2, "patch_embed_se": 2, "conv_ln": 2, "strided_block": 2}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StemSpec(_Frozen):
    """Convolutional stem: ``mobileone`` (FastViT, 3 MobileOne blocks, stride 4), ``vitamin``
    (3x3 s2 conv, LayerNorm+GELU, 3x3 conv; stride 2) or ``convstem`` (MobileCLIP-B's
    patchifying ConvStem, kernels 4/2/2, stride 16)."""

    kind: StemKind
    width: PositiveInt
    scale_branch: bool = Field(True, description="MobileOne 1x1 scale branch (off in MCi3/MCi4)")


class StageSpec(_Frozen):
    depth: PositiveInt
    width: PositiveInt
    mixer: Mixer
    mlp: MlpKind
    mlp_ratio: float = Field(gt=0, description="MLP hidden width / width; MBConv expansion ratio")
    downsample: Downsample = "none"
    pos: PosEncoding = "none"
    norm: Norm = "batchnorm"
    head_dim: Optional[PositiveInt] = Field(None, description="attention head width (attention stages only)")

    @property
    def is_token_block(self) -> bool:
        """True for transformer stages that run on (B, N, C) tokens."""
        return self.mixer == "attention" and self.mlp in ("mlp", "geglu")

    @property
    def heads(self) -> int:
        return self.width // self.head_dim if self.head_dim else 0

    @model_validator(mode="after")
    def _check_block(self) -> "StageSpec":
        allowed = {
            "repmixer": ("convffn",),
            "mbconv": ("none",),
            "attention": ("convffn", "mlp", "geglu"),
        }[self.mixer]
        if self.mlp not in allowed:
            raise ValueError(f"mlp: {self.mlp!r} cannot follow mixer {self.mixer!r}; allowed: {', '.join(allowed)}")
        if self.mixer == "repmixer" and self.norm != "batchnorm":
            raise ValueError("norm: repmixer folds BatchNorm into its convolutions; allowed: batchnorm")
        if self.mixer == "mbconv" and self.norm != "layernorm":
            raise ValueError("norm: mbconv blocks are pre-LayerNorm (ViTamin MbConv-LN); allowed: layernorm")
        if self.is_token_block and self.norm != "layernorm":
            raise ValueError("norm: transformer blocks on tokens use LayerNorm; allowed: layernorm")
        if self.mixer == "attention":
            if self.head_dim is None:
                raise ValueError("head_dim: required for attention stages")
            if self.width % self.head_dim:
                raise ValueError(
                    f"head_dim: {self.head_dim} does not divide width {self.width}; "
                    f"allowed: divisors of {self.width}"
                )
        elif self.head_dim is not None:
            raise ValueError(f"head_dim: only attention stages have heads, not {self.mixer!r}; allowed: null")
        if self.downsample == "strided_block" and self.mixer != "mbconv":
            raise ValueError("downsample: strided_block strides the first MBConv block; allowed with mixer mbconv only")
        if self.pos == "learned" and not self.is_token_block:
            raise ValueError("pos: learned position embeddings apply to token stages (attention + mlp/geglu); "
                             "allowed here: none, repcpe")
        if self.pos == "repcpe" and self.mixer == "mbconv":
            raise ValueError("pos: mbconv stages carry no positional encoding; allowed: none")
        return self


class ImageHeadSpec(_Frozen):
    """What follows the last stage. timm's convention fixes where the final LayerNorm sits:
    before pooling for ``token`` pooling, after pooling (fc-norm) for ``avg``."""

    pool: Pool = "avg"
    conv_expand: float = Field(0.0, ge=0, description="width factor of the final MobileOne conv (FastViT: 2); 0 = none")
    norm: Literal["none", "layernorm"] = "none"
    proj_bias: bool = Field(True, description="bias of the linear projection to the joint embedding")


class ImageTowerSpec(_Frozen):
    stem: StemSpec
    stages: tuple[StageSpec, ...] = Field(min_length=1)
    head: ImageHeadSpec = ImageHeadSpec()

    @property
    def num_features(self) -> int:
        last = self.stages[-1].width
        return int(last * self.head.conv_expand) if self.head.conv_expand else last

    def stage_strides(self) -> tuple[int, ...]:
        """Output stride (relative to the input image) at the end of each stage."""
        stride, out = STEM_STRIDE[self.stem.kind], []
        for stage in self.stages:
            stride *= DOWNSAMPLE_STRIDE[stage.downsample]
            out.append(stride)
        return tuple(out)

    @model_validator(mode="after")
    def _check_tower(self) -> "ImageTowerSpec":
        prev = self.stem.width
        for i, stage in enumerate(self.stages):
            if stage.downsample == "none" and stage.width != prev:
                raise ValueError(
                    f"stages.{i}.downsample: 'none' keeps the width ({prev}) but width is {stage.width}; "
                    "allowed: patch_embed, patch_embed_se, conv_ln, strided_block"
                )
            if stage.downsample.startswith("patch_embed") and stage.width % prev:
                raise ValueError(
                    f"stages.{i}.width: {stage.downsample} is a depthwise (grouped) conv from width {prev}, "
                    f"so width {stage.width} must be a multiple of {prev}; allowed: {prev}, {2 * prev}, {3 * prev}, ..."
                )
            prev = stage.width
        last = self.stages[-1]
        if self.head.pool == "token" and not last.is_token_block:
            raise ValueError("head.pool: 'token' needs a class token, i.e. a last stage of transformer blocks "
                             "(attention + mlp/geglu); allowed here: avg")
        if self.head.conv_expand and last.is_token_block:
            raise ValueError("head.conv_expand: the final MobileOne conv needs a convolutional last stage; allowed here: 0")
        if self.head.norm == "layernorm" and not last.is_token_block:
            raise ValueError("head.norm: a final LayerNorm follows transformer stages; allowed here: none")
        return self


class TextTowerSpec(_Frozen):
    """OpenCLIP-style text tower whose layers are transformer blocks (``attention``) or
    MobileCLIP Text-RepMixer blocks (``repmixer1d``), in the order given."""

    vocab_size: PositiveInt = 49408
    context_length: PositiveInt = 77
    width: PositiveInt
    heads: PositiveInt
    mlp_ratio: float = Field(4.0, gt=0)
    layers: tuple[TextMixer, ...] = Field(min_length=1)
    causal_mask: bool = False
    conv_kernel: PositiveInt = Field(11, description="Text-RepMixer depthwise kernel size (odd)")

    @model_validator(mode="after")
    def _check_text(self) -> "TextTowerSpec":
        if self.width % self.heads:
            raise ValueError(f"heads: {self.heads} does not divide width {self.width}; allowed: divisors of {self.width}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel: {self.conv_kernel} is even; allowed: odd sizes (3, 5, 7, 11, ...)")
        return self


class ArchSpec(_Frozen):
    """A concrete CLIP architecture: image tower, text tower and the joint embedding."""

    resolution: PositiveInt
    embed_dim: PositiveInt
    image: ImageTowerSpec
    text: TextTowerSpec

    @model_validator(mode="after")
    def _check_grid(self) -> "ArchSpec":
        for i, (stage, stride) in enumerate(zip(self.image.stages, self.image.stage_strides())):
            if stage.pos == "learned" and self.resolution % stride:
                raise ValueError(
                    f"resolution: {self.resolution} is not a multiple of stage {i}'s stride {stride}, "
                    "which its learned position embedding needs; allowed: multiples of "
                    f"{stride}"
                )
        if self.resolution < self.image.stage_strides()[-1]:
            raise ValueError(f"resolution: {self.resolution} is smaller than the tower's output stride "
                             f"{self.image.stage_strides()[-1]}")
        return self

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """12 hex digits naming this architecture wherever a name must be short and stable (timm model
        names, latency caches). Fields at their defaults are left out, so adding a field with a
        default renames nothing."""
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict) -> "ArchSpec":
        return cls.model_validate(data)


MIXER_LETTER = {"repmixer": "R", "mbconv": "M", "attention": "A", "repmixer1d": "R"}


def layout_summary(spec: ArchSpec) -> str:
    """A compact reading of the layout, e.g. ``R2-R6-R10-A2 @256 | text R-A4-R x512``:
    per image stage the mixer letter and depth, per run of text layers the mixer and count."""
    image = "-".join(
        f"{MIXER_LETTER[s.mixer]}{'g' if s.mlp == 'geglu' else ''}{s.depth}" for s in spec.image.stages
    )
    runs = [(mixer, len(list(group))) for mixer, group in itertools.groupby(spec.text.layers)]
    text = "-".join(f"{MIXER_LETTER[m]}{n if n > 1 else ''}" for m, n in runs)
    return f"{image} @{spec.resolution} | text {text} x{spec.text.width}"
