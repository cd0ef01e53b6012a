"""The CLIP model: an image tower and a text tower meeting in one embedding, as in open_clip."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.models.image import ImageTower, build_image_tower
from archsearch.models.text import TextTower
from archsearch.spec.arch import ArchSpec


class CLIP(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        self.visual: ImageTower = build_image_tower(spec)
        self.text: TextTower = TextTower(spec.text, spec.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.visual(images)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.text(tokens)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """Normalised image and text features and the logit scale, as open_clip's CLIP returns them."""
        return (self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True),
                self.logit_scale.exp())


def build_clip(spec: ArchSpec) -> CLIP:
    return CLIP(spec)
