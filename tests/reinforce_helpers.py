"""Small real parts for the reinforced-store tests: a drawn image source, teachers wrapping tiny
randomly initialised archsearch CLIPs, and a seeded template captioner."""

from __future__ import annotations

import time
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from archsearch.data.pixels import normalize
from archsearch.data.source import CaptionedImage
from archsearch.models.clip import build_clip
from archsearch.models.tokenizer import tokenize
from archsearch.spec import ArchSpec, get_preset

COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["square", "circle", "triangle"]
SIZES = [(40, 32), (32, 48), (36, 36), (64, 40)]


def draw(index: int) -> tuple[Image.Image, str]:
    """A noisy background with one coloured rectangle, and a caption naming it."""
    rng = np.random.default_rng(1000 + index)
    width, height = SIZES[index % len(SIZES)]
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    colour = COLOURS[index % len(COLOURS)]
    rgb = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (220, 220, 30)}[colour]
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    pixels[top:top + height // 2, left:left + width // 2] = rgb
    side = "left" if left < width // 4 else "right"
    return Image.fromarray(pixels), f"a {colour} {SHAPES[index % len(SHAPES)]} on the {side}"


class DrawnSource:
    """A CaptionSource with random access over `n` drawn images."""

    def __init__(self, n: int = 8, order: Sequence[int] | None = None):
        self.order = list(range(n)) if order is None else list(order)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> CaptionedImage:
        if not 0 <= index < len(self):
            raise IndexError(index)
        image, caption = draw(self.order[index])
        return CaptionedImage(key=f"drawn-{self.order[index]:04d}", image=image, caption=caption,
                              meta={"index": self.order[index]})

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        return (self[i] for i in range(start, len(self)))

    def describe(self) -> dict[str, Any]:
        return {"kind": "drawn", "n": len(self), "order": self.order}


class StreamOnly:
    """The same samples, readable only in order (like WebDataset shards)."""

    def __init__(self, source: DrawnSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self.source.iter_from(0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        return self.source.iter_from(start)

    def describe(self) -> dict[str, Any]:
        return self.source.describe()


def tiny_spec(resolution: int, embed_dim: int) -> ArchSpec:
    """mobileclip_s0 cut down: two small image stages, a two-layer 64-wide text tower, context 16."""
    data = get_preset("mobileclip_s0").to_dict()
    data.update(resolution=resolution, embed_dim=embed_dim)
    data["image"]["stem"]["width"] = 16
    data["image"]["stages"] = [dict(data["image"]["stages"][0], depth=1, width=16),
                               dict(data["image"]["stages"][3], depth=1, width=32, head_dim=16,
                                    downsample="patch_embed")]
    data["text"].update(width=64, heads=2, layers=["repmixer1d", "attention"], context_length=16)
    return ArchSpec.from_dict(data)


class ClipTeacher:
    """A Teacher over a real (randomly initialised) archsearch CLIP; can be told to fail."""

    def __init__(self, name: str, resolution: int, embed_dim: int, seed: int, fail_after_calls: int | None = None):
        torch.manual_seed(seed)
        self.spec = tiny_spec(resolution, embed_dim)
        self.model = build_clip(self.spec).eval()
        self.id, self.embed_dim, self.image_size = name, embed_dim, resolution
        self.fail_after_calls, self.calls = fail_after_calls, 0

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.fail_after_calls is not None and self.calls > self.fail_after_calls:
            raise RuntimeError("teacher crashed")
        with torch.no_grad():
            return F.normalize(self.model.encode_image(normalize(images)), dim=-1)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(self.model.encode_text(tokenize(texts, self.spec.text.context_length)), dim=-1)


class TemplateCaptioner:
    """Writes captions from templates, chosen by `seed`; can fail after some samples or go slowly."""

    id = "template-v1"

    def __init__(self, fail_after: int | None = None, delay: float = 0.0):
        self.fail_after, self.delay, self.calls = fail_after, delay, 0

    def caption(self, sample: CaptionedImage, n: int, seed: int) -> list[str]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("captioner crashed")
        time.sleep(self.delay)
        rng = np.random.default_rng(seed)
        words = sample.caption.split()
        return [f"{rng.choice(['a photo of', 'an image of', 'a picture of', 'café'])} "
                f"{' '.join(rng.permutation(words))} #{rng.integers(100)}" for _ in range(n)]


def teachers(fail_after_calls: int | None = None) -> list[ClipTeacher]:
    """Two teachers of different widths and input sizes (so the dataset's concatenation is exercised)."""
    return [ClipTeacher("tiny-a", 32, 16, seed=1, fail_after_calls=fail_after_calls),
            ClipTeacher("tiny-b", 48, 24, seed=2)]
