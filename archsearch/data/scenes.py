"""Procedural scenes: several coloured shapes over textured backgrounds, and the words for them.

The embedded dataset must be learnable in a minute on two cores yet hard enough to rank
architectures. One object per image saturates (a tiny CLIP reaches 82% on colour x shape), so a
scene has one large object, one to three small distractors that reuse its colours and shapes
(only binding colour to shape and size tells them apart), background patterns and clutter
strokes. Real captions are noisy alt-text; synthetic captions are complete and accurate, which is
the gap MobileCLIP's reinforcement closes.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (240, 135, 25),
    "yellow": (235, 215, 45),
    "green": (45, 165, 60),
    "blue": (40, 85, 225),
    "purple": (135, 55, 190),
    "pink": (245, 135, 185),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "hexagon", "ring")
BACKGROUNDS: dict[str, tuple[int, int, int]] = {"grey": (118, 118, 118), "dark": (35, 35, 42),
                                                 "sand": (175, 155, 115)}
PATTERNS = ("plain", "striped", "checkered", "speckled")
_SUPERSAMPLE = 2


def sample_scene(rng: np.random.Generator, main: tuple[str, str] | None = None,
                 distractors: tuple[int, int] = (1, 3)) -> dict[str, Any]:
    """A JSON-able scene: background, pattern, clutter strokes and objects (the large one first).

    Coordinates are fractions of the image side, so one scene renders at any size.
    """
    colours, shapes = list(COLOURS), list(SHAPES)
    if main is None:
        main = (colours[rng.integers(len(colours))], shapes[rng.integers(len(shapes))])
    radius = float(rng.uniform(0.2, 0.27))
    objects = [_object(rng, main[0], main[1], "large", radius, [])]
    for _ in range(int(rng.integers(distractors[0], distractors[1] + 1))):
        # Half the distractors share the large object's colour or shape: a bag of words cannot
        # tell "a large red star" from "a small red circle next to a large blue star".
        colour, shape = main
        while (colour, shape) == main:
            colour = colours[rng.integers(len(colours))]
            shape = shapes[rng.integers(len(shapes))]
            if rng.random() < 0.5:
                colour, shape = (main[0], shape) if rng.random() < 0.5 else (colour, main[1])
        placed = _object(rng, colour, shape, "small", float(rng.uniform(0.09, 0.13)), objects)
        if placed is not None:
            objects.append(placed)
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    strokes = [[float(v) for v in rng.uniform(0, 1, 4)] + [list(COLOURS)[rng.integers(len(COLOURS))]]
               for _ in range(int(rng.integers(0, 4)))]
    return {"background": background, "pattern": PATTERNS[rng.integers(len(PATTERNS))],
            "objects": objects, "strokes": strokes, "seed": int(rng.integers(2**31))}


def _object(rng, colour, shape, size, radius, others):
    for _ in range(50):
        x, y = (float(v) for v in rng.uniform(radius, 1 - radius, 2))
        if all(math.hypot(x - o["x"], y - o["y"]) > radius + o["r"] + 0.02 for o in others):
            return {"shape": shape, "colour": colour, "size": size, "x": x, "y": y, "r": radius,
                    "angle": float(rng.uniform(-20, 20))}
    if others:
        return None  # no room left for this distractor; the scene simply has fewer
    raise AssertionError("the first object always fits")


def render(scene: dict[str, Any], size: int) -> Image.Image:
    """Draw the scene at `size` x `size` pixels (anti-aliased by supersampling)."""
    big = size * _SUPERSAMPLE
    rng = np.random.default_rng(scene["seed"])
    image = Image.fromarray(_background(scene, big, rng))
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1, colour in scene["strokes"]:
        draw.line([(x0 * big, y0 * big), (x1 * big, y1 * big)], fill=_jitter(COLOURS[colour], rng),
                  width=max(1, big // 48))
    for obj in scene["objects"]:
        _draw_shape(draw, obj, big, _jitter(COLOURS[obj["colour"]], rng), BACKGROUNDS[scene["background"]])
    return image.resize((size, size), Image.Resampling.BOX)


def _jitter(rgb, rng, amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _background(scene, size, rng) -> np.ndarray:
    base = np.array(_jitter(BACKGROUNDS[scene["background"]], rng), dtype=np.float32)
    pixels = np.broadcast_to(base, (size, size, 3)).copy()
    yy, xx = np.mgrid[0:size, 0:size]
    period = int(rng.integers(6, 12)) * _SUPERSAMPLE
    pattern = scene["pattern"]
    if pattern == "striped":
        pixels[((xx + yy) // period) % 2 == 0] += 22
    elif pattern == "checkered":
        pixels[((xx // period) + (yy // period)) % 2 == 0] += 22
    elif pattern == "speckled":
        pixels += rng.normal(0, 20, (size, size, 1))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _draw_shape(draw: ImageDraw.ImageDraw, obj, size, fill, background):
    cx, cy, r = obj["x"] * size, obj["y"] * size, obj["r"] * size
    shape, angle = obj["shape"], math.radians(obj["angle"])
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, int(r * 0.4)))
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=fill)


def _polygon(shape, cx, cy, r, angle):
    def at(radii_angles):
        return [(cx + rr * math.cos(a + angle), cy + rr * math.sin(a + angle)) for rr, a in radii_angles]

    turn = 2 * math.pi
    if shape == "square":
        return at([(r, turn * k / 4 + math.pi / 4) for k in range(4)])
    if shape == "diamond":
        return at([(r * (1.0 if k % 2 == 0 else 0.65), turn * k / 4) for k in range(4)])
    if shape == "triangle":
        return at([(r, turn * k / 3 - math.pi / 2) for k in range(3)])
    if shape == "hexagon":
        return at([(r, turn * k / 6) for k in range(6)])
    if shape == "star":
        return at([(r if k % 2 == 0 else r * 0.42, turn * k / 10 - math.pi / 2) for k in range(10)])
    if shape == "cross":
        w = 0.36
        corners = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w),
                   (-1, w), (-w, w), (-w, 1)]
        return at([(r * math.hypot(a, b), math.atan2(b, a)) for a, b in corners])
    raise ValueError(f"unknown shape {shape!r}")


# ---- words ---------------------------------------------------------------------------------------

def relation(a: dict, b: dict) -> str:
    """Where `a` is relative to `b`, along the axis they differ most in."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _region(obj: dict) -> str:
    row = "top" if obj["y"] < 0.4 else "bottom" if obj["y"] > 0.6 else ""
    col = "left" if obj["x"] < 0.4 else "right" if obj["x"] > 0.6 else ""
    return f"{row} {col}".strip() or "centre"


def _name(obj: dict, with_size: bool = True) -> str:
    size = {"large": "large ", "small": "small "}[obj["size"]] if with_size else ""
    return f"{size}{obj['colour']} {obj['shape']}"


def with_articles(text: str) -> str:
    """'a orange star' -> 'an orange star'."""
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def full_caption(scene: dict) -> str:
    """The complete description retrieval is judged on: every object, a relation, the background."""
    main, others = scene["objects"][0], scene["objects"][1:]
    text = f"a {_name(main)}"
    if others:
        text += f" {relation(main, others[0])} a {_name(others[0])}"
        if len(others) > 1:
            text += " with " + " and ".join(f"a {_name(o)}" for o in others[1:])
    return with_articles(f"{text}, on a {scene['pattern']} {scene['background']} background")


_SYNTHETIC = (
    lambda s, m, o: f"a {_name(m)}.",
    lambda s, m, o: f"a {_name(m)} and {len(o)} small shape{'s' * (len(o) > 1)} on a {s['pattern']} {s['background']} background.",
    lambda s, m, o: f"a {m['colour']} {m['shape']} {relation(m, o[0])} a {o[0]['colour']} {o[0]['shape']}.",
    lambda s, m, o: f"{len(o) + 1} shapes: a big {m['colour']} {m['shape']}, " + " and ".join(f"a small {x['colour']} {x['shape']}" for x in o) + ".",
    lambda s, m, o: f"a {s['background']} background with a large {m['colour']} {m['shape']} in the {_region(m)}.",
    lambda s, m, o: f"the biggest shape is a {m['colour']} {m['shape']}; next to it is a {o[-1]['colour']} {o[-1]['shape']}.",
    lambda s, m, o: f"a small {o[0]['colour']} {o[0]['shape']} {relation(o[0], m)} a large {m['colour']} {m['shape']}.",
    lambda s, m, o: full_caption(s) + ".",
)


def synthetic_captions(meta: dict[str, Any], n: int, seed: int) -> list[str]:
    """`n` accurate captions of one scene in different wording and detail (the CoCa stand-in)."""
    rng = np.random.default_rng(seed)
    main, others = meta["objects"][0], meta["objects"][1:]
    # Templates past the first two name a distractor; a scene whose distractors found no room has none.
    usable = len(_SYNTHETIC) if others else 1
    order = rng.permutation(usable)
    return [with_articles(_SYNTHETIC[order[i % usable]](meta, main, others)) for i in range(n)]


_NOISE_PREFIX = ("", "", "stock photo of ", "free vector: ", "wallpaper with ", "cute ", "image: ")
_NOISE_SUFFIX = ("", "", " | download now", " clipart", " - hd", " for kids", " #art")


def real_caption(scene: dict[str, Any], rng: np.random.Generator) -> str:
    """Web alt-text: often partial, sometimes about a distractor, sometimes about nothing at all."""
    main, others = scene["objects"][0], scene["objects"][1:]
    roll = rng.random()
    if roll < 0.35:
        core = f"{main['colour']} {main['shape']}"
    elif roll < 0.55:
        core = main["shape"] if rng.random() < 0.5 else f"{main['colour']} shapes"
    elif roll < 0.7 and others:
        core = f"{others[0]['colour']} {others[0]['shape']}"
    elif roll < 0.85:
        core = f"{scene['pattern']} pattern background"
    else:
        core = f"img_{rng.integers(10000):04d}.png" if rng.random() < 0.5 else "abstract geometric art"
    return (_NOISE_PREFIX[rng.integers(len(_NOISE_PREFIX))] + core
            + _NOISE_SUFFIX[rng.integers(len(_NOISE_SUFFIX))])


CLASS_TEMPLATES = (
    "a large {}.",
    "a photo of a big {}.",
    "a big {} with small shapes around it.",
    "the largest shape is a {}.",
    "a {}.",
)


def class_names() -> list[str]:
    """The zero-shot classes: colour x shape of the large object (8 x 8 = 64)."""
    return [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]
