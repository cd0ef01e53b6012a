"""Latency units: an ArchSpec cut into the pieces a per-device lookup table times one by one.

A unit is a frozen dataclass naming everything that changes its cost (kind, widths, input grid,
input memory layout, ...) and nothing else, so that identical pieces of different architectures
share one stable string key. Each unit builds itself with the builder functions the real towers
use (`build_stem`, `build_downsample`, `build_stage_body`, `ImageTower`, `TextTower`), taking
the relevant submodule or standing in for the parts timed as other units, and is fed the input it
sees inside the model: same shape *and* memory layout. Layouts matter on a CPU: after a
LayerNorm2d (ViTamin's stem, its strided conv) the feature maps are channels-last and every
following convolution runs channels-last kernels; a transformer stage's blocks run on a
transposed view of the feature map unless a class token was concatenated; text layers after a
Text-RepMixer layer run on a transposed view.

Layouts and output grids are not predicted by rules: they are read off the units themselves,
run once at the timing batch size on the CPU (`probe`), and chained through the tower — the
output of one unit is the input of the next. The meta device cannot do this (its LayerNorm keeps
the input's strides where the CPU kernel does not). A table stores each unit's probe, so that
predicting from known units runs nothing.

Image tower, in order:

- ``stem`` at the input resolution;
- per stage: ``downsample`` (patch embedding / strided conv; none for 'none' and
  'strided_block'), ``pos`` (RepCPE, where the stage has one), ``tokens`` (a transformer stage's
  flatten, learned position add, class token and reshape back: the TokenStage with its blocks
  standing in), ``block`` (one block, counted ``depth`` times; a block whose output layout
  differs from its input's, like an MBConv block striding the stage, is counted apart);
- ``head``: final MobileOne conv, pooling, norm and projection (the real `ImageTower` forward
  with stem and stages removed).

Text tower: ``text_io`` (token embedding + positions, final LayerNorm, end-of-text pooling and
projection: the real `TextTower` forward with its layers standing in) and one ``text_layer`` per
distinct layer (and input layout), counted as often as it occurs.

What no unit covers (Python dispatch of containers and identities, ...) is the table's measured
fixed overhead.
"""

from __future__ import annotations

import types
from collections import Counter
from dataclasses import dataclass, fields
from typing import Callable, ClassVar, Optional

import torch
from torch import nn

from archsearch.models.image import ImageTower, build_downsample, build_stage_body, build_stem
from archsearch.models.text import TextTower
from archsearch.spec.arch import ArchSpec, ImageHeadSpec, ImageTowerSpec, StageSpec, StemSpec, TextTowerSpec

# Bump when a unit's meaning changes: tables built with another version are not reused.
UNITS_VERSION = 1

TOWERS = ("image", "text")

# --- memory layouts -----------------------------------------------------------------------------

_LAYOUT_NAMES = {"0123": "nchw", "0231": "nhwc", "012": "nlc", "021": "ncl"}
_LAYOUT_ORDERS = {name: order for order, name in _LAYOUT_NAMES.items()}


def layout_of(x: torch.Tensor) -> str:
    """The order of `x`'s dimensions in memory, outermost first ('nchw', 'nhwc' (channels-last),
    'nlc', 'ncl' (a transposed view), or the digits of the order). Size-1 dimensions, whose
    strides mean nothing, count as outermost."""
    order = sorted(range(x.ndim), key=lambda d: (x.shape[d] > 1, -x.stride(d) if x.shape[d] > 1 else d, d))
    digits = "".join(map(str, order))
    return _LAYOUT_NAMES.get(digits, digits)


def randn_like_layout(shape: tuple[int, ...], layout: str) -> torch.Tensor:
    """A random tensor of `shape` laid out in memory as `layout` says."""
    order = [int(c) for c in _LAYOUT_ORDERS.get(layout, layout)]
    if sorted(order) != list(range(len(shape))):
        raise ValueError(f"layout {layout!r} does not fit a {len(shape)}-d shape")
    base = torch.randn([shape[d] for d in order])
    return base.permute(*[order.index(d) for d in range(len(shape))])


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "-"
    return str(value)


class _Wrapper(nn.Module):
    def __init__(self, unit: nn.Module):
        super().__init__()
        self.unit = unit


class StandIn(nn.Module):
    """Stands in for blocks or layers that are timed as units of their own: returns its input,
    or, if the real ones leave it in another layout, a ready tensor in that layout (no compute),
    so that what follows runs on what it sees in the model."""

    def __init__(self, layout: Optional[str]):
        super().__init__()
        self.layout = layout
        self._out: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.layout is None or layout_of(x) == self.layout:
            return x
        if self._out is None or self._out.shape != x.shape or self._out.device != x.device:
            self._out = randn_like_layout(tuple(x.shape), self.layout).to(x.device)
        return self._out


@dataclass(frozen=True)
class Unit:
    """One timed piece of a tower. Subclasses give `build` (the train-time module) and
    `input_shape`; ``layout`` is the memory layout of the input inside the model."""

    TOWER: ClassVar[str] = ""
    KIND: ClassVar[str] = ""

    @property
    def key(self) -> str:
        """Stable across runs and processes: kind and every field, in declaration order."""
        values = ",".join(f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self))
        return f"{self.TOWER}.{self.KIND}({values})"

    def build(self) -> nn.Module:
        raise NotImplementedError

    def build_folded(self) -> nn.Module:
        """The unit as it is timed: built, then folded as the model is. timm's walker folds the
        children of the module it is given, not the module itself (a RepCPE unit would stay
        unfolded), so the unit is folded inside a wrapper."""
        from archsearch.models.reparam import reparameterize
        return reparameterize(_Wrapper(self.build())).unit

    def input_shape(self, batch: int) -> tuple[int, ...]:
        raise NotImplementedError

    def params_read(self, params: int) -> int:
        """Of the unit's `params` (folded), how many one run reads: all, but for lookup tables."""
        return params

    def example(self, batch: int) -> torch.Tensor:
        return randn_like_layout(self.input_shape(batch), self.layout)

    def __str__(self) -> str:
        return self.key


# --- image tower -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stem(Unit):
    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "stem"
    kind: str
    width: int
    resolution: int
    layout: str = "nchw"

    def build(self) -> nn.Module:
        # scale_branch only adds a train-time branch that folds away: not part of the key.
        return build_stem(StemSpec(kind=self.kind, width=self.width))

    def input_shape(self, batch):
        return (batch, 3, self.resolution, self.resolution)


@dataclass(frozen=True)
class Downsample(Unit):
    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "downsample"
    kind: str
    in_width: int
    width: int
    grid: int  # input grid
    layout: str

    def build(self) -> nn.Module:
        # build_downsample reads the stage's downsample kind and width only.
        return build_downsample(StageSpec.model_construct(width=self.width, downsample=self.kind), self.in_width)

    def input_shape(self, batch):
        return (batch, self.in_width, self.grid, self.grid)


@dataclass(frozen=True)
class PosEnc(Unit):
    """RepCPE. FastVitStage (``pos_emb``) and TokenStage (``pos_cpe``) build the same module;
    it is taken from a FastVitStage here (a test checks that the two agree)."""

    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "pos"
    kind: str
    width: int
    grid: int
    layout: str

    def build(self) -> nn.Module:
        host = StageSpec(depth=1, width=self.width, mixer="repmixer", mlp="convffn", mlp_ratio=1.0, pos=self.kind)
        return build_stage_body(host, self.width, (self.grid, self.grid), class_token=False, last=False).pos_emb

    def input_shape(self, batch):
        return (batch, self.width, self.grid, self.grid)


@dataclass(frozen=True)
class TokenIO(Unit):
    """A TokenStage with its RepCPE (timed as `PosEnc`) removed and its blocks (timed as
    `Block`) standing in: flatten/transpose, learned position add, class token, and the reshape
    back to a feature map of a stage that is not last. ``blocks_out``: the layout the blocks
    leave the tokens in (None: as they came, used only to probe the blocks' input)."""

    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "tokens"
    width: int
    grid: int
    learned_pos: bool
    class_token: bool
    keep_tokens: bool
    layout: str
    blocks_out: Optional[str]

    def build(self) -> nn.Module:
        spec = StageSpec(depth=1, width=self.width, mixer="attention", mlp="mlp", mlp_ratio=1.0,
                         pos="learned" if self.learned_pos else "none", norm="layernorm", head_dim=self.width)
        stage = build_stage_body(spec, self.width, (self.grid, self.grid), class_token=self.class_token,
                                 last=self.keep_tokens)
        stage.blocks = StandIn(self.blocks_out)
        return stage

    def input_shape(self, batch):
        return (batch, self.width, self.grid, self.grid)


@dataclass(frozen=True)
class Block(Unit):
    """One block of a stage: RepMixer, FastViT attention, MbConv-LN, or a transformer block on
    tokens (``grid`` x ``grid`` tokens, plus the class token). ``in_width``/``stride`` differ
    from ``width``/1 only for the first block of an MBConv stage that strides it."""

    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "block"
    mixer: str
    mlp: str
    mlp_ratio: float
    width: int
    grid: int  # input grid
    head_dim: Optional[int]
    norm: str
    class_token: bool
    in_width: int
    stride: int
    layout: str

    def _stage(self) -> StageSpec:
        return StageSpec(depth=1, width=self.width, mixer=self.mixer, mlp=self.mlp, mlp_ratio=self.mlp_ratio,
                         downsample="strided_block" if self.stride == 2 else "none", pos="none", norm=self.norm,
                         head_dim=self.head_dim)

    def build(self) -> nn.Module:
        body = build_stage_body(self._stage(), self.in_width, (self.grid, self.grid),
                                class_token=self.class_token, last=False)
        return body[0] if self.mixer == "mbconv" else body.blocks[0]

    def input_shape(self, batch):
        if self._stage().is_token_block:
            return (batch, self.grid * self.grid + self.class_token, self.width)
        return (batch, self.in_width, self.grid, self.grid)


@dataclass(frozen=True)
class Head(Unit):
    """What follows the last stage: the real `ImageTower` forward with stem and stages removed,
    on the last stage's output (feature map, or tokens when the last stage keeps them)."""

    TOWER: ClassVar[str] = "image"
    KIND: ClassVar[str] = "head"
    in_width: int
    grid: int
    tokens: bool
    class_token: bool
    conv_expand: float
    pool: str
    norm: str
    proj_bias: bool
    embed_dim: int
    layout: str

    def build(self) -> nn.Module:
        if self.tokens:
            last = StageSpec(depth=1, width=self.in_width, mixer="attention", mlp="mlp", mlp_ratio=1.0,
                             norm="layernorm", head_dim=self.in_width)
        else:
            last = StageSpec(depth=1, width=self.in_width, mixer="repmixer", mlp="convffn", mlp_ratio=1.0)
        spec = ImageTowerSpec(stem=StemSpec(kind="mobileone", width=self.in_width), stages=(last,),
                              head=ImageHeadSpec(pool=self.pool, conv_expand=self.conv_expand, norm=self.norm,
                                                 proj_bias=self.proj_bias))
        tower = ImageTower(spec, resolution=4 * self.grid, embed_dim=self.embed_dim)
        tower.stem, tower.stages = nn.Identity(), nn.Identity()
        return tower

    def input_shape(self, batch):
        if self.tokens:
            return (batch, self.grid * self.grid + self.class_token, self.in_width)
        return (batch, self.in_width, self.grid, self.grid)


# --- text tower --------------------------------------------------------------------------------

class _TextLayersWithMask(nn.Module):
    """`TextLayers` called as `TextTower` calls it, with the tower's attention mask."""

    def __init__(self, tower: TextTower):
        super().__init__()
        self.layers = tower.transformer
        self.register_buffer("attn_mask", tower.attn_mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x, self.attn_mask)


@dataclass(frozen=True)
class TextIO(Unit):
    """Token embedding + positions, final LayerNorm, EOT pooling and projection: the real
    `TextTower` forward with its layers standing in. ``layers_out``: the layout the layers leave
    the sequence in (None: as they came, used only to probe the first layer's input)."""

    TOWER: ClassVar[str] = "text"
    KIND: ClassVar[str] = "text_io"
    vocab_size: int
    context: int
    width: int
    embed_dim: int
    causal: bool
    layers_out: Optional[str]

    def _spec(self) -> TextTowerSpec:
        return TextTowerSpec(vocab_size=self.vocab_size, context_length=self.context, width=self.width, heads=1,
                             layers=("attention",), causal_mask=self.causal)

    def params_read(self, params: int) -> int:
        return params - (self.vocab_size - min(self.vocab_size, self.context)) * self.width  # <= context rows

    def build(self) -> nn.Module:
        tower = TextTower(self._spec(), self.embed_dim)
        tower.transformer.resblocks = nn.ModuleList([StandIn(self.layers_out)])
        return tower

    def example(self, batch: int) -> torch.Tensor:
        from archsearch.latency.cost import example_tokens
        return example_tokens(types.SimpleNamespace(text=self._spec()), batch)


@dataclass(frozen=True)
class TextLayer(Unit):
    """One text layer, as `TextLayers` runs it (on (B, L, C) tokens, attention with the tower's
    mask). Fields a mixer ignores are None/False, so that they do not split keys."""

    TOWER: ClassVar[str] = "text"
    KIND: ClassVar[str] = "text_layer"
    mixer: str
    width: int
    heads: Optional[int]
    mlp_ratio: float
    context: int
    kernel: Optional[int]
    causal: bool
    layout: str

    def build(self) -> nn.Module:
        extra = {"conv_kernel": self.kernel} if self.kernel is not None else {}
        spec = TextTowerSpec(vocab_size=1, context_length=self.context, width=self.width, heads=self.heads or 1,
                             mlp_ratio=self.mlp_ratio, layers=(self.mixer,), causal_mask=self.causal, **extra)
        return _TextLayersWithMask(TextTower(spec, embed_dim=1))

    def input_shape(self, batch):
        return (batch, self.context, self.width)


UNIT_TYPES: dict[str, type[Unit]] = {cls.KIND: cls for cls in (Stem, Downsample, PosEnc, TokenIO, Block, Head,
                                                                 TextIO, TextLayer)}


# --- probing ------------------------------------------------------------------------------------

def probe(unit: Unit, batch: int = 1, module: Optional[nn.Module] = None) -> dict:
    """Run the folded unit once on the CPU: its output grid and layout, (for units with a
    stand-in) the layout of what reaches the stand-in, and its folded parameter count.
    JSON-able, stored in tables. `module`: the unit already built and folded."""
    module = unit.build_folded() if module is None else module
    inner: list[str] = []
    for m in module.modules():
        if isinstance(m, StandIn):
            m.register_forward_pre_hook(lambda _m, args: inner.append(layout_of(args[0])) and None)
    with torch.inference_mode():
        out = module(unit.example(batch))
    return {"grid": int(out.shape[-1]) if out.ndim == 4 else None, "layout": layout_of(out),
            "inner": inner[0] if inner else None, "params": sum(p.numel() for p in module.parameters())}


Probe = Callable[[Unit], dict]


class ProbeCache:
    """`probe` at one batch size, remembered per unit key (optionally in a table's dict)."""

    def __init__(self, batch: int = 1, store: Optional[dict] = None):
        self.batch = batch
        self.store = {} if store is None else store

    def __call__(self, unit: Unit) -> dict:
        if unit.key not in self.store:
            self.store[unit.key] = probe(unit, self.batch)
        return self.store[unit.key]


_DEFAULT_PROBES: dict[int, ProbeCache] = {}


def _default_probe(batch: int) -> ProbeCache:
    return _DEFAULT_PROBES.setdefault(batch, ProbeCache(batch))


# --- decomposition ----------------------------------------------------------------------------

Placement = tuple[Unit, int]  # a unit and how many times the tower runs it


def _merge(placements: list[Placement]) -> list[Placement]:
    counts: Counter[Unit] = Counter()
    for unit, count in placements:
        counts[unit] += count
    return list(counts.items())


def _repeat(make: Callable[[str], Unit], count: int, layout: str, probe_: Probe,
            out: list[Placement]) -> tuple[str, Optional[int]]:
    """Place `count` consecutive copies of a block, following its layout from one to the next;
    copies that see the same layout share one placement. Returns the final layout and grid."""
    grid = None
    while count:
        unit = make(layout)
        result = probe_(unit)
        grid = result["grid"]
        if result["layout"] == layout:
            out.append((unit, count))
            break
        out.append((unit, 1))
        layout, count = result["layout"], count - 1
    return layout, grid


def image_units(spec: ArchSpec, probe_: Probe) -> list[Placement]:
    image = spec.image
    stem = Stem(image.stem.kind, image.stem.width, spec.resolution)
    out: list[Placement] = [(stem, 1)]
    result = probe_(stem)
    grid, layout, in_width = result["grid"], result["layout"], image.stem.width
    for i, stage in enumerate(image.stages):
        last = i == len(image.stages) - 1
        class_token = last and image.head.pool == "token"
        if stage.downsample in ("patch_embed", "patch_embed_se", "conv_ln"):
            down = Downsample(stage.downsample, in_width, stage.width, grid, layout)
            out.append((down, 1))
            result = probe_(down)
            grid, layout = result["grid"], result["layout"]
        if stage.pos == "repcpe":
            pos = PosEnc("repcpe", stage.width, grid, layout)
            out.append((pos, 1))
            layout = probe_(pos)["layout"]

        def block(block_in: int, stride: int, block_grid: int, block_layout: str) -> Block:
            return Block(stage.mixer, stage.mlp, float(stage.mlp_ratio), stage.width, block_grid, stage.head_dim,
                         stage.norm, class_token, block_in, stride, block_layout)

        if stage.is_token_block:
            tokens = lambda blocks_out: TokenIO(stage.width, grid, stage.pos == "learned", class_token, last,  # noqa
                                                layout, blocks_out)
            token_layout = probe_(tokens(None))["inner"]
            blocks_out, _ = _repeat(lambda lay: block(stage.width, 1, grid, lay), stage.depth, token_layout,
                                    probe_, out)
            io = tokens(blocks_out)
            out.append((io, 1))
            layout = probe_(io)["layout"]
        else:
            depth = stage.depth
            if stage.downsample == "strided_block":
                first = block(in_width, 2, grid, layout)
                out.append((first, 1))
                result = probe_(first)
                grid, layout, depth = result["grid"], result["layout"], depth - 1
            if depth:
                layout, _ = _repeat(lambda lay: block(stage.width, 1, grid, lay), depth, layout, probe_, out)
        in_width = stage.width
    head, last = image.head, image.stages[-1]
    out.append((Head(last.width, grid, last.is_token_block, last.is_token_block and head.pool == "token",
                     float(head.conv_expand), head.pool, head.norm, head.proj_bias, spec.embed_dim, layout), 1))
    return _merge(out)


def text_units(spec: ArchSpec, probe_: Probe) -> list[Placement]:
    text = spec.text
    io = lambda layers_out: TextIO(text.vocab_size, text.context_length, text.width, spec.embed_dim,  # noqa
                                   text.causal_mask, layers_out)
    layout = probe_(io(None))["inner"]
    out: list[Placement] = []
    for mixer in text.layers:
        attention = mixer == "attention"
        layer = TextLayer(mixer, text.width, text.heads if attention else None, float(text.mlp_ratio),
                          text.context_length, None if attention else text.conv_kernel,
                          text.causal_mask if attention else False, layout)
        out.append((layer, 1))
        layout = probe_(layer)["layout"]
    out.insert(0, (io(layout), 1))
    return _merge(out)


def decompose(spec: ArchSpec, probe: Optional[Probe] = None, batch: int = 1) -> dict[str, list[Placement]]:
    """Per tower, the distinct units of `spec` and how many times each runs. `probe` gives each
    unit's output grid and layout (default: run it once at `batch`, remembered in-process)."""
    probe_ = probe or _default_probe(batch)
    return {"image": image_units(spec, probe_), "text": text_units(spec, probe_)}


def distinct_units(specs, probe: Optional[Probe] = None, batch: int = 1) -> list[Unit]:
    """Every distinct unit of the given specs, in first-seen order."""
    seen: dict[str, Unit] = {}
    for spec in specs:
        for placements in decompose(spec, probe, batch).values():
            for unit, _ in placements:
                seen.setdefault(unit.key, unit)
    return list(seen.values())


__all__ = ["Block", "Downsample", "Head", "Placement", "PosEnc", "ProbeCache", "Stem", "StandIn", "TextIO",
           "TextLayer", "TokenIO", "UNITS_VERSION", "Unit", "decompose", "distinct_units", "layout_of", "probe",
           "randn_like_layout"]
