"""`TrainModule`: the shared `ClipModule` (`archsearch.training`) on a full-size spec, configured by flat arguments.

LightningCLI builds modules from ``__init__`` signatures, so the recipe's nested `TrainConfig` /
`LossConfig` are spelled out here as plain arguments (``--model.lr 1e-3``) and validated by
those models. The architecture is a preset name, an arch file, or the spec itself as a mapping
(what `archsearch export` writes into train.yaml, so the file is self-contained and checkpoints
carry the architecture in their hyper-parameters). Adds a held-out validation.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from pydantic import ValidationError

from archsearch.data.pixels import normalize
from archsearch.errors import UserError
from archsearch.training.module import ClipModule
from archsearch.training.config import LossConfig, TrainConfig
from archsearch.spec.arch import ArchSpec
from archsearch.spec.io import format_validation_error, resolve_arch, spec_from_mapping


def resolve_spec(arch: Union[str, dict]) -> ArchSpec:
    if isinstance(arch, dict):
        return spec_from_mapping(arch, "model.arch")
    if isinstance(arch, str):
        return resolve_arch(arch)[0]
    raise UserError(f"model.arch: got {type(arch).__name__}; allowed: a preset name, an arch.yaml/.json path "
                    "or the spec as a mapping")


def _validated(model, values: dict, where: str):
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, where, model)) from None


class TrainModule(ClipModule):
    def __init__(
        self,
        arch: Union[str, dict],
        steps: int = 30000,
        lr: float = 1e-3,
        weight_decay: float = 0.2,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 1000,
        kd_lambda: float = 0.0,
        teacher_logit_scale: float = 100.0,
        captions: str = "real",
        teacher_dims: Optional[list[int]] = None,
    ):
        """`steps`: the length of the warm-up + cosine schedule (train.yaml links it to the
        trainer's max_steps). `kd_lambda`, `captions`: MobileCLIP's loss mix (see
        `archsearch.training.loss`); anything but 0 / 'real' needs a reinforced store.
        `teacher_dims`: the store's teacher widths (`archsearch train` takes them from data.store)."""
        spec = resolve_spec(arch)
        train = _validated(TrainConfig, {"steps": steps, "lr": lr, "weight_decay": weight_decay, "betas": betas,
                                         "warmup_steps": warmup_steps}, "model")
        loss = _validated(LossConfig, {"kd_lambda": kd_lambda, "teacher_logit_scale": teacher_logit_scale,
                                       "captions": captions}, "model")
        super().__init__(spec, train, loss, teacher_dims=tuple(teacher_dims or ()))
        self.save_hyperparameters()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Contrastive loss and image<->text top-1 within each validation batch."""
        image = self.model.encode_image(normalize(batch["image"]), normalize=True)
        text = self.model.encode_text(batch["text"], normalize=True)
        logits = self.model.logit_scale.exp() * image @ text.T
        truth = torch.arange(logits.shape[0], device=logits.device)
        loss = (F.cross_entropy(logits, truth) + F.cross_entropy(logits.T, truth)) / 2
        size = logits.shape[0]
        self.log("val/loss", loss, sync_dist=True, batch_size=size)
        self.log("val/i2t_top1_in_batch", (logits.argmax(1) == truth).float().mean(), sync_dist=True, batch_size=size)
        self.log("val/t2i_top1_in_batch", (logits.argmax(0) == truth).float().mean(), sync_dist=True, batch_size=size)
        return loss
