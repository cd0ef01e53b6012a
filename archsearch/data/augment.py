"""Augmentations as stored numbers: a reinforced store keeps each view's crop box and flip, and
training replays them on the source image, so the teacher embeddings match the pixels exactly.

The crop sampler is torchvision's `RandomResizedCrop.get_params`, driven by a numpy Generator
seeded per sample (`sample_rng`), so neither sharding nor worker count changes what is drawn.
Replay uses PIL's fixed-point resampling, which is bit-identical from call to call and machine
to machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from archsearch.data.pixels import to_tensor
from archsearch.errors import UserError

PARAM_FIELDS = ("top", "left", "height", "width", "flip")
"""Columns of a parameter row: crop box in source pixels, then 1.0 to flip left-right."""
NUM_PARAMS = len(PARAM_FIELDS)


@dataclass(frozen=True)
class AugmentConfig:
    """Random-resized-crop ranges and flip probability.

    Flipping is off by default: the embedded scenes' captions say "left of" and "right of", which a
    mirrored image contradicts. The crop scale starts at 0.5 (not RandomResizedCrop's 0.08) so a view
    keeps most of what the caption talks about.
    """

    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.0

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("scale", self.scale), ("ratio", self.ratio)):
            if not (0 < lo <= hi) or not all(math.isfinite(v) for v in (lo, hi)):
                raise UserError(f"augment.{name}: ({lo}, {hi}) must be a range 0 < low <= high")
        if self.scale[1] > 1:
            raise UserError(f"augment.scale: upper bound {self.scale[1]} exceeds 1 (the whole image)")
        if not 0 <= self.flip <= 1:
            raise UserError(f"augment.flip: {self.flip} is not a probability in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Any, where: str = "augment") -> "AugmentConfig":
        if not isinstance(data, dict) or set(data) != {"scale", "ratio", "flip"}:
            raise UserError(f"{where}: expected an object with exactly scale, ratio and flip, got {data!r}")
        try:
            scale, ratio = tuple(float(v) for v in data["scale"]), tuple(float(v) for v in data["ratio"])
            flip = float(data["flip"])
        except (TypeError, ValueError):
            scale = ratio = ()
        if len(scale) != 2 or len(ratio) != 2:
            raise UserError(f"{where}: scale and ratio must be pairs of numbers and flip a number, got {data!r}")
        try:
            return cls(scale=scale, ratio=ratio, flip=flip)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for sample `index`'s views: a function of (seed, index) only."""
    return np.random.default_rng(np.random.SeedSequence([seed, index, 0]))


def _crop_box(rng: np.random.Generator, width: int, height: int, config: AugmentConfig) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params, with `rng` in place of torch's global generator."""
    area = height * width
    log_ratio = (math.log(config.ratio[0]), math.log(config.ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(config.scale[0], config.scale[1])
        aspect_ratio = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height  # fallback: the central crop at the nearest allowed ratio
    if in_ratio < min(config.ratio):
        w, h = width, int(round(width / min(config.ratio)))
    elif in_ratio > max(config.ratio):
        h, w = height, int(round(height * max(config.ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_params(rng: np.random.Generator, width: int, height: int, config: AugmentConfig, n: int) -> np.ndarray:
    """`n` views of a `width` x `height` image: float32 [n, 5] rows of (top, left, height, width, flip)."""
    if width < 1 or height < 1:
        raise UserError(f"cannot augment an image of size {width}x{height}")
    params = np.zeros((n, NUM_PARAMS), dtype=np.float32)
    for row in params:
        row[:4] = _crop_box(rng, width, height, config)
        row[4] = float(rng.random() < config.flip) if config.flip > 0 else 0.0
    return params


def replay(image: Image.Image, params: np.ndarray, size: int) -> torch.Tensor:
    """The view a parameter row describes: crop, bicubic resize (antialiased) to `size` x `size`,
    optional flip; float32 [3, size, size] in [0, 1], the same bits on every call."""
    row = np.asarray(params, dtype=np.float64).reshape(-1)
    if row.shape != (NUM_PARAMS,) or not np.isfinite(row).all():
        raise UserError(f"augmentation parameters must be {NUM_PARAMS} finite numbers {PARAM_FIELDS}, got {row}")
    top, left, h, w = (int(v) for v in row[:4])
    width, height = image.size
    if h < 1 or w < 1 or top < 0 or left < 0 or top + h > height or left + w > width:
        raise UserError(f"augmentation crop (top {top}, left {left}, height {h}, width {w}) does not fit a "
                        f"{width}x{height} image: the store was built from a different source")
    view = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + w, top + h))
    if row[4] >= 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return to_tensor(view)
