"""The one interface for writing synthetic captions, the stand-in for MobileCLIP's CoCa."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from archsearch.data.source import CaptionedImage


@runtime_checkable
class Captioner(Protocol):
    """Writes `n` synthetic captions for a sample, deterministically given `seed`.

    `id` names the captioner in a store's manifest.
    """

    id: str

    def caption(self, sample: CaptionedImage, n: int, seed: int) -> list[str]: ...
