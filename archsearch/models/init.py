"""Re-initialise the LayerScale gains of a built model (a proxy's choice, never a full-size one's).

FastViT/MCi blocks and MobileCLIP's Text-RepMixer start every residual branch at a gain of 1e-5,
which suits 30k-step training. AdamW moves a gain by about lr per step, so in a proxy of a few
hundred steps those branches barely open, and deep stacks rank by how fast they start rather than
by what they can learn. A proxy may therefore start the gains higher; the papers' value stays the
default of every build, and exports and latency never see this.
"""

from __future__ import annotations

import torch
from open_clip.transformer import LayerScale as OpenClipLayerScale
from timm.layers import LayerScale
from timm.models.fastvit import LayerScale2d
from torch import nn

from archsearch.models.text_repmixer import TextRepMixer, TextRepMixerBlock


@torch.no_grad()
def set_layer_scale(model: nn.Module, value: float) -> int:
    """Fill every LayerScale gain of `model` with `value`; returns how many gains were set."""
    count = 0
    for module in model.modules():
        if isinstance(module, (LayerScale, LayerScale2d, OpenClipLayerScale)):
            module.gamma.fill_(value)
            count += 1
        elif isinstance(module, (TextRepMixer, TextRepMixerBlock)):
            module.layer_scale.fill_(value)
            count += 1
    return count
