"""Training examples as endless streams, split over DDP ranks and DataLoader workers.

Web-scale data is read in order (WebDataset shards), so every (rank, worker) "slot" reads its own
part: whole shards when there are at least as many shards as slots (each shard once per pass),
otherwise every slot reads all shards and keeps every n-th sample (correct, but each slot decodes
everything: give large runs at least ranks x workers shards). Indexable sources are split by index.
A stream never ends: it starts another pass, reshuffled, so the trainer's `max_steps` ends training
and every rank always has a next batch (DDP never waits on a rank that ran dry). Samples mix
through a buffer. Images travel as uint8 (the exact pixels: `to_tensor` is uint8 / 255), four
times less to buffer and to copy to the GPU; `ShardDataModule` turns them back into [0, 1] floats.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from archsearch.data.augment import AugmentConfig, replay, sample_params
from archsearch.data.dataset import ReinforcedIterableDataset
from archsearch.data.readers import WebDatasetSource
from archsearch.data.source import CaptionedImage, CaptionSource
from archsearch.errors import UserError
from archsearch.models.tokenizer import tokenize

STREAM_KEYS = ("image", "text", "syn_text", "teacher_image", "teacher_text", "teacher_syn_text")


@dataclass(frozen=True)
class Slot:
    """This process's share: slot `index` of `count` = ranks x DataLoader workers."""

    index: int
    count: int


def current_slot(rank: int, world_size: int) -> Slot:
    info = get_worker_info()
    workers, worker = (info.num_workers, info.id) if info else (1, 0)
    return Slot(rank * workers + worker, world_size * workers)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """[3, H, W] in [0, 1] made by `to_tensor` -> the uint8 pixels it came from, exactly."""
    return image.mul(255).round_().to(torch.uint8)


def shuffled(items: Iterator[Any], buffer: int, rng: np.random.Generator) -> Iterator[Any]:
    """Items in a random order, holding at most `buffer` at a time (webdataset's shuffle)."""
    pool: list[Any] = []
    for item in items:
        if len(pool) < buffer:
            pool.append(item)
            continue
        i = int(rng.integers(len(pool)))
        pool[i], item = item, pool[i]
        yield item
    rng.shuffle(pool)
    yield from pool


def slot_samples(source: CaptionSource, slot: Slot, rng: np.random.Generator,
                 shuffle: bool = True) -> Iterator[tuple[int, CaptionedImage]]:
    """One pass over this slot's share of `source`, as (position in source, sample)."""
    if isinstance(source, WebDatasetSource) and len(source.urls) >= slot.count:
        urls = source.urls[slot.index::slot.count]
        order = rng.permutation(len(urls)) if shuffle else range(len(urls))
        for shard in order:  # positions are per shard here; only their existence matters
            yield from enumerate(WebDatasetSource([urls[shard]]))
    elif hasattr(type(source), "__getitem__"):
        indices = np.arange(slot.index, len(source), slot.count)
        for i in rng.permutation(indices) if shuffle else indices:
            yield int(i), source[int(i)]
    else:
        yield from ((i, s) for i, s in enumerate(source) if i % slot.count == slot.index)


def _passes(slot: Slot, seed: int, start_step: int, make_pass) -> Iterator[dict[str, Any]]:
    for epoch in itertools.count():
        rng = np.random.default_rng([seed, start_step, slot.index, epoch])
        count = 0
        for example in make_pass(epoch, rng):
            count += 1
            yield example
        if count == 0:
            raise UserError(f"data: slot {slot.index} of {slot.count} (ranks x workers) got no samples; "
                            "use fewer data.num_workers or more data")


class CaptionStream(IterableDataset):
    """Endless (random-resized crop, real caption tokens) examples from a caption source."""

    def __init__(self, source: CaptionSource, resolution: int, context_length: int, augment: AugmentConfig,
                 seed: int, rank: int = 0, world_size: int = 1, shuffle_buffer: int = 1000):
        self.source, self.resolution, self.context_length, self.augment = source, resolution, context_length, augment
        self.seed, self.rank, self.world_size, self.shuffle_buffer = seed, rank, world_size, shuffle_buffer
        self.start_step = 0  # the step the run (re)started at: part of every draw

    def example(self, sample: CaptionedImage, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        params = sample_params(rng, *sample.image.size, self.augment, 1)[0]
        return {"image": to_uint8(replay(sample.image, params, self.resolution)),
                "text": tokenize(sample.caption, self.context_length)[0]}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slot = current_slot(self.rank, self.world_size)

        def one_pass(epoch: int, rng: np.random.Generator):
            examples = (self.example(s, rng) for _, s in slot_samples(self.source, slot, rng))
            return shuffled(examples, self.shuffle_buffer, rng)
        return _passes(slot, self.seed, self.start_step, one_pass)


class ReinforcedStream(IterableDataset):
    """Endless reinforced examples: stored views replayed, real and synthetic caption tokens, and
    the teachers' embeddings of exactly those (concatenated, [sum D_k], as the loss takes them with
    the store's teacher widths). Each slot reads a contiguous slice of the source (the store is
    keyed by source position and checks every key)."""

    def __init__(self, dataset: ReinforcedIterableDataset, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle_buffer: int = 1000):
        self.dataset, self.seed, self.rank, self.world_size = dataset, seed, rank, world_size
        self.shuffle_buffer = shuffle_buffer
        self.start_step = 0  # the step the run (re)started at: part of every draw

    def example(self, index: int, sample: CaptionedImage) -> dict[str, torch.Tensor]:
        raw = self.dataset.example(index, sample)
        out = {key: raw[key] for key in STREAM_KEYS}
        out["image"] = to_uint8(out["image"])
        return out

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slot = current_slot(self.rank, self.world_size)
        n = len(self.dataset)
        # The store's choice of view and synthetic caption is a function of (seed, epoch, index).
        self.dataset.seed = int(np.random.SeedSequence([self.seed, self.start_step]).generate_state(1)[0])
        start, stop = slot.index * n // slot.count, (slot.index + 1) * n // slot.count

        def one_pass(epoch: int, rng: np.random.Generator):
            self.dataset.set_epoch(epoch)
            samples = zip(range(start, stop), self.dataset.source.iter_from(start))
            return shuffled((self.example(i, s) for i, s in samples), self.shuffle_buffer, rng)
        return _passes(slot, self.seed, self.start_step, one_pass)


class ValidationStream(IterableDataset):
    """One ordered pass of centre crops and caption tokens; slots take every n-th sample, so ranks
    get equal shares (up to one)."""

    def __init__(self, source: CaptionSource, resolution: int, context_length: int, rank: int = 0,
                 world_size: int = 1):
        self.source, self.resolution, self.context_length = source, resolution, context_length
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        slot = current_slot(self.rank, self.world_size)
        for i, sample in enumerate(self.source):
            if i % slot.count != slot.index:
                continue
            width, height = sample.image.size
            side = min(width, height)
            box = np.array([(height - side) // 2, (width - side) // 2, side, side, 0], dtype=np.float32)
            yield {"image": to_uint8(replay(sample.image, box, self.resolution)),
                   "text": tokenize(sample.caption, self.context_length)[0]}
