"""The scale-down rule: a full-size ArchSpec -> the smaller spec a proxy actually trains.

Latency is always measured on the full-size spec; accuracy on this proxy. The rule keeps what a
search decides (block kinds, stage layout, MLP ratios, head counts, text mixer order, relative
widths and depths) and shrinks what only sets the scale:

- resolution and context length -> the recipe's (null keeps the spec's);
- every width (stem, stages, joint embedding, text) x its multiplier, rounded up to a multiple of
  `width_multiple`; a stage whose patch embedding is depthwise keeps its integer ratio to the
  previous width, so the proxy stays buildable;
- attention head counts are kept: head_dim = scaled width / heads (image stages: the largest
  divisor of the scaled width not above the scaled head_dim);
- every stage depth x depth_mult, rounded half up, at least 1; text layers shrink run by run
  (each maximal run of one mixer scales alone), so [R, A x4, R] -> [R, A x2, R].

The rule may also give every residual branch of the proxy one starting gain (`layer_scale_init`,
applied when the proxy is built for training, `archsearch.models.init`): the returned spec is the
same either way, so latency, exports and full-size builds keep the papers' blocks.
"""

from __future__ import annotations

import math
from itertools import groupby

from archsearch.proxy.recipe import ScaleDown
from archsearch.spec.arch import ArchSpec
from archsearch.spec.io import spec_from_mapping


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _width(width: int, mult: float, multiple: int) -> int:
    return max(multiple, multiple * math.ceil(width * mult / multiple))


def _depth(depth: int, mult: float) -> int:
    return max(1, _round_half_up(depth * mult))


def _largest_divisor_at_most(n: int, cap: float) -> int:
    return max(d for d in range(1, n + 1) if n % d == 0 and d <= max(cap, 1))


def scale_down(spec: ArchSpec, rule: ScaleDown) -> ArchSpec:
    data = spec.to_dict()
    data["resolution"] = rule.resolution or spec.resolution
    data["embed_dim"] = _width(spec.embed_dim, rule.width_mult, rule.width_multiple)

    image = data["image"]
    prev_full, prev = spec.image.stem.width, _width(spec.image.stem.width, rule.width_mult, rule.width_multiple)
    image["stem"]["width"] = prev
    for stage, full in zip(image["stages"], spec.image.stages):
        if full.downsample == "none":
            width = prev
        elif full.downsample.startswith("patch_embed"):
            width = prev * (full.width // prev_full)
        else:
            width = _width(full.width, rule.width_mult, rule.width_multiple)
        stage["width"], stage["depth"] = width, _depth(full.depth, rule.depth_mult)
        if full.head_dim:
            stage["head_dim"] = _largest_divisor_at_most(width, width / full.heads)
        prev_full, prev = full.width, width

    text = data["text"]
    width = _width(spec.text.width, rule.text_width_mult, rule.width_multiple)
    text["width"] = width
    text["heads"] = math.gcd(spec.text.heads, width)
    text["context_length"] = rule.context_length or spec.text.context_length
    text["layers"] = [kind for kind, run in groupby(spec.text.layers)
                      for _ in range(_depth(len(list(run)), rule.text_depth_mult))]
    return spec_from_mapping(data, source=f"scale-down of {spec.image.stem.kind} spec")
