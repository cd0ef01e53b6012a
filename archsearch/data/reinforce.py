"""Multi-modal dataset reinforcement (MobileCLIP, DataCompDR): compute once, per sample, the views,
the synthetic captions and every teacher's embeddings of them, so training distils without running
a teacher.

Everything drawn for sample i is a function of (seed, i) alone, and teacher batches are aligned to
multiples of `batch_size` in the global sample order; so a resumed build, and a sharded build whose
shard boundaries fall on batch boundaries, write the very same bits as one uninterrupted build.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from archsearch.data.augment import AugmentConfig, replay, sample_params, sample_rng
from archsearch.data.captioner import Captioner
from archsearch.data.source import CaptionedImage, CaptionSource
from archsearch.data.store import ShardWriter, StoreSettings, TeacherInfo, encode_text, key_token
from archsearch.data.teacher import Teacher
from archsearch.errors import UserError


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N), with 0 <= i < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not int(match[1]) < int(match[2]):
        raise UserError(f"--shard: {text!r} is not i/N with 0 <= i < N, e.g. 0/1 (everything) or 3/8")
    return int(match[1]), int(match[2])


def caption_seed(seed: int, index: int) -> int:
    """The captioner's seed for sample `index`: a function of (seed, index) only."""
    return int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0])


@dataclass
class ReinforceReport:
    """What one `reinforce` call did; `timings` holds seconds per stage (source reading, replay,
    captioner, each teacher's image and text encoders, commits), which the throughput benchmark reports."""

    out: Path
    shard: tuple[int, int]
    processed: int
    completed: int
    shard_size: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def samples_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def _check_inputs(teachers: Sequence[Teacher], captioner: Captioner, augmentations: int, synthetic_captions: int,
                  seed: int, batch_size: int) -> None:
    if not teachers:
        raise UserError("reinforce: at least one teacher is needed (--teachers)")
    for teacher in teachers:
        if not isinstance(teacher, Teacher):
            raise UserError(f"reinforce: {teacher!r} does not implement archsearch.data.teacher.Teacher")
    ids = [t.id for t in teachers]
    if len(set(ids)) != len(ids):
        raise UserError(f"--teachers: each teacher must appear once, got {ids}")
    if not isinstance(captioner, Captioner):
        raise UserError(f"reinforce: {captioner!r} does not implement archsearch.data.captioner.Captioner")
    for name, value, low in (("--augmentations", augmentations, 1), ("--synthetic-captions", synthetic_captions, 1),
                             ("--batch-size", batch_size, 1), ("--seed", seed, 0)):
        if not isinstance(value, int) or value < low:
            raise UserError(f"{name}: {value!r} must be an integer >= {low}")


def _encoded(what: str, output: torch.Tensor, rows: int, dim: int) -> np.ndarray:
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (rows, dim):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise UserError(f"{what} returned {shape}, expected ({rows}, {dim}) (embed_dim {dim})")
    array = output.detach().float().cpu().numpy()
    if not np.isfinite(array).all():
        raise UserError(f"{what} returned non-finite embeddings")
    return array.astype(np.float16)


def _take(iterator, n: int, first: int, source_len: int) -> list[CaptionedImage]:
    samples = list(itertools.islice(iterator, n))
    if len(samples) != n:
        raise UserError(f"source ended after sample {first + len(samples) - 1}, but it says it has {source_len}")
    return samples


def reinforce(source: CaptionSource, teachers: Sequence[Teacher], captioner: Captioner, augmentations: int,
              synthetic_captions: int, out: str | Path, shard: tuple[int, int] = (0, 1), seed: int = 0,
              batch_size: int = 32, augment: AugmentConfig | None = None, progress: bool = True) -> ReinforceReport:
    """Build (or resume) shard `shard` = (i, N) of the store at `out` for `source`.

    Per sample: `augmentations` crop/flip rows, `synthetic_captions` captions, and per teacher the
    float16 embeddings of every view and of the real then synthetic captions. Progress is committed
    after each batch of samples, so a killed build resumes from its last commit; resuming with other
    settings than the store's manifest is refused.
    """
    _check_inputs(teachers, captioner, augmentations, synthetic_captions, seed, batch_size)
    index, num_shards = shard
    if not 0 <= index < num_shards:
        raise UserError(f"--shard: {index}/{num_shards} is not i/N with 0 <= i < N")
    num_samples = len(source)
    if num_samples < num_shards:
        raise UserError(f"--shard {index}/{num_shards}: the source has only {num_samples} samples")
    settings = StoreSettings(
        num_samples=num_samples, num_shards=num_shards, source=source.describe(),
        teachers=tuple(TeacherInfo(t.id, int(t.embed_dim), int(t.image_size)) for t in teachers),
        captioner=captioner.id, augmentations=augmentations, synthetic_captions=synthetic_captions, seed=seed,
        augment=augment or AugmentConfig())
    writer = ShardWriter.open(out, settings, index, batch_size)
    shard_size = writer.stop - writer.start
    done = resumed_at = writer.completed
    timings: dict[str, float] = defaultdict(float)
    started = time.perf_counter()

    bar = Progress(TextColumn("[bold]reinforce[/] shard {task.fields[shard]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]} samples/s"), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), disable=not progress)
    with bar:
        task = bar.add_task("", total=shard_size, completed=done, shard=f"{index}/{num_shards}", rate="-")
        samples_iter = source.iter_from(writer.start + done) if done < shard_size else iter(())
        while done < shard_size:
            first = writer.start + done
            last = min(writer.stop, (first // batch_size + 1) * batch_size)
            tick = time.perf_counter()
            batch = _take(samples_iter, last - first, first, num_samples)
            timings["source"] += time.perf_counter() - tick
            _reinforce_batch(batch, first, settings, teachers, captioner, writer, done, timings)
            done += len(batch)
            tick = time.perf_counter()
            writer.commit(done)
            timings["commit"] += time.perf_counter() - tick
            rate = (done - resumed_at) / (time.perf_counter() - started)
            bar.update(task, completed=done, rate=f"{rate:.1f}")
    seconds = time.perf_counter() - started
    return ReinforceReport(Path(out), shard, done - resumed_at, done, shard_size, seconds, dict(timings))


def _reinforce_batch(batch: list[CaptionedImage], first: int, settings: StoreSettings, teachers: Sequence[Teacher],
                     captioner: Captioner, writer: ShardWriter, row: int, timings: dict[str, float]) -> None:
    """Compute samples first..first+len(batch) and write them at shard row `row` (not yet committed)."""
    n, views, syn = len(batch), settings.augmentations, settings.synthetic_captions
    tick = time.perf_counter()
    aug = np.stack([sample_params(sample_rng(settings.seed, first + j), *s.image.size, settings.augment, views)
                    for j, s in enumerate(batch)])
    images = {size: torch.stack([replay(s.image, params, size) for s, rows in zip(batch, aug) for params in rows])
              for size in {t.image_size for t in teachers}}
    timings["replay"] += time.perf_counter() - tick

    tick = time.perf_counter()
    captions = []
    for j, sample in enumerate(batch):
        written = captioner.caption(sample, syn, caption_seed(settings.seed, first + j))
        if not isinstance(written, list) or len(written) != syn or not all(isinstance(c, str) for c in written):
            raise UserError(f"captioner {captioner.id!r} returned {written!r} for sample {first + j}, "
                            f"expected a list of {syn} strings")
        captions.append(written)
    timings["captioner"] += time.perf_counter() - tick
    texts = [text for sample, written in zip(batch, captions) for text in (sample.caption, *written)]

    rows = slice(row, row + n)
    for k, teacher in enumerate(teachers):
        dim = settings.teachers[k].embed_dim
        with torch.inference_mode():
            tick = time.perf_counter()
            image = _encoded(f"teacher {teacher.id!r} encode_image", teacher.encode_image(images[teacher.image_size]),
                             n * views, dim)
            timings[f"{teacher.id} image"] += time.perf_counter() - tick
            tick = time.perf_counter()
            text = _encoded(f"teacher {teacher.id!r} encode_text", teacher.encode_text(texts), n * (1 + syn), dim)
            timings[f"{teacher.id} text"] += time.perf_counter() - tick
        writer.arrays[f"teacher{k}_image"][rows] = image.reshape(n, views, dim)
        writer.arrays[f"teacher{k}_text"][rows] = text.reshape(n, 1 + syn, dim)
    writer.arrays["aug"][rows] = aug
    writer.arrays["keys"][rows] = [key_token(s.key, settings.key_bytes) for s in batch]
    writer.arrays["captions"][rows] = [[encode_text(c, settings.caption_bytes) for c in written]
                                       for written in captions]
