"""The anchor's ms scale shared by a set of drift-corrected measurements, settled from all of them.

A drift-corrected figure is a ratio to the anchor, taken in one window, times the anchor's quiet
ms. The ratio cancels a slow phase; the quiet ms does not, when it was itself taken once in a slow
phase: one sweep's scale read 130.8 ms where another's read 116.6 (`sweep_latency_v3.md`, commit
69da9ec), so every figure of the first sweep was 12% high though each ratio was within 2%.

Every window also times the anchor, so a set of measurements holds as many in-window anchor
medians, spread over hours. Their minimum, with the cached quiet figure, is the scale: a slow
phase only ever adds time, so the lowest settled median is the least disturbed one (the rule the
quiet figure already follows), and one slow phase can no longer move a whole study.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

TOWERS = ("image", "text")


@dataclass(frozen=True)
class AnchorScale:
    anchor: str
    image_ms: float
    text_ms: float
    windows: int                 # in-window anchor medians the scale is the lowest of (besides the quiet one)
    quiet_ms: dict[str, float]   # the cached quiet figure every measurement was first scaled by

    def to_dict(self) -> dict:
        return asdict(self)

    def ms(self, tower: str) -> float:
        return self.image_ms if tower == "image" else self.text_ms


def settled_scale(corrections: list[dict]) -> AnchorScale:
    """The scale of measurements' `correction` records (`LatencyResult.correction`), all of one
    anchor on one device: per tower, the lowest of every window's anchor median and the quiet
    figures they were recorded with."""
    if not corrections:
        raise ValueError("no drift-corrected measurement to settle a scale from")
    anchors = {c["anchor"] for c in corrections}
    if len(anchors) != 1:
        raise ValueError(f"measurements against different anchors {sorted(anchors)} share no scale")
    lowest = {tower: min([c[tower]["anchor_ms"] for c in corrections]
                         + [c["anchor_quiet_ms"][f"{tower}_ms"] for c in corrections]) for tower in TOWERS}
    quiet = min((c["anchor_quiet_ms"] for c in corrections), key=lambda q: q["image_ms"] + q["text_ms"])
    return AnchorScale(anchor=anchors.pop(), image_ms=lowest["image"], text_ms=lowest["text"],
                       windows=len(corrections), quiet_ms=dict(quiet))


def rescaled_ms(correction: dict, scale: AnchorScale) -> dict[str, float]:
    """{"image_ms", "text_ms", "total_ms"} of one measurement on `scale`: its ratios times the scale."""
    out = {f"{tower}_ms": correction[tower]["ratio"] * scale.ms(tower) for tower in TOWERS}
    return {**out, "total_ms": out["image_ms"] + out["text_ms"]}
