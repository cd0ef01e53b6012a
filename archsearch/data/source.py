"""What every image-caption source yields, so reinforce and training never care where data lives.

A source is a finite, ordered sequence of `CaptionedImage`s: the embedded procedural scenes, an
image folder with a caption table, or WebDataset tar shards as img2dataset/DataComp write them.
Order is part of the contract: a reinforced store refers to samples by their position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, runtime_checkable

from PIL import Image


@dataclass(frozen=True)
class CaptionedImage:
    """One sample: an RGB image, its real (alt-text) caption, and a stable key.

    `meta` carries what a source knows beyond the caption (the embedded scenes keep their scene
    description there, from which the procedural captioner writes synthetic captions).
    """

    key: str
    image: Image.Image
    caption: str
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class CaptionSource(Protocol):
    """A finite ordered sequence of captioned images.

    `describe()` is a small JSON-able dict (kind, location, length, ...) that a store's manifest
    records and `open_source()` turns back into the same source.
    """

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[CaptionedImage]: ...

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        """Samples `start`, `start + 1`, ... in order (resuming a build without re-reading)."""
        ...

    def describe(self) -> dict[str, Any]: ...
