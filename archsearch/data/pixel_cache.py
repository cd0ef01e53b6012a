"""Decoded pixels kept on disk, so training epochs and trials never re-render or re-decode.

Procedural scenes take ~1.5 ms each to draw and a JPEG about as long to decode; a 128-image batch
would spend longer on that than a tiny proxy spends on compute. A `PixelCache` renders an indexable
source once into one uint8 `.npy` (memory-mapped afterwards, shared by every trial and worker).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from archsearch.data.source import CaptionedImage, CaptionSource


class PixelCache:
    """An indexable source read from its cache: pixels from a uint8 array, keys, captions and meta
    from a JSON sidecar; the wrapped source is only read to build the cache."""

    def __init__(self, source: CaptionSource, cache_dir: str | Path):
        self.source = source
        digest = hashlib.sha256(json.dumps(source.describe(), sort_keys=True).encode()).hexdigest()[:16]
        self.path = Path(cache_dir) / f"pixels-{digest}.npy"
        self.text_path = self.path.with_suffix(".json")
        if not (self.path.is_file() and self.text_path.is_file()):
            self._render()
        self.pixels = np.load(self.path, mmap_mode="r")
        self.samples = json.loads(self.text_path.read_text())

    def _render(self) -> None:
        first = np.asarray(self.source[0].image.convert("RGB"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.partial.npy")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(self.source), *first.shape))
        texts = []
        for i, sample in enumerate(self.source):
            image = np.asarray(sample.image.convert("RGB"))
            texts.append({"key": sample.key, "caption": sample.caption, "meta": sample.meta})
            if image.shape != first.shape:
                raise ValueError(f"{self.source.describe()}: sample {i} is {image.shape}, not {first.shape}; "
                                 "a pixel cache needs one image size")
            out[i] = image
        out.flush()
        del out
        partial_text = self.text_path.with_suffix(f".{os.getpid()}.partial.json")
        partial_text.write_text(json.dumps(texts))
        os.replace(partial_text, self.text_path)
        os.replace(partial, self.path)  # atomic, pixels last: a concurrent reader sees all or nothing

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> CaptionedImage:
        if not 0 <= index < len(self):
            raise IndexError(index)
        text = self.samples[index]
        return CaptionedImage(text["key"], Image.fromarray(np.asarray(self.pixels[index])), text["caption"], text["meta"])

    def __iter__(self) -> Iterator[CaptionedImage]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[CaptionedImage]:
        return (self[i] for i in range(start, len(self)))

    def describe(self) -> dict[str, Any]:
        return self.source.describe()
