"""The one interface every CLIP teacher offers to reinforcement, whatever trained it."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Teacher(Protocol):
    """A frozen CLIP model whose embeddings a reinforced store keeps.

    `id` is stable and unique (it names the teacher in a store's manifest); images come in as
    float tensors in [0, 1] at `image_size`, and the teacher applies its own normalisation;
    texts come in as strings and the teacher tokenizes them. Both encoders return
    L2-normalised float32 embeddings of width `embed_dim`.
    """

    id: str
    embed_dim: int
    image_size: int

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor: ...
