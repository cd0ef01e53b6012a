"""Parameters and MACs per tower, counted on the inference-time (reparameterized) model.

MACs are fvcore counts (one multiply-add = 1) for one image at the spec's resolution and one
sequence at its context length, with the fused-attention handles of `archsearch.latency.flops`
(fvcore alone skips attention's QK^T and AV products, real work that differs between mixers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archsearch.latency.flops import flop_count_analysis
from archsearch.spec.arch import ArchSpec


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    analysis = flop_count_analysis(module.eval(), inputs)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with torch.no_grad():
        return int(analysis.total())


def example_tokens(spec: ArchSpec, batch: int = 1) -> torch.Tensor:
    """A token batch of the spec's context length whose end-of-text token sits last."""
    tokens = torch.ones(batch, spec.text.context_length, dtype=torch.long)
    tokens[:, -1] = spec.text.vocab_size - 1
    return tokens


def example_images(spec: ArchSpec, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, spec.resolution, spec.resolution)


@dataclass(frozen=True)
class TowerCost:
    params: int        # inference-time (reparameterized), projection included: what the papers count
    params_train: int  # train-time, with every branch
    macs: int          # inference-time, batch 1


@dataclass(frozen=True)
class ArchCost:
    image: TowerCost
    text: TowerCost

    def to_dict(self) -> dict:
        return {
            "image_params": self.image.params, "text_params": self.text.params,
            "image_params_train": self.image.params_train, "text_params_train": self.text.params_train,
            "image_gmacs": self.image.macs / 1e9, "text_gmacs": self.text.macs / 1e9,
        }


def measure_cost(spec: ArchSpec) -> ArchCost:
    from archsearch.models import build_clip, reparameterize

    model = build_clip(spec)
    folded = reparameterize(model)
    return ArchCost(
        image=TowerCost(count_params(folded.visual), count_params(model.visual),
                        count_macs(folded.visual, example_images(spec))),
        text=TowerCost(count_params(folded.text), count_params(model.text),
                       count_macs(folded.text, example_tokens(spec))),
    )
