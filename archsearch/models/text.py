"""The text tower: open_clip's `TextTransformer`, whose layers are open_clip transformer blocks or
MobileCLIP Text-RepMixer blocks, in the order a `TextTowerSpec` gives.

It is open_clip's class, so embedding, masks, end-of-text pooling, projection and parameter names
(``token_embedding``, ``positional_embedding``, ``transformer.resblocks.{i}``, ``ln_final``,
``text_projection``) are open_clip's own: a pure-transformer tower loads an open_clip text state dict
unchanged and computes the same function. Only the block list is ours.
"""

from __future__ import annotations

import torch
from open_clip.transformer import ResidualAttentionBlock, TextTransformer, Transformer
from torch import nn

from archsearch.models.text_repmixer import TextRepMixerBlock
from archsearch.spec.arch import ArchSpec, TextTowerSpec


def build_text_layer(spec: TextTowerSpec, mixer: str) -> nn.Module:
    if mixer == "attention":
        return ResidualAttentionBlock(spec.width, spec.heads, spec.mlp_ratio, batch_first=True)
    return TextRepMixerBlock(spec.width, spec.conv_kernel, spec.mlp_ratio)


class TextLayers(Transformer):
    """open_clip's block stack holding any mix of blocks: its input dtype is read from the stack's
    first parameter, since open_clip reads it from the first block's MLP, which a Text-RepMixer
    block names otherwise (a stack without parameters, as the latency table's stand-in, casts to
    the default dtype)."""

    def get_cast_dtype(self) -> torch.dtype:
        return next((p.dtype for p in self.resblocks.parameters()), torch.get_default_dtype())


class TextTower(TextTransformer):
    """open_clip's text transformer with the spec's block list; tokens must fill the context."""

    def __init__(self, spec: TextTowerSpec, embed_dim: int):
        # open_clip builds and initialises an all-attention stack; its draws stay out of the global
        # random stream, which then sees, in order, the token embedding, each block of the spec and
        # our init: the same draws as a tower built block by block, so a seed gives the same weights.
        with torch.random.fork_rng(devices=[]):
            super().__init__(context_length=spec.context_length, vocab_size=spec.vocab_size, width=spec.width,
                             heads=spec.heads, layers=len(spec.layers), mlp_ratio=spec.mlp_ratio,
                             output_dim=embed_dim, no_causal_mask=not spec.causal_mask, pool_type="argmax")
            self.transformer = TextLayers(spec.width, len(spec.layers), spec.heads, spec.mlp_ratio)
        self.spec = spec
        self.token_embedding.reset_parameters()
        self.transformer.resblocks = nn.ModuleList(build_text_layer(spec, mixer) for mixer in spec.layers)
        self._init_parameters()

    def _init_parameters(self) -> None:
        """open_clip's `TextTransformer.init_parameters` for the attention blocks (depth counted over
        all layers); Text-RepMixer blocks keep their own init."""
        width, depth = self.spec.width, len(self.spec.layers)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        proj_std = width ** -0.5 * (2 * depth) ** -0.5
        for block in self.transformer.resblocks:
            if isinstance(block, ResidualAttentionBlock):
                nn.init.normal_(block.attn.in_proj_weight, std=width ** -0.5)
                nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
                nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
                nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)


def build_text_tower(spec: ArchSpec) -> TextTower:
    return TextTower(spec.text, spec.embed_dim)
