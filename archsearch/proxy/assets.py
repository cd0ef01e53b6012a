"""What a recipe's training needs before it starts, built once and cached under `runs/`:
the pixel cache of its source, its teachers (`teach`: local, shipped or trained), the reinforced store."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from archsearch.data.store import ReinforcedStore
from archsearch.errors import UserError
from archsearch.proxy.recipe import Recipe
from archsearch import workspace
from archsearch.proxy.training_data import cache_dir, json_digest, training_source
from archsearch.proxy.teach import teach

__all__ = ["cache_dir", "assets_lock", "ensure_store", "json_digest", "store_path", "teacher_refs", "training_source"]


def teacher_refs(recipe: Recipe, progress: bool = True) -> list[str]:
    """The recipe's teachers: its refs, or archsearch-trained ones (trained now if absent)."""
    if recipe.data.teachers:
        return list(recipe.data.teachers)
    return [str(path) for path in teach(recipe, progress=progress)]


def store_path(recipe: Recipe, teacher_ids: list[str]) -> Path:
    data = recipe.data
    key = {"source": data.source, "teachers": teacher_ids, "augmentations": data.augmentations,
           "synthetic": data.synthetic_captions, "captioner": data.captioner, "seed": recipe.seed}
    return workspace.resolve(data.store) / json_digest(key)


@contextlib.contextmanager
def assets_lock() -> Iterator[None]:
    """Hold the lock on this `runs/` tree's teachers and stores: proxy runs started side by side
    (a benchmark's workers, two `archsearch proxy` calls) wait for one builder instead of each
    training the same teachers and writing the same store."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir() / "assets.lock"):
        yield


def ensure_store(recipe: Recipe, progress: bool = True) -> Path:
    """The reinforced store for `recipe`, built (or resumed) if it is not complete yet; one process
    at a time (`assets_lock`)."""
    if recipe.data.store is None:
        raise UserError(f"recipe {recipe.name}: data.store is null, but loss.kd_lambda = {recipe.loss.kd_lambda} "
                        f"and loss.captions = {recipe.loss.captions!r} need a reinforced store")
    from archsearch.data.captioners import load_captioner
    from archsearch.data.reinforce import reinforce
    from archsearch.data.teachers import load_teachers

    with assets_lock():
        teachers = load_teachers(teacher_refs(recipe, progress))
        path = store_path(recipe, [t.id for t in teachers])
        manifest = path / "manifest.json"
        if manifest.is_file() and ReinforcedStore.open(path, allow_incomplete=True).is_complete:
            return path
        reinforce(training_source(recipe), teachers, load_captioner(recipe.data.captioner),
                  recipe.data.augmentations, recipe.data.synthetic_captions, path, seed=recipe.seed,
                  batch_size=64, progress=progress)
    return path
