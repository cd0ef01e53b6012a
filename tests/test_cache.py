"""Pixel cache and fresh-view dataset: the training side's fast path must not change a single pixel."""

import numpy as np
import torch

from archsearch.data.pixel_cache import PixelCache
from archsearch.data.captioners import load_captioner
from archsearch.data.dataset import AugmentedDataset
from archsearch.data.embedded import EmbeddedScenes


def test_cache_returns_the_sources_samples_exactly(tmp_path):
    source = EmbeddedScenes("train", n=40, seed=3, image_size=32)
    cache = PixelCache(source, tmp_path)
    assert len(cache) == 40 and cache.describe() == source.describe()
    for i in (0, 17, 39):
        cached, fresh = cache[i], source[i]
        assert np.array_equal(np.asarray(cached.image), np.asarray(fresh.image))
        assert (cached.key, cached.caption, cached.meta) == (fresh.key, fresh.caption, fresh.meta)
    assert [s.key for s in cache.iter_from(38)] == ["train-0000038", "train-0000039"]
    reopened = PixelCache(source, tmp_path)  # reuses the files: no second render
    assert reopened.path == cache.path and len(list(tmp_path.iterdir())) == 2


def test_cache_is_keyed_by_the_source_description(tmp_path):
    a = PixelCache(EmbeddedScenes("train", n=8, seed=0, image_size=32), tmp_path)
    b = PixelCache(EmbeddedScenes("train", n=8, seed=1, image_size=32), tmp_path)
    assert a.path != b.path
    assert not np.array_equal(np.asarray(a[0].image), np.asarray(b[0].image))


def test_augmented_dataset_draws_views_and_synthetic_captions(tmp_path):
    source = PixelCache(EmbeddedScenes("train", n=16, image_size=48), tmp_path)
    torch.manual_seed(0)
    dataset = AugmentedDataset(source, 32, 24, captioner=load_captioner("procedural"), synthetic_captions=3)
    item = dataset[5]
    assert item["image"].shape == (3, 32, 32) and 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["text"].shape == (24,) and item["syn_text"].shape == (24,)
    again = dataset[5]
    assert not torch.equal(item["image"], again["image"])  # a fresh view per call
    plain = AugmentedDataset(source, 32, 24)
    assert set(plain[0]) == {"image", "text"}
