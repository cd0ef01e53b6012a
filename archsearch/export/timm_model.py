"""An ArchSpec's image tower with the timm model interface, for `timm.create_model` and OpenCLIP.

OpenCLIP's `TimmModel` with ``timm_proj: null`` calls ``timm.create_model(name,
num_classes=embed_dim, global_pool=pool)`` and uses the model's classifier as the projection to
the joint embedding. Here the classifier *is* the tower's projection (``proj``, with the spec's
bias), so the OpenCLIP model holds exactly archsearch's modules, under ``visual.trunk.`` instead
of ``visual.``: same parameter count, and archsearch weights load by renaming keys.

As in timm, `forward_features` returns the unpooled map (or normalised tokens) and
`forward_head` pools, applies the head norm and projects.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.models.image import ImageTower, _init_linear
from archsearch.spec.arch import ArchSpec


class TimmImageTower(ImageTower):
    def __init__(self, arch: ArchSpec, num_classes: Optional[int] = None, global_pool: Optional[str] = None,
                 in_chans: int = 3, drop_rate: float = 0.0, drop_path_rate: Optional[float] = None):
        """`num_classes`: width of the classifier (None: the spec's joint embedding, 0: none);
        `global_pool`: only the spec's own pooling ('' or None mean that too)."""
        if in_chans != 3:
            raise ValueError(f"in_chans={in_chans}: archsearch towers take RGB images; allowed: 3")
        if drop_rate or drop_path_rate:
            raise ValueError(f"drop_rate={drop_rate}, drop_path_rate={drop_path_rate}: archsearch towers are "
                             "built without dropout or stochastic depth; allowed: 0 or None")
        self._check_pool(arch, global_pool)
        width = arch.embed_dim if num_classes is None else num_classes
        super().__init__(arch.image, arch.resolution, width or arch.embed_dim)
        self.arch_spec = arch
        self.num_features = self.head_hidden_size = arch.image.num_features
        self.global_pool = arch.image.head.pool
        self.num_classes = width
        if not width:
            self.proj = nn.Identity()

    @staticmethod
    def _check_pool(arch: ArchSpec, global_pool: Optional[str]) -> None:
        if global_pool not in (None, "", arch.image.head.pool):
            raise ValueError(f"global_pool={global_pool!r}: this tower's head pools by {arch.image.head.pool!r} "
                             f"(its spec's image.head.pool); allowed: {arch.image.head.pool!r}, '' or None")

    def get_classifier(self) -> nn.Module:
        return self.proj

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self._check_pool(self.arch_spec, global_pool)
        self.num_classes = num_classes
        self.proj = (nn.Linear(self.num_features, num_classes, bias=self.spec.head.proj_bias)
                     if num_classes else nn.Identity())
        self.proj.apply(_init_linear)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_conv(self.stages(self.stem(x)))
        return x if x.ndim == 4 else self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if x.ndim == 4:
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        else:
            x = x[:, 0] if self.global_pool == "token" else x.mean(dim=1)
        x = self.fc_norm(x)
        return x if pre_logits else self.proj(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
