"""Train-time -> inference-time models: fold every multi-branch block into single convolutions."""

from __future__ import annotations

import copy

from timm.utils.model import reparameterize_model
from torch import nn


def reparameterize(model: nn.Module) -> nn.Module:
    """A folded copy of `model` in eval mode (the original is left untouched).

    timm's walker calls ``reparameterize()`` on every block that has one (MobileOne branches,
    RepMixer, RepCPE, large-kernel convs, Text-RepMixer) after folding BatchNorm statistics."""
    return reparameterize_model(copy.deepcopy(model).eval(), inplace=True).eval()


def _is_folded(module: nn.Module) -> bool:
    if hasattr(module, "reparam_conv"):  # timm's convention: the single conv exists once folded
        return module.reparam_conv is not None
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def unfolded_blocks(model: nn.Module) -> list[str]:
    """Names of reparameterizable blocks that still carry train-time branches or BatchNorms."""
    return [name for name, module in model.named_modules()
            if hasattr(module, "reparameterize") and not _is_folded(module)]
