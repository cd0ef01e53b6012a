"""The LightningModule every training here uses: proxies, teachers and full-scale `train`."""

from __future__ import annotations

import math
from typing import Sequence

import lightning as L
import torch

from archsearch.data.pixels import normalize
from archsearch.models.clip import build_clip
from archsearch.models.init import set_layer_scale
from archsearch.training.loss import ReinforcedClipLoss
from archsearch.training.config import LossConfig, TrainConfig
from archsearch.spec.arch import ArchSpec

MAX_LOGIT_SCALE = math.log(100)  # open_clip clamps the learned temperature at 100


def _to_channels_last(module, args):
    return (args[0].contiguous(memory_format=torch.channels_last),)


def _channels_last_stages(visual: torch.nn.Module) -> None:
    """Run the stages channels-last: oneDNN's depthwise convolutions (RepMixer, ConvFFN) train
    1.3-1.5x faster so on CPU (measured on the MCi proxies; ViTamin's MBConv gains nothing). The
    stem stays NCHW: with torch 2.14 the backward of its 3-channel 1x1 stride-2 conv segfaults in
    channels-last."""
    visual.stages.to(memory_format=torch.channels_last)
    visual.stages.register_forward_pre_hook(_to_channels_last)


class NonFiniteLoss(RuntimeError):
    """Training diverged; the message says at which step and which loss part."""


class ClipModule(L.LightningModule):
    """A CLIP built from `spec`, trained with MobileCLIP's loss on batches of
    `image`, `text` (real caption tokens), and, as the loss needs them, `syn_text` and the teacher
    embeddings `teacher_image`, `teacher_text`, `teacher_syn_text` ([B, K, D])."""

    def __init__(self, spec: ArchSpec, train: TrainConfig, loss: LossConfig, teacher_dims: Sequence[int] = (),
                 layer_scale_init: float | None = None):
        super().__init__()
        self.spec, self.train_cfg, self.loss_cfg, self.teacher_dims = spec, train, loss, tuple(teacher_dims)
        self.model = build_clip(spec)
        if layer_scale_init is not None:  # a proxy's own start (ScaleDown.layer_scale_init); builds keep 1e-5
            set_layer_scale(self.model, layer_scale_init)
        if any(stage.mixer == "repmixer" for stage in spec.image.stages):
            _channels_last_stages(self.model.visual)
        self.criterion = ReinforcedClipLoss(loss.kd_lambda, loss.teacher_logit_scale)
        self.caption_sets = {"real": [("text", "teacher_text")], "synthetic": [("syn_text", "teacher_syn_text")],
                             "both": [("text", "teacher_text"), ("syn_text", "teacher_syn_text")]}[loss.captions]

    def setup(self, stage: str) -> None:
        self.criterion.rank, self.criterion.world_size = self.global_rank, self.trainer.world_size
        self.criterion.clip.rank, self.criterion.clip.world_size = self.global_rank, self.trainer.world_size

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        image = self.model.encode_image(normalize(batch["image"]), normalize=True)
        # One text forward for all caption sets: fewer, larger kernels.
        tokens = torch.cat([batch[key] for key, _ in self.caption_sets])
        texts = self.model.encode_text(tokens, normalize=True).split(image.shape[0])
        scale = self.model.logit_scale.exp()
        total, parts = image.new_zeros(()), {}
        for (key, teacher_key), text in zip(self.caption_sets, texts):
            out = self.criterion(image, text, scale, batch.get("teacher_image"), batch.get(teacher_key),
                                 self.teacher_dims)
            total = total + out["loss"]
            for name, value in out.items():
                parts[f"{key}/{name}"] = value.detach()
        if not torch.isfinite(total):
            bad = ", ".join(f"{k}={v.item():.4g}" for k, v in parts.items())
            raise NonFiniteLoss(f"non-finite loss at step {self.global_step}: {bad}")
        self.log("train/loss", total.detach(), prog_bar=True)
        self.log("train/logit_scale", scale.detach())
        self.log_dict({f"train/{k}": v for k, v in parts.items()})
        return total

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

    def configure_optimizers(self):
        cfg = self.train_cfg
        # As open_clip: no weight decay on gains, biases, embeddings of scalars and the temperature.
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            (no_decay if param.ndim < 2 or "logit_scale" in name or "scale" in name.split(".")[-1] else decay).append(param)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=cfg.lr, betas=cfg.betas, eps=1e-6)

        def warmup_cosine(step: int) -> float:
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
