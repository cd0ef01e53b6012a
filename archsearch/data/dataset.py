"""Training examples from a reinforced store and its source: one stored view replayed on the source
image, the real and one synthetic caption as tokens, and every teacher's embeddings of exactly those.

Teacher embeddings come concatenated, float32 [sum of D_k], in the manifest's teacher order, whether
or not the teachers share a width; `teacher_dims` splits them (`split_teachers`) for a distillation
loss that softmaxes each teacher on its own.

`ReinforcedDataset` needs a source that can be indexed (`source[i]`, as the embedded scenes and
folder sources allow); a source that can only be read in order (WebDataset shards) goes through
`ReinforcedIterableDataset`, which zips the source with the store by position and checks the keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from archsearch.data.augment import AugmentConfig, replay, sample_params
from archsearch.data.captioner import Captioner
from archsearch.data.source import CaptionedImage, CaptionSource
from archsearch.data.store import ReinforcedStore, key_token
from archsearch.errors import UserError
from archsearch.models.tokenizer import tokenize


def split_teachers(embeddings: torch.Tensor, dims: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """[..., sum D_k] -> one [..., D_k] per teacher."""
    return torch.split(embeddings, list(dims), dim=-1)


class _Reinforced:
    """What both dataset kinds share: choosing a view and a caption, and assembling the example."""

    def __init__(self, store: ReinforcedStore | str | Path, source: CaptionSource, resolution: int,
                 context_length: int, seed: int | None, view: int | None, synthetic: int | None):
        self.store = store if isinstance(store, ReinforcedStore) else ReinforcedStore.open(store)
        settings = self.store.settings
        if len(source) != settings.num_samples:
            raise UserError(f"{self.store.path}: the store has {settings.num_samples} samples but the source "
                            f"{source.describe()} has {len(source)}; it was built from another source")
        if not isinstance(resolution, int) or resolution < 1:
            raise UserError(f"resolution: {resolution!r} must be a positive integer")
        for name, value, count in (("view", view, settings.augmentations),
                                   ("synthetic", synthetic, settings.synthetic_captions)):
            if value is not None and not 0 <= value < count:
                raise UserError(f"{name}: {value} is out of range; the store has {count} per sample")
        self.source, self.resolution, self.context_length = source, resolution, context_length
        self.seed, self.view, self.synthetic = seed, view, synthetic
        self.teacher_dims = tuple(t.embed_dim for t in settings.teachers)
        self.epoch = 0
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """With a fixed `seed`, each epoch draws other views (the choice is a function of seed, epoch, index)."""
        self.epoch = epoch

    def _choice_rng(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index, 2]))
        # No seed: a generator per worker process, from the seed torch gives that worker (which the
        # DataLoader redraws every epoch), so workers never repeat each other's choices.
        info = get_worker_info()
        owner = (os.getpid(), info.id if info else -1)
        if self._rng is None or self._rng_owner != owner:
            self._rng, self._rng_owner = np.random.default_rng(torch.initial_seed()), owner
        return self._rng

    def example(self, index: int, sample: CaptionedImage, view: int | None = None,
                synthetic: int | None = None) -> dict[str, Any]:
        """The example for source sample `index` with stored view `view` and synthetic caption
        `synthetic` (each drawn at random when None and not fixed on the dataset)."""
        stored = self.store[index]
        if key_token(sample.key, self.store.settings.key_bytes).decode("utf-8", errors="replace") != stored.key:
            raise UserError(f"{self.store.path}: sample {index} of the source has key {sample.key!r}, the store "
                            f"has {stored.key!r}; the source's order or content changed")
        settings = self.store.settings
        view = self.view if view is None else view
        synthetic = self.synthetic if synthetic is None else synthetic
        if view is None or synthetic is None:
            rng = self._choice_rng(index)
            view = int(rng.integers(settings.augmentations)) if view is None else view
            synthetic = int(rng.integers(settings.synthetic_captions)) if synthetic is None else synthetic

        def teachers(rows: Sequence[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(rows).astype(np.float32))

        return {
            "index": index, "view": view, "synthetic": synthetic,
            "image": replay(sample.image, stored.aug[view], self.resolution),
            "text": tokenize(sample.caption, self.context_length)[0],
            "syn_text": tokenize(stored.captions[synthetic], self.context_length)[0],
            "teacher_image": teachers([e[view] for e in stored.image_embeddings]),
            "teacher_text": teachers([e[0] for e in stored.text_embeddings]),
            "teacher_syn_text": teachers([e[1 + synthetic] for e in stored.text_embeddings]),
        }


class ReinforcedDataset(_Reinforced, Dataset):
    """Random access over (store, indexable source).

    Each item: `image` float [3, R, R] in [0, 1]; `text`, `syn_text` long [context_length];
    `teacher_image`, `teacher_text`, `teacher_syn_text` float32 [sum D_k]; and the `index`, `view`
    and `synthetic` (caption) it used. `seed=None` draws view and caption per call from a per-worker
    generator; a seed makes the draw a function of (seed, epoch, index); `view`/`synthetic` fix them.
    """

    def __init__(self, store: ReinforcedStore | str | Path, source: CaptionSource, resolution: int,
                 context_length: int = 77, seed: int | None = None, view: int | None = None,
                 synthetic: int | None = None):
        if not hasattr(type(source), "__getitem__"):
            raise UserError(f"source {source.describe()} cannot be indexed; read it in order with "
                            f"ReinforcedIterableDataset")
        super().__init__(store, source, resolution, context_length, seed, view, synthetic)

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        return self.example(index, self.source[index])


class ReinforcedIterableDataset(_Reinforced, IterableDataset):
    """In-order reading for sources without random access: the source and the store advance together
    and every key is checked. DataLoader workers each read a contiguous slice (via `iter_from`)."""

    def __init__(self, store: ReinforcedStore | str | Path, source: CaptionSource, resolution: int,
                 context_length: int = 77, seed: int | None = None, view: int | None = None,
                 synthetic: int | None = None):
        super().__init__(store, source, resolution, context_length, seed, view, synthetic)

    def __len__(self) -> int:
        return len(self.store)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        start, stop = worker * len(self) // workers, (worker + 1) * len(self) // workers
        index = start
        for index, sample in zip(range(start, stop), self.source.iter_from(start)):
            yield self.example(index, sample)
            index += 1
        if index != stop:
            raise UserError(f"source {self.source.describe()} ended after {index} samples, the store has {len(self)}")


class AugmentedDataset(Dataset):
    """Fresh random views of an indexable source, without a store: plain CLIP training (the
    baseline a reinforced run is compared with) and the training of archsearch's own teachers.

    Each item: `image` [3, R, R] in [0, 1], `text` (the real caption's tokens) and, given a
    captioner, `syn_text` (one of its captions, drawn per call).
    """

    def __init__(self, source: CaptionSource, resolution: int, context_length: int = 77,
                 augment: AugmentConfig | None = None, captioner: Captioner | None = None,
                 synthetic_captions: int = 5):
        if not hasattr(type(source), "__getitem__"):
            raise UserError(f"source {source.describe()} cannot be indexed; fresh-view training needs random access")
        self.source, self.resolution, self.context_length = source, resolution, context_length
        self.augment = augment or AugmentConfig()
        self.captioner, self.synthetic_captions = captioner, synthetic_captions
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.source)

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        owner = (os.getpid(), info.id if info else -1)
        if self._rng is None or self._rng_owner != owner:
            self._rng, self._rng_owner = np.random.default_rng(torch.initial_seed()), owner
        return self._rng

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.source[index]
        rng = self._generator()
        params = sample_params(rng, *sample.image.size, self.augment, 1)[0]
        item = {"image": replay(sample.image, params, self.resolution),
                "text": tokenize(sample.caption, self.context_length)[0]}
        if self.captioner is not None:
            captions = self.captioner.caption(sample, self.synthetic_captions, int(rng.integers(2**31)))
            item["syn_text"] = tokenize(captions[int(rng.integers(len(captions)))], self.context_length)[0]
        return item
