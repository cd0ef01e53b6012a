"""The embedded procedural dataset: reproducible samples, the right captions per split, accurate
synthetic captions, balanced zero-shot tasks, and pixels that show what the captions say."""

import re
from collections import Counter

import numpy as np
import pytest
import torch

from archsearch.data import scenes
from archsearch.data.embedded import EmbeddedScenes, classification_task, retrieval_task
from archsearch.data.source import CaptionSource
from archsearch.errors import UserError

RELATION = re.compile(r"\ban? (?:(large|small|big) )?(\w+) (\w+) (left of|right of|above|below) "
                      r"an? (?:(large|small|big) )?(\w+) (\w+)")
COLOUR_TOLERANCE = 20  # scenes jitter each channel by up to 18; palette colours differ by >= 80 somewhere


def _pixels(sample) -> np.ndarray:
    return np.asarray(sample.image)


def _scenes_with_distractors(source: EmbeddedScenes, count: int) -> list[dict]:
    metas = [source.scene(i) for i in range(count)]
    assert all(len(m["objects"]) >= 2 for m in metas)
    return metas


def _nearest_colour(rgb: np.ndarray) -> str:
    return min(scenes.COLOURS, key=lambda name: np.abs(rgb.astype(int) - scenes.COLOURS[name]).sum())


# --- reproducibility ----------------------------------------------------------------------------

def test_samples_are_reproducible_in_any_order():
    forward = EmbeddedScenes("train", n=12, seed=4, image_size=32)
    shuffled = EmbeddedScenes("train", n=12, seed=4, image_size=32)
    order = np.random.default_rng(0).permutation(12)
    late = {int(i): shuffled[int(i)] for i in order}
    for i in range(12):
        a, b = forward[i], late[i]
        assert a.key == b.key == f"train-{i:07d}"
        assert np.array_equal(_pixels(a), _pixels(b))
        assert a.caption == b.caption and a.meta == b.meta
    resumed = list(forward.iter_from(9))
    assert [s.key for s in resumed] == [f"train-{i:07d}" for i in (9, 10, 11)]
    assert all(np.array_equal(_pixels(s), _pixels(late[9 + k])) for k, s in enumerate(resumed))
    assert [s.caption for s in forward] == [late[i].caption for i in range(12)]


def test_splits_and_seeds_give_different_samples():
    def pixels(split, seed):
        source = EmbeddedScenes(split, n=8, seed=seed, image_size=32)
        return [_pixels(source[i]) for i in range(8)], [source.scene(i) for i in range(8)]

    base_pixels, base_scenes = pixels("train", 0)
    for split, seed in (("train", 1), ("retrieval", 0), ("classify", 0)):
        other_pixels, other_scenes = pixels(split, seed)
        assert sum(np.array_equal(a, b) for a, b in zip(base_pixels, other_pixels)) == 0, (split, seed)
        assert sum(a == b for a, b in zip(base_scenes, other_scenes)) == 0, (split, seed)


def test_is_a_caption_source_that_describes_itself():
    source = EmbeddedScenes("retrieval", n=7, seed=3, image_size=24)
    assert isinstance(source, CaptionSource) and len(source) == 7
    assert source.describe() == {"kind": "embedded", "split": "retrieval", "n": 7, "seed": 3, "image_size": 24}
    again = EmbeddedScenes.from_description(source.describe())
    assert again.describe() == source.describe()
    assert np.array_equal(_pixels(again[6]), _pixels(source[6]))
    assert EmbeddedScenes().describe() == {"kind": "embedded", "split": "train", "n": 10_000, "seed": 0,
                                           "image_size": 64}
    with pytest.raises(IndexError):
        source[7]
    with pytest.raises(IndexError):
        source[-1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(split="test"), r"unknown split 'test'; allowed: train, classify, retrieval"),
    (dict(n=0), r"n must be > 0 and image_size >= 16, got n=0"),
    (dict(image_size=8), r"image_size >= 16, got n=10000, image_size=8"),
    (dict(seed=-1), r"seed must be >= 0, got seed=-1"),
])
def test_bad_arguments_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        EmbeddedScenes(**kwargs)


# --- captions -----------------------------------------------------------------------------------

def test_train_captions_are_noisy_alt_text():
    source = EmbeddedScenes("train", n=200, seed=0, image_size=16)
    samples = [source[i] for i in range(200)]
    captions, metas = [s.caption for s in samples], [s.meta for s in samples]
    assert not any(c == scenes.full_caption(m) for c, m in zip(captions, metas))
    assert max(len(c.split()) for c in captions) < min(len(scenes.full_caption(m).split()) for m in metas)
    main = [f"{m['objects'][0]['colour']} {m['objects'][0]['shape']}" in c for c, m in zip(captions, metas)]
    unrelated = [m["objects"][0]["shape"] not in c and m["objects"][0]["colour"] not in c
                 for c, m in zip(captions, metas)]
    assert 0.2 < np.mean(main) < 0.6  # often about the large object, often not
    assert np.mean(unrelated) > 0.2
    assert sum(c.startswith(p) for c in captions for p in ("stock photo of ", "free vector: ")) > 10
    assert any("img_" in c for c in captions)


@pytest.mark.parametrize("split", ["classify", "retrieval"])
def test_held_out_captions_are_the_full_description(split):
    source = EmbeddedScenes(split, n=40, seed=2, image_size=16)
    for i in range(40):
        sample = source[i]
        assert sample.caption == scenes.full_caption(sample.meta)
        for obj in sample.meta["objects"]:
            assert f"{obj['size']} {obj['colour']} {obj['shape']}" in sample.caption
        assert sample.caption.endswith(f"on a {sample.meta['pattern']} {sample.meta['background']} background")
        assert sample.caption.startswith("a large ")


def test_synthetic_captions_are_deterministic_distinct_and_accurate():
    metas = _scenes_with_distractors(EmbeddedScenes("train", seed=1), 150)
    n_templates = 8
    orders = set()
    for k, meta in enumerate(metas):
        captions = scenes.synthetic_captions(meta, n_templates, seed=k)
        assert captions == scenes.synthetic_captions(meta, n_templates, seed=k)
        assert len(set(captions)) == n_templates
        orders.add(tuple(scenes.synthetic_captions(metas[0], n_templates, seed=k)))
        main = meta["objects"][0]
        for caption in captions:
            assert f"{main['colour']} {main['shape']}" in caption, caption
            _check_relations(caption, meta)
    assert len(orders) > 100  # the seed picks the wording


def _check_relations(caption: str, meta: dict) -> int:
    """Every 'X <relation> Y' in the caption holds for some objects the words X and Y name."""
    checked = 0
    for match in RELATION.finditer(caption):
        size_a, colour_a, shape_a, rel, size_b, colour_b, shape_b = match.groups()
        a = _named(meta, size_a, colour_a, shape_a)
        b = _named(meta, size_b, colour_b, shape_b)
        assert a and b, (caption, match.group(0))
        assert any(_holds(rel, x, y) for x in a for y in b), (caption, meta["objects"])
        checked += 1
    return checked


def _named(meta, size, colour, shape):
    size = {"big": "large"}.get(size, size)
    return [o for o in meta["objects"] if o["colour"] == colour and o["shape"] == shape
            and (size is None or o["size"] == size)]


def _holds(rel: str, a: dict, b: dict) -> bool:
    """Image coordinates: x grows rightwards, y downwards; the stated axis is the dominant one."""
    dx, dy = a["x"] - b["x"], a["y"] - b["y"]
    return {"left of": dx < 0 and abs(dx) >= abs(dy), "right of": dx > 0 and abs(dx) >= abs(dy),
            "above": dy < 0 and abs(dy) > abs(dx), "below": dy > 0 and abs(dy) > abs(dx)}[rel]


def test_relations_are_checked_and_can_fail():
    meta = _scenes_with_distractors(EmbeddedScenes("retrieval", seed=0), 30)
    checked = sum(_check_relations(c, m) for m in meta for c in scenes.synthetic_captions(m, 8, seed=0))
    assert checked == 30 * 3  # templates 2, 6 and the full caption state a relation
    first = meta[0]
    caption = scenes.full_caption(first)
    flipped = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
    rel = scenes.relation(first["objects"][0], first["objects"][1])
    with pytest.raises(AssertionError):
        _check_relations(caption.replace(rel, flipped[rel], 1), first)


def test_articles():
    assert scenes.with_articles("a orange star and a red ring") == "an orange star and a red ring"
    assert scenes.with_articles("a large orange star") == "a large orange star"
    metas = [EmbeddedScenes("retrieval", seed=5).scene(i) for i in range(300)]
    texts = [scenes.full_caption(m) for m in metas]
    texts += [c for k, m in enumerate(metas) for c in scenes.synthetic_captions(m, 8, seed=k)]
    texts += [p for prompts in classification_task(n=64, image_size=16).prompts() for p in prompts]
    assert not [t for t in texts if re.search(r"\ba [aeiou]", t)]
    assert not [t for t in texts if re.search(r"\ban [^aeiou]", t)]
    assert sum("an orange" in t for t in texts) > 50


def test_retrieval_captions_rarely_repeat():
    task = retrieval_task(n=500, seed=0, image_size=16)
    assert task.images.shape == (500, 3, 16, 16)
    assert task.captions[:5] == [EmbeddedScenes("retrieval", n=500, seed=0)[i].caption for i in range(5)]
    repeats = sum(count - 1 for count in Counter(task.captions).values())
    assert repeats / 500 <= 0.01  # 0 of 500 at seed 0


# --- zero-shot classification -------------------------------------------------------------------

def test_classification_task_is_balanced_and_labelled_by_the_large_object():
    task = classification_task(n=192, seed=0, image_size=16)
    assert task.images.shape == (192, 3, 16, 16) and task.images.dtype == torch.float32
    assert 0 <= task.images.min() and task.images.max() <= 1
    assert task.classnames == scenes.class_names() and len(set(task.classnames)) == 64
    assert torch.equal(torch.bincount(task.labels, minlength=64), torch.full((64,), 3))
    source = EmbeddedScenes("classify", n=192, seed=0, image_size=16)
    for i in range(192):
        main = source.scene(i)["objects"][0]
        assert main["size"] == "large"
        assert task.classnames[task.labels[i]] == f"{main['colour']} {main['shape']}"
    assert torch.equal(task.images[5], classification_task(n=6, seed=0, image_size=16).images[5])


def test_prompts_are_every_template_for_every_class():
    task = classification_task(n=64, image_size=16)
    prompts = task.prompts()
    assert len(prompts) == 64 and all(len(p) == len(scenes.CLASS_TEMPLATES) == 5 for p in prompts)
    for name, per_class in zip(task.classnames, prompts):
        assert len(set(per_class)) == 5 and all(name in p for p in per_class)
    orange_star = prompts[task.classnames.index("orange star")]
    assert "an orange star." in orange_star and "a large orange star." in orange_star


# --- rendering ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [16, 48, 64])
def test_image_size_is_honoured(size):
    sample = EmbeddedScenes("train", n=2, seed=0, image_size=size)[1]
    assert sample.image.size == (size, size) and sample.image.mode == "RGB"
    assert scenes.render(sample.meta, size + 3).size == (size + 3, size + 3)


def test_objects_are_drawn_in_their_colour_where_the_scene_puts_them():
    size = 64
    source = EmbeddedScenes("train", n=150, seed=0, image_size=size)
    rings = 0
    for i in range(150):
        sample = source[i]
        pixels = _pixels(sample).astype(int)
        for obj in sample.meta["objects"]:
            colour = np.array(scenes.COLOURS[obj["colour"]])
            cx, cy, r = obj["x"] * size, obj["y"] * size, obj["r"] * size
            if obj["shape"] == "ring":  # the band between 0.6 r and r, sampled at 0.8 r
                if obj["size"] == "large":
                    rings += 1
                    point = pixels[int(cy), int(cx + 0.8 * r)]
                    assert np.abs(point - colour).max() <= COLOUR_TOLERANCE, (i, obj)
                continue
            row, col = int(cy), int(cx)
            # the large object's centre 3x3, a small one's centre pixel (thin star points)
            patch = pixels[row - 1:row + 2, col - 1:col + 2] if obj["size"] == "large" else pixels[row, col][None, None]
            assert np.abs(patch - colour).max() <= COLOUR_TOLERANCE, (i, obj)
            assert _nearest_colour(patch[0, 0]) == obj["colour"]
    assert rings > 5
