"""Named ArchSpecs that reproduce the published MobileCLIP, MobileCLIP2 and ViTamin variants.

Each factory mirrors the reference it names (timm image tower, open_clip text config), so that
the parity tests can compare parameter counts and MACs against those references exactly.
"""

from __future__ import annotations

import re
from typing import Callable

from archsearch.errors import UserError
from archsearch.spec.arch import ArchSpec, ImageHeadSpec, ImageTowerSpec, StageSpec, StemSpec, TextTowerSpec

# name -> (factory, timm image reference, open_clip config name or None)
_PRESETS: dict[str, tuple[Callable[[], ArchSpec], str, str | None]] = {}
_ALIASES: dict[str, str] = {}
_PAPER_NAMES: dict[str, str] = {}


def register_preset(name: str, timm_reference: str, open_clip_name: str | None, paper_name: str):
    def wrap(fn: Callable[[], ArchSpec]) -> Callable[[], ArchSpec]:
        _PRESETS[name] = (fn, timm_reference, open_clip_name)
        _PAPER_NAMES[name] = paper_name
        _ALIASES[_normalise(paper_name)] = name
        _ALIASES[_normalise(name)] = name
        return fn
    return wrap


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def preset_names() -> list[str]:
    return list(_PRESETS)


def resolve_preset_name(name: str) -> str:
    """Canonical preset name for `name` or one of its paper spellings (e.g. 'MobileCLIP-S0')."""
    try:
        return _ALIASES[_normalise(name)]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; allowed: {', '.join(_PRESETS)}") from None


def paper_name(name: str) -> str:
    """The name the papers use for a preset (``MobileCLIP-S0`` for ``mobileclip_s0``), for plots."""
    return _PAPER_NAMES[resolve_preset_name(name)]


def get_preset(name: str) -> ArchSpec:
    return _PRESETS[resolve_preset_name(name)][0]()


def timm_reference(name: str) -> str:
    """The timm model whose trunk (num_classes=0) equals this preset's image tower."""
    return _PRESETS[resolve_preset_name(name)][1]


def open_clip_reference(name: str) -> str | None:
    """The open_clip config of the same model, where open_clip ships one."""
    return _PRESETS[resolve_preset_name(name)][2]


def preset_of(spec: ArchSpec) -> str | None:
    """The preset name whose spec equals `spec`, if any."""
    for name, (factory, _, _) in _PRESETS.items():
        if factory() == spec:
            return name
    return None


# --- MobileCLIP / MobileCLIP2: FastViT MCi image towers -------------------------------------------

def _mci_tower(depths, widths, mlp_ratio, attn_stages, se_downsample, attn_norm, stem_scale_branch) -> ImageTowerSpec:
    """MCi layout: MobileOne stem at the first width, RepMixer stages, then attention stages with
    RepCPE; every stage but the first downsamples with a 7x7 reparameterizable patch embedding."""
    stages = []
    n = len(depths)
    for i, (depth, width) in enumerate(zip(depths, widths)):
        attention = i >= n - attn_stages
        downsample = "none" if i == 0 else ("patch_embed_se" if se_downsample and i >= 2 else "patch_embed")
        stages.append(StageSpec(
            depth=depth, width=width, mixer="attention" if attention else "repmixer", mlp="convffn",
            mlp_ratio=mlp_ratio, downsample=downsample, pos="repcpe" if attention else "none",
            norm=attn_norm if attention else "batchnorm", head_dim=32 if attention else None,
        ))
    return ImageTowerSpec(
        stem=StemSpec(kind="mobileone", width=widths[0], scale_branch=stem_scale_branch),
        stages=tuple(stages),
        head=ImageHeadSpec(pool="avg", conv_expand=2.0, norm="none", proj_bias=True),
    )


def _mci_v1(depths, widths) -> ImageTowerSpec:
    return _mci_tower(depths, widths, 3.0, attn_stages=1, se_downsample=True, attn_norm="batchnorm",
                      stem_scale_branch=True)


def _mci_v2(depths, widths) -> ImageTowerSpec:
    return _mci_tower(depths, widths, 4.0, attn_stages=2, se_downsample=False, attn_norm="layernorm",
                      stem_scale_branch=False)


def _transformer_text(width: int, heads: int, layers: int, causal: bool) -> TextTowerSpec:
    return TextTowerSpec(width=width, heads=heads, layers=("attention",) * layers, causal_mask=causal)


@register_preset("mobileclip_s0", "fastvit_mci0", None, "MobileCLIP-S0")
def mobileclip_s0() -> ArchSpec:
    # Text tower "mct": Text-RepMixer, 4 transformer layers, Text-RepMixer (ml-mobileclip).
    text = TextTowerSpec(width=512, heads=8, layers=("repmixer1d",) + ("attention",) * 4 + ("repmixer1d",),
                         causal_mask=False, conv_kernel=11)
    return ArchSpec(resolution=256, embed_dim=512, image=_mci_v1((2, 6, 10, 2), (64, 128, 256, 512)), text=text)


@register_preset("mobileclip_s1", "fastvit_mci1", "MobileCLIP-S1", "MobileCLIP-S1")
def mobileclip_s1() -> ArchSpec:
    return ArchSpec(resolution=256, embed_dim=512, image=_mci_v1((4, 12, 20, 4), (64, 128, 256, 512)),
                    text=_transformer_text(512, 8, 12, causal=False))


@register_preset("mobileclip_s2", "fastvit_mci2", "MobileCLIP-S2", "MobileCLIP-S2")
def mobileclip_s2() -> ArchSpec:
    return ArchSpec(resolution=256, embed_dim=512, image=_mci_v1((4, 12, 24, 4), (80, 160, 320, 640)),
                    text=_transformer_text(512, 8, 12, causal=False))


@register_preset("mobileclip_b", "vit_base_mci_224", "MobileCLIP-B", "MobileCLIP-B")
def mobileclip_b() -> ArchSpec:
    # ViT-B/16 behind MobileCLIP's patchifying conv stem, class-token pooling.
    image = ImageTowerSpec(
        stem=StemSpec(kind="convstem", width=768),
        stages=(StageSpec(depth=12, width=768, mixer="attention", mlp="mlp", mlp_ratio=4.0, pos="learned",
                          norm="layernorm", head_dim=64),),
        head=ImageHeadSpec(pool="token", conv_expand=0.0, norm="layernorm", proj_bias=True),
    )
    return ArchSpec(resolution=224, embed_dim=512, image=image, text=_transformer_text(512, 8, 12, causal=True))


@register_preset("mobileclip2_s3", "fastvit_mci3", "MobileCLIP2-S3", "MobileCLIP2-S3")
def mobileclip2_s3() -> ArchSpec:
    return ArchSpec(resolution=256, embed_dim=768, image=_mci_v2((2, 12, 24, 4, 2), (96, 192, 384, 768, 1536)),
                    text=_transformer_text(768, 12, 12, causal=False))


@register_preset("mobileclip2_s4", "fastvit_mci4", "MobileCLIP2-S4", "MobileCLIP2-S4")
def mobileclip2_s4() -> ArchSpec:
    return ArchSpec(resolution=256, embed_dim=768, image=_mci_v2((2, 12, 24, 4, 4), (128, 256, 512, 1024, 2048)),
                    text=_transformer_text(768, 12, 12, causal=False))


# --- ViTamin: conv stem, two MbConv-LN stages, GeGLU transformer stage ----------------------------

def _vitamin_tower(c: int, width: int, depth: int, head_dim: int, pos: str) -> ImageTowerSpec:
    return ImageTowerSpec(
        stem=StemSpec(kind="vitamin", width=c),
        stages=(
            StageSpec(depth=2, width=c, mixer="mbconv", mlp="none", mlp_ratio=4.0, downsample="strided_block",
                      norm="layernorm"),
            StageSpec(depth=4, width=2 * c, mixer="mbconv", mlp="none", mlp_ratio=4.0, downsample="strided_block",
                      norm="layernorm"),
            StageSpec(depth=depth, width=width, mixer="attention", mlp="geglu", mlp_ratio=2.0, downsample="conv_ln",
                      pos=pos, norm="layernorm", head_dim=head_dim),
        ),
        head=ImageHeadSpec(pool="avg", conv_expand=0.0, norm="layernorm", proj_bias=False),
    )


@register_preset("vitamin_s", "vitamin_small_224", "ViTamin-S", "ViTamin-S")
def vitamin_s() -> ArchSpec:
    return ArchSpec(resolution=224, embed_dim=384, image=_vitamin_tower(64, 384, 14, 64, "learned"),
                    text=_transformer_text(384, 6, 12, causal=True))


@register_preset("vitamin_b", "vitamin_base_224", "ViTamin-B", "ViTamin-B")
def vitamin_b() -> ArchSpec:
    return ArchSpec(resolution=224, embed_dim=512, image=_vitamin_tower(128, 768, 14, 64, "learned"),
                    text=_transformer_text(512, 8, 12, causal=True))


@register_preset("vitamin_l", "vitamin_large_224", "ViTamin-L", "ViTamin-L")
def vitamin_l() -> ArchSpec:
    return ArchSpec(resolution=224, embed_dim=768, image=_vitamin_tower(160, 1024, 31, 64, "learned"),
                    text=_transformer_text(768, 12, 12, causal=True))


@register_preset("vitamin_xl", "vitamin_xlarge_256", "ViTamin-XL-256", "ViTamin-XL")
def vitamin_xl() -> ArchSpec:
    # XL drops the position embedding; 16 heads of width 72.
    return ArchSpec(resolution=256, embed_dim=1152, image=_vitamin_tower(192, 1152, 32, 72, "none"),
                    text=_transformer_text(1152, 16, 27, causal=True))
