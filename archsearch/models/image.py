"""Image towers composed from timm's own blocks, stage by stage, as an `ImageTowerSpec` says.

FastViT/MCi (MobileOne stem, RepMixer and attention stages, RepCPE, 7x7 reparameterizable patch
embedding), ViTamin (conv stem, MbConv-LN stages, LayerNorm strided conv, GeGLU transformer) and
MobileCLIP-B's ViT (patchifying ConvStem) are all spellings of the same stem -> stages -> head
structure, so any mix a search space allows is built from the same parts. Stages exchange NCHW
feature maps; a transformer stage flattens to tokens inside and keeps them only when it is last.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm, LayerNorm2d, Mlp, trunc_normal_
from timm.models import fastvit
from timm.models.fastvit import (
    FastVitStage,
    MobileOneBlock,
    PatchEmbed,
    RepConditionalPosEnc,
    convolutional_stem,
)
from timm.models.vision_transformer import Block
from timm.models.vision_transformer_hybrid import ConvStem
from timm.models.vitamin import GeGluMlp, MbConvLNBlock, Stem as VitaminStem, StridedConv
from torch import nn

from archsearch.spec.arch import ArchSpec, ImageTowerSpec, StageSpec, StemSpec

# Fixed by the reference designs rather than searched: FastViT layer scale and RepMixer kernel,
# the 7x7 RepCPE, LayerNorm epsilons of timm's ViT (1e-6) and MCi3/4 attention (1e-5).
LAYER_SCALE_INIT = 1e-5
REPMIXER_KERNEL = 3
REPCPE_KERNEL = (7, 7)
TOKEN_NORM = partial(LayerNorm, eps=1e-6)
CONV_ATTENTION_NORMS = {"batchnorm": nn.BatchNorm2d, "layernorm": partial(LayerNorm2d, eps=1e-5)}


def build_stem(spec: StemSpec) -> nn.Module:
    if spec.kind == "mobileone":
        return convolutional_stem(3, spec.width, nn.GELU, use_scale_branch=spec.scale_branch)
    if spec.kind == "vitamin":
        return VitaminStem(3, spec.width)
    # MobileCLIP-B: 4x4/s4 -> 2x2/s2 -> 2x2/s2 patchifying stem (BatchNorm+GELU between convs).
    quarter = spec.width // 4
    return ConvStem(channels=(quarter, quarter, spec.width), stride=(4, 2, 2), kernel_size=(4, 2, 2),
                    padding=0, act_layer=nn.GELU)


def build_downsample(spec: StageSpec, in_width: int) -> nn.Module:
    if spec.downsample in ("patch_embed", "patch_embed_se"):
        return PatchEmbed(patch_size=7, stride=2, in_chs=in_width, embed_dim=spec.width,
                          use_se=spec.downsample == "patch_embed_se", act_layer=nn.GELU, lkc_use_act=True)
    if spec.downsample == "conv_ln":
        return StridedConv(stride=2, in_chans=in_width, embed_dim=spec.width)
    return nn.Identity()  # 'none', or 'strided_block' (the first MBConv block strides)


class TokenStage(nn.Module):
    """Pre-norm transformer blocks (timm's ViT `Block`, GeGLU MLP for ViTamin) over flattened
    feature maps, with an optional learned position embedding and class token."""

    def __init__(self, spec: StageSpec, grid: tuple[int, int], class_token: bool, keep_tokens: bool):
        super().__init__()
        self.grid = grid
        self.keep_tokens = keep_tokens
        self.pos_cpe = (RepConditionalPosEnc(spec.width, spatial_shape=REPCPE_KERNEL)
                        if spec.pos == "repcpe" else nn.Identity())
        self.pos_embed = (nn.Parameter(torch.zeros(1, grid[0] * grid[1], spec.width))
                          if spec.pos == "learned" else None)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, spec.width)) if class_token else None
        mlp_layer = GeGluMlp if spec.mlp == "geglu" else Mlp
        self.blocks = nn.Sequential(*[
            Block(spec.width, spec.heads, mlp_ratio=spec.mlp_ratio, qkv_bias=True, norm_layer=TOKEN_NORM,
                  mlp_layer=mlp_layer)
            for _ in range(spec.depth)
        ])
        self._init_weights()

    def _init_weights(self) -> None:
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pos_cpe(x)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = self.blocks(x)
        if self.keep_tokens:
            return x
        return x.transpose(1, 2).reshape(b, c, h, w)


def build_stage_body(spec: StageSpec, in_width: int, grid: tuple[int, int], class_token: bool, last: bool) -> nn.Module:
    if spec.mixer == "mbconv":
        stride = 2 if spec.downsample == "strided_block" else 1
        first_in = in_width if spec.downsample == "strided_block" else spec.width
        return nn.Sequential(*[
            MbConvLNBlock(first_in if i == 0 else spec.width, spec.width, stride=stride if i == 0 else 1,
                          expand_ratio=spec.mlp_ratio)
            for i in range(spec.depth)
        ])
    if spec.is_token_block:
        return TokenStage(spec, grid, class_token=class_token, keep_tokens=last)
    # RepMixer or conv-style attention: timm's FastVitStage with its downsampling done outside.
    with _fastvit_attention_head_dim(spec.head_dim or 32):
        return FastVitStage(
        dim=spec.width, dim_out=spec.width, depth=spec.depth, token_mixer_type=spec.mixer, downsample=False,
        pos_emb_layer=partial(RepConditionalPosEnc, spatial_shape=REPCPE_KERNEL) if spec.pos == "repcpe" else None,
        kernel_size=REPMIXER_KERNEL, mlp_ratio=spec.mlp_ratio, act_layer=nn.GELU, drop_path_rate=[0.0] * spec.depth,
            norm_layer=CONV_ATTENTION_NORMS[spec.norm], layer_scale_init_value=LAYER_SCALE_INIT, lkc_use_act=True,
        )


@contextmanager
def _fastvit_attention_head_dim(head_dim: int):
    """timm's FastViT AttentionBlock builds `Attention(dim)` with its default head width of 32 (and
    asserts that 32 divides the width); give it the spec's head width while the stage is built."""
    original = fastvit.Attention
    fastvit.Attention = partial(original, head_dim=head_dim)
    try:
        yield
    finally:
        fastvit.Attention = original


class ImageTower(nn.Module):
    """stem -> stages -> (final conv) -> pool -> (norm) -> projection to the joint embedding."""

    def __init__(self, spec: ImageTowerSpec, resolution: int, embed_dim: int):
        super().__init__()
        self.spec = spec
        self.stem = build_stem(spec.stem)
        stages, in_width = [], spec.stem.width
        for i, (stage, stride) in enumerate(zip(spec.stages, spec.stage_strides())):
            last = i == len(spec.stages) - 1
            grid = (resolution // stride, resolution // stride)
            stages.append(nn.Sequential(
                build_downsample(stage, in_width),
                build_stage_body(stage, in_width, grid, class_token=last and spec.head.pool == "token", last=last),
            ))
            in_width = stage.width
        self.stages = nn.Sequential(*stages)
        head = spec.head
        self.final_conv = (
            MobileOneBlock(in_width, spec.num_features, kernel_size=3, group_size=1, use_se=True,
                           act_layer=nn.GELU, num_conv_branches=1)
            if head.conv_expand else nn.Identity()
        )
        norm = TOKEN_NORM(spec.num_features) if head.norm == "layernorm" else nn.Identity()
        # timm's convention: LayerNorm over all tokens before class-token pooling, after average pooling.
        self.norm = norm if head.pool == "token" else nn.Identity()
        self.fc_norm = norm if head.pool == "avg" else nn.Identity()
        self.proj = nn.Linear(spec.num_features, embed_dim, bias=head.proj_bias)
        self.apply(_init_linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised features before the projection (timm's `num_classes=0` output)."""
        x = self.final_conv(self.stages(self.stem(x)))
        if x.ndim == 4:  # NCHW; the same op as timm's average pooling, so fvcore counts agree
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        else:
            x = self.norm(x)
            x = x[:, 0] if self.spec.head.pool == "token" else x.mean(dim=1)
        return self.fc_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.forward_features(x))


def _init_linear(m: nn.Module) -> None:
    """timm's init for both families (FastVit._init_weights, ViT init_weights_vit_timm)."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_image_tower(spec: ArchSpec) -> ImageTower:
    return ImageTower(spec.image, spec.resolution, spec.embed_dim)
