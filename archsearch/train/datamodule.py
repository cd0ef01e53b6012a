"""The LightningDataModule of full-size training: WebDataset shards (or any archsearch source),
optionally with a reinforced store for MobileCLIP's distillation, and a held-out validation source.

Resolution and context length default to the model's (its spec), so train.yaml states the
architecture once. The data order is a function of the seed and of the step a run (re)starts at:
a resumed run does not replay the samples its first part began with.
"""

from __future__ import annotations

from typing import Any, Optional

import lightning as L
import torch
from torch.utils.data import DataLoader

from archsearch.data.augment import AugmentConfig
from archsearch.errors import UserError
from archsearch.train.streams import CaptionStream, ReinforcedStream, ValidationStream


def store_teacher_dims(store) -> tuple[int, ...]:
    """The embedding width of each of a reinforced store's teachers (a store or its path; () for none)."""
    if store is None:
        return ()
    if isinstance(store, str):
        from archsearch.data.store import ReinforcedStore

        store = ReinforcedStore.open(store)
    return tuple(t.embed_dim for t in store.settings.teachers)


class ShardDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: Optional[str] = None,
        store: Optional[str] = None,
        val_source: Optional[str] = None,
        batch_size: int = 256,
        val_batch_size: Optional[int] = None,
        num_workers: int = 8,
        shuffle_buffer: int = 1000,
        crop_scale: tuple[float, float] = (0.9, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: float = 0.0,
        seed: int = 0,
        resolution: Optional[int] = None,
        context_length: Optional[int] = None,
    ):
        """`source`: training data, a reference `archsearch.data.readers.open_source` accepts
        (WebDataset shards: a .tar, a brace pattern or a folder of shards); may be left out with a
        `store`, whose recorded source is then read. `store`: a reinforced store (archsearch
        reinforce) for distillation. `batch_size` is per process (GPU). `crop_*`, `flip`:
        random-resized crop of plain (not reinforced) data; a store brings its own crops."""
        super().__init__()
        for name, value in (("batch_size", batch_size), ("shuffle_buffer", shuffle_buffer)):
            if value < 1:
                raise UserError(f"data.{name}: {value}; allowed: 1 or more")
        if num_workers < 0:
            raise UserError(f"data.num_workers: {num_workers}; allowed: 0 or more")
        if source is None and store is None:
            raise UserError("data.source: not set; allowed: WebDataset shards (a .tar, a brace pattern such as "
                            "/data/shards/{00000..00999}.tar, or a folder of shards), or set data.store")
        from archsearch.data.readers import open_source
        from archsearch.data.store import ReinforcedStore

        self.augment = AugmentConfig(scale=tuple(crop_scale), ratio=tuple(crop_ratio), flip=flip)
        # Opened here, so a wrong path fails before a trainer, logger or GPU is set up.
        self.source = open_source(source) if source else None
        self.store = ReinforcedStore.open(store) if store else None
        self.val_source = open_source(val_source) if val_source else None
        self.batch_size, self.val_batch_size = batch_size, val_batch_size or batch_size
        self.num_workers, self.shuffle_buffer, self.seed = num_workers, shuffle_buffer, seed
        self.resolution, self.context_length = resolution, context_length
        self.train_set: Optional[torch.utils.data.IterableDataset] = None
        self.val_set: Optional[ValidationStream] = None

    def _shape(self) -> tuple[int, int]:
        spec = getattr(self.trainer.lightning_module, "spec", None) if self.trainer else None
        resolution = self.resolution or (spec.resolution if spec else None)
        context = self.context_length or (spec.text.context_length if spec else None)
        if resolution is None or context is None:
            raise UserError("data.resolution and data.context_length: not set, and no model spec to take them from")
        return resolution, context

    def _check_loss(self) -> None:
        module = self.trainer.lightning_module if self.trainer else None
        loss = getattr(module, "loss_cfg", None)
        if loss is not None and self.store is None and (loss.kd_lambda > 0 or loss.captions != "real"):
            raise UserError(f"model.kd_lambda {loss.kd_lambda} / model.captions {loss.captions!r}: distillation and "
                            "synthetic captions need data.store (a reinforced store); "
                            "allowed without one: kd_lambda 0 and captions real")
        dims = getattr(module, "teacher_dims", None)
        if loss is not None and loss.kd_lambda > 0 and tuple(dims or ()) != store_teacher_dims(self.store):
            raise UserError(f"model.teacher_dims: {list(dims or ())}, but the store's teachers are "
                            f"{list(store_teacher_dims(self.store))} wide; allowed: the store's")

    def setup(self, stage: str) -> None:
        resolution, context = self._shape()
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        if stage == "fit":
            self._check_loss()
            if self.store is not None:
                from archsearch.data.dataset import ReinforcedIterableDataset
                from archsearch.data.readers import source_from_description

                source = self.source or source_from_description(self.store.settings.source)
                dataset = ReinforcedIterableDataset(self.store, source, resolution, context, seed=self.seed)
                self.train_set = ReinforcedStream(dataset, self.seed, rank, world, self.shuffle_buffer)
            else:
                self.train_set = CaptionStream(self.source, resolution, context, self.augment, self.seed, rank, world,
                                               self.shuffle_buffer)
        if self.val_source is not None and stage in ("fit", "validate"):
            self.val_set = ValidationStream(self.val_source, resolution, context, rank, world)
        elif stage == "validate":
            raise UserError("data.val_source: not set; validation needs held-out data (e.g. WebDataset shards)")

    def _loader(self, dataset, batch_size: int) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0,
                          drop_last=False)

    def train_dataloader(self) -> DataLoader:
        # A restarted run draws from where it restarted, not from the first step's samples again.
        self.train_set.start_step = self.trainer.global_step if self.trainer else 0
        return self._loader(self.train_set, self.batch_size)

    def val_dataloader(self) -> Any:
        return self._loader(self.val_set, self.val_batch_size) if self.val_set is not None else []

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """uint8 pixels -> float [0, 1] on the device (the model normalises them itself)."""
        if batch["image"].dtype == torch.uint8:
            batch["image"] = batch["image"].float().div_(255)
        return batch
