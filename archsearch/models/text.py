"""OpenCLIP-style text tower whose layers are open_clip transformer blocks or MobileCLIP
Text-RepMixer blocks, in the order a `TextTowerSpec` gives.

Parameter names are open_clip's `TextTransformer`'s (``token_embedding``, ``positional_embedding``,
``transformer.resblocks.{i}``, ``ln_final``, ``text_projection``) and its attention blocks are
open_clip's own, so a pure-transformer tower loads an open_clip text state dict unchanged and
computes the same function.
"""

from __future__ import annotations

import torch
from open_clip.transformer import LayerNorm, ResidualAttentionBlock
from torch import nn

from archsearch.models.text_repmixer import TextRepMixerBlock
from archsearch.spec.arch import ArchSpec, TextTowerSpec


def build_text_layer(spec: TextTowerSpec, mixer: str) -> nn.Module:
    if mixer == "attention":
        return ResidualAttentionBlock(spec.width, spec.heads, spec.mlp_ratio, batch_first=True)
    return TextRepMixerBlock(spec.width, spec.conv_kernel, spec.mlp_ratio)


class TextLayers(nn.Module):
    """The layer stack on ``(B, L, C)`` tokens, which every block takes and returns. The
    attention mask reaches the attention blocks only: a centred convolution cannot be causal."""

    def __init__(self, spec: TextTowerSpec):
        super().__init__()
        self.resblocks = nn.ModuleList(build_text_layer(spec, mixer) for mixer in spec.layers)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x) if isinstance(block, TextRepMixerBlock) else block(x, attn_mask=attn_mask)
        return x


class TextTower(nn.Module):
    """tokens -> embeddings + positions -> layers -> ln_final -> end-of-text token -> projection."""

    def __init__(self, spec: TextTowerSpec, embed_dim: int):
        super().__init__()
        self.spec = spec
        self.token_embedding = nn.Embedding(spec.vocab_size, spec.width)
        self.positional_embedding = nn.Parameter(torch.empty(spec.context_length, spec.width))
        self.transformer = TextLayers(spec)
        self.ln_final = LayerNorm(spec.width)
        self.text_projection = nn.Parameter(torch.empty(spec.width, embed_dim))
        # open_clip's additive causal mask: -inf above the diagonal.
        causal = torch.full((spec.context_length, spec.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", causal if spec.causal_mask else None, persistent=False)
        self._init_parameters()

    def _init_parameters(self) -> None:
        """open_clip's `TextTransformer.init_parameters`, depth counted over all layers."""
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

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` token ids (L <= context_length) -> ``[B, embed_dim]`` features, not normalised."""
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        attn_mask = self.attn_mask[:length, :length] if self.attn_mask is not None else None
        x = self.ln_final(self.transformer(x, attn_mask))
        # End-of-text pooling: the EOT token has the largest id (open_clip's pool_type='argmax').
        pooled = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return pooled @ self.text_projection


def build_text_tower(spec: ArchSpec) -> TextTower:
    return TextTower(spec.text, spec.embed_dim)
