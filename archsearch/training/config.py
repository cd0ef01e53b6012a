"""What a training is told: its schedule and optimiser (`TrainConfig`) and its loss (`LossConfig`),
shared by proxies, teachers and full-scale training; recipes (`archsearch.proxy.recipe`) hold them."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveInt


class StrictModel(BaseModel):
    """Frozen, and an unknown field is an error rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TrainConfig(StrictModel):
    steps: PositiveInt = 300
    batch_size: PositiveInt = 128
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = Field(30, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    precision: Literal["32-true", "bf16-mixed", "16-mixed"] = "32-true"
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    devices: PositiveInt = 1
    num_nodes: PositiveInt = 1
    strategy: Literal["auto", "ddp"] = "auto"
    threads: Optional[PositiveInt] = Field(None, description="torch intra-op threads (None: torch's default)")
    seed: Optional[int] = Field(None, description="the student's seed (initialisation, batch order); None: the "
                                                 "recipe's seed. Varies a training without rebuilding teachers "
                                                 "and store, which follow the recipe's seed")


class LossConfig(StrictModel):
    """MobileCLIP: (1 - lambda) CLIP + lambda * (KD image->text + KD text->image) / 2, on the real
    caption batch and on the synthetic caption batch, summed."""

    kd_lambda: float = Field(1.0, ge=0, le=1)
    teacher_logit_scale: float = Field(100.0, gt=0)
    captions: Literal["real", "synthetic", "both"] = "both"
