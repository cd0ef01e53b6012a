"""A recipe's training source, read through the pixel cache, and the digest that names cached assets.

Both the teachers (`teach`) and the store and proxy runs (`assets`, `run`) need them, so they
live below either, and the two rooms import them from here rather than from each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from archsearch import workspace
from archsearch.data.pixel_cache import PixelCache
from archsearch.data.readers import open_source
from archsearch.data.source import CaptionSource
from archsearch.proxy.recipe import Recipe


def cache_dir() -> Path:
    """The workspace's cache: rendered pixels and the assets lock."""
    return workspace.under("cache")


def json_digest(value) -> str:
    """A short, stable hash of a JSON-able value: the names of cached teachers, stores and proxy scores."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def training_source(recipe: Recipe) -> CaptionSource:
    """The recipe's source; an indexable one is read through a pixel cache (decoded once)."""
    source = open_source(recipe.data.source)
    if hasattr(type(source), "__getitem__"):
        return PixelCache(source, cache_dir())
    return source
