"""The embedded default dataset: procedural scenes made on the fly, no download, no disk.

Sample `i` of a split is drawn from its own generator seeded by (seed, split, i), so any sample
renders alone, in any order, on any worker, identically. Three splits: `train` (noisy real
captions, the stand-in for web alt-text), and two held-out zero-shot tasks: `classify` (64
classes, colour x shape of the large object, balanced) and `retrieval` (one complete caption per
image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from archsearch.data import scenes
from archsearch.data.pixels import to_tensor
from archsearch.data.source import CaptionedImage
from archsearch.errors import UserError

SPLITS = {"train": 0, "classify": 1, "retrieval": 2}
DEFAULT_SIZES = {"train": 10_000, "classify": 1_280, "retrieval": 500}
DEFAULT_IMAGE_SIZE = 64


class EmbeddedScenes:
    """A `CaptionSource` of procedural scenes, with random access."""

    def __init__(self, split: str = "train", n: int | None = None, seed: int = 0,
                 image_size: int | None = None):
        if split not in SPLITS:
            raise UserError(f"embedded data: unknown split {split!r}; allowed: {', '.join(SPLITS)}")
        self.split, self.seed = split, int(seed)
        self.n = DEFAULT_SIZES[split] if n is None else int(n)
        self.image_size = DEFAULT_IMAGE_SIZE if image_size is None else int(image_size)
        if self.n <= 0 or self.image_size < 16:
            raise UserError(f"embedded data: n must be > 0 and image_size >= 16, got n={self.n}, "
                            f"image_size={self.image_size}")
        if self.seed < 0:  # numpy's seed sequences refuse it, but only when the first sample is read
            raise UserError(f"embedded data: seed must be >= 0, got seed={self.seed}")

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> "EmbeddedScenes":
        return cls(description["split"], description["n"], description["seed"], description["image_size"])

    def describe(self) -> dict[str, Any]:
        return {"kind": "embedded", "split": self.split, "n": self.n, "seed": self.seed,
                "image_size": self.image_size}

    def __len__(self) -> int:
        return self.n

    def scene(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        if self.split == "classify":
            colour, shape = scenes.class_names()[self.label(index)].split(" ")
            return scenes.sample_scene(rng, main=(colour, shape))
        return scenes.sample_scene(rng)

    def label(self, index: int) -> int:
        """The class of a `classify` sample (balanced: index modulo the number of classes)."""
        return index % len(scenes.class_names())

    def __getitem__(self, index: int) -> CaptionedImage:
        if not 0 <= index < self.n:
            raise IndexError(index)
        scene = self.scene(index)
        if self.split == "train":
            caption = scenes.real_caption(scene, self._rng(index, stream=1))
        else:
            caption = scenes.full_caption(scene)
        return CaptionedImage(key=f"{self.split}-{index:07d}", image=scenes.render(scene, self.image_size),
                              caption=caption, meta=scene)

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        return (self[i] for i in range(start, self.n))

    def _rng(self, index: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLITS[self.split], index, stream])


@dataclass(frozen=True)
class ClassificationTask:
    """Zero-shot classification: class embeddings are prompt templates averaged per class."""

    images: torch.Tensor  # [N, 3, H, W] in [0, 1]
    labels: torch.Tensor  # [N]
    classnames: list[str]
    templates: tuple[str, ...]

    def prompts(self) -> list[list[str]]:
        """Per class, every template filled in (with the right article)."""
        return [[scenes.with_articles(t.format(name)) for t in self.templates] for name in self.classnames]


@dataclass(frozen=True)
class RetrievalTask:
    """Image <-> text retrieval: image i matches caption i."""

    images: torch.Tensor
    captions: list[str]


def _images(source: EmbeddedScenes) -> torch.Tensor:
    return torch.stack([to_tensor(source[i].image) for i in range(len(source))])


def classification_task(n: int | None = None, seed: int = 0, image_size: int | None = None) -> ClassificationTask:
    source = EmbeddedScenes("classify", n, seed, image_size)
    labels = torch.tensor([source.label(i) for i in range(len(source))])
    return ClassificationTask(_images(source), labels, scenes.class_names(), scenes.CLASS_TEMPLATES)


def retrieval_task(n: int | None = None, seed: int = 0, image_size: int | None = None) -> RetrievalTask:
    source = EmbeddedScenes("retrieval", n, seed, image_size)
    return RetrievalTask(_images(source), [source[i].caption for i in range(len(source))])
