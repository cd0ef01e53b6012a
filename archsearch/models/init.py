"""Start every residual branch of a built model at one LayerScale gain (a proxy's choice only).

FastViT/MCi blocks and MobileCLIP's Text-RepMixer start their residual branches at a gain of
1e-5, which suits 30k-step training; ViT, ViTamin and open_clip text blocks have no gain at all.
AdamW moves a gain by about lr per step, so in a proxy of a few hundred steps the MCi branches
barely open, while deep gain-free attention stacks take full-size updates from the first step and
may never leave chance: deep stacks then rank by how they start rather than by what they can
learn. A proxy may therefore give every attention, MLP and RepMixer branch one starting gain,
adding timm's / open_clip's LayerScale where a transformer block has none. The papers' blocks stay
the default of every build; exports and latency never see this.
"""

from __future__ import annotations

import torch
from open_clip.transformer import LayerScale as OpenClipLayerScale
from open_clip.transformer import ResidualAttentionBlock
from timm.layers import LayerScale
from timm.models.fastvit import LayerScale2d
from timm.models.vision_transformer import Block as VitBlock
from torch import nn

from archsearch.models.text_repmixer import TextRepMixer, TextRepMixerBlock

# transformer block class -> (its two gain slots, its first norm (for the width), the LayerScale to add)
_GAIN_SLOTS = {VitBlock: (("ls1", "ls2"), "norm1", LayerScale),
               ResidualAttentionBlock: (("ls_1", "ls_2"), "ln_1", OpenClipLayerScale)}


@torch.no_grad()
def set_layer_scale(model: nn.Module, value: float) -> int:
    """Give every residual branch of `model` the gain `value`; returns how many gains it set."""
    for block in [m for m in model.modules() if type(m) in _GAIN_SLOTS]:
        slots, norm, layer_scale = _GAIN_SLOTS[type(block)]
        width = getattr(block, norm).normalized_shape[0]
        for slot in slots:
            if isinstance(getattr(block, slot), nn.Identity):
                setattr(block, slot, layer_scale(width, value).to(getattr(block, norm).weight.device))
    count = 0
    for module in model.modules():
        if isinstance(module, (LayerScale, LayerScale2d, OpenClipLayerScale)):
            module.gamma.fill_(value)
            count += 1
        elif isinstance(module, (TextRepMixer, TextRepMixerBlock)):
            module.layer_scale.fill_(value)
            count += 1
    return count
