"""One Lightning fit of a CLIP on a dataset: the loop proxies and teachers share."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from archsearch.choices import WandbMode
from archsearch.training.module import ClipModule
from archsearch.training.config import LossConfig, TrainConfig
from archsearch.spec.arch import ArchSpec


# Lightning's banner lines (accelerators found, tips) would bury a proxy's one-line result.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def make_logger(mode: WandbMode, root: Path, name: str, config: dict[str, Any]):
    """wandb (offline unless asked) with the spec, recipe and metrics; `disabled` logs nothing."""
    if mode == "disabled":
        return False
    from lightning.pytorch.loggers import WandbLogger

    root.mkdir(parents=True, exist_ok=True)
    return WandbLogger(name=name, save_dir=str(root), offline=mode == "offline", config=config,
                       project="archsearch", settings={"silent": True})


class TrainLossTail(L.Callback):
    """The mean training loss over the last `share` of the steps: Ru et al.'s training-speed
    estimate (TSE-E), a continuous score that ranks short runs more stably than a coarse top-1."""

    def __init__(self, steps: int, share: float = 0.25):
        self.first = steps - max(1, round(steps * share))
        self.total, self.count = 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.first:  # global_step already counts this batch's update
            self.total += float(outputs["loss"] if isinstance(outputs, dict) else outputs)
            self.count += 1

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")


def fit(spec: ArchSpec, dataset: Dataset, train: TrainConfig, loss: LossConfig, *, seed: int,
        teacher_dims: tuple[int, ...] = (), logger=False, progress: bool = True,
        root: Path | None = None, num_workers: int = 0,
        callbacks: Sequence[L.Callback] = (),
        layer_scale_init: float | None = None) -> tuple[ClipModule, dict[str, float]]:
    """Train `spec` for `train.steps` steps; returns the module and timing figures."""
    if train.threads:
        torch.set_num_threads(train.threads)
    L.seed_everything(seed, workers=True, verbose=False)
    module = ClipModule(spec, train, loss, teacher_dims, layer_scale_init)
    shuffle = not isinstance(dataset, IterableDataset)  # in-order sources shuffle by shard, upstream
    loader = DataLoader(dataset, batch_size=train.batch_size, shuffle=shuffle, drop_last=True,
                        num_workers=num_workers, persistent_workers=num_workers > 0,
                        generator=torch.Generator().manual_seed(seed))
    if len(loader) == 0:
        raise ValueError(f"the dataset has {len(dataset)} samples, fewer than one batch of {train.batch_size}")
    trainer = L.Trainer(max_steps=train.steps, accelerator=train.accelerator, devices=train.devices,
                        num_nodes=train.num_nodes, strategy=train.strategy, precision=train.precision,
                        gradient_clip_val=train.grad_clip, logger=logger, enable_checkpointing=False,
                        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
                        log_every_n_steps=10, default_root_dir=str(root) if root else None,
                        callbacks=[*callbacks, tail := TrainLossTail(train.steps)])
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(LeafSpec|num_workers|does not have many workers).*")
        trainer.fit(module, loader)
    seconds = time.perf_counter() - started
    images = trainer.global_step * train.batch_size
    return module, {"train_seconds": seconds, "steps": trainer.global_step,
                    "images_per_second": images / seconds if seconds else 0.0, "train_loss_tail": tail.value}
