"""MobileCLIP's reinforced loss: CLIP contrastive loss plus distillation from a teacher ensemble.

For one batch of (image, caption) pairs:
    L = (1 - lambda) * CLIP + lambda * (KD_i2t + KD_t2i) / 2
where KD is the cross-entropy from the teachers' similarity distribution (each teacher softmaxed
at its fixed logit scale, the probabilities averaged over teachers) to the student's, row-wise
(image -> text) and column-wise (text -> image). It equals the KL divergence up to the teachers'
entropy, which has no gradient. The contrastive part is open_clip's `ClipLoss`, which also does
the cross-GPU feature gathering under DDP.
"""

from __future__ import annotations

from typing import Sequence

import torch
from open_clip.loss import ClipLoss, gather_features
from torch import nn


class ReinforcedClipLoss(nn.Module):
    def __init__(self, kd_lambda: float, teacher_logit_scale: float = 100.0, rank: int = 0, world_size: int = 1):
        super().__init__()
        self.kd_lambda, self.teacher_logit_scale = kd_lambda, teacher_logit_scale
        self.rank, self.world_size = rank, world_size
        self.clip = ClipLoss(local_loss=False, gather_with_grad=True, rank=rank, world_size=world_size)

    def forward(self, image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor,
                teacher_image: torch.Tensor | None = None, teacher_text: torch.Tensor | None = None,
                teacher_dims: Sequence[int] = ()) -> dict[str, torch.Tensor]:
        """`image`, `text`: normalised student features [B, D]; `teacher_*`: every teacher's
        normalised embedding concatenated, [B, sum(teacher_dims)], as the reinforced store keeps them.

        Returns the total and its parts (for logging).
        """
        contrastive = self.clip(image, text, logit_scale) if self.kd_lambda < 1 else image.new_zeros(())
        if self.kd_lambda == 0:
            return {"loss": contrastive, "contrastive": contrastive}
        if teacher_image is None or teacher_text is None or not teacher_dims:
            raise ValueError("kd_lambda > 0 needs teacher embeddings")
        if self.world_size > 1:
            image, text = gather_features(image, text, gather_with_grad=True, rank=self.rank, world_size=self.world_size)
            teacher_image, teacher_text = gather_features(teacher_image, teacher_text, rank=self.rank,
                                                          world_size=self.world_size)
        student = logit_scale * image @ text.T
        with torch.no_grad():
            p_i2t = p_t2i = 0.0
            for t_image, t_text in zip(teacher_image.float().split(list(teacher_dims), dim=1),
                                       teacher_text.float().split(list(teacher_dims), dim=1)):
                logits = self.teacher_logit_scale * t_image @ t_text.T
                p_i2t = p_i2t + logits.softmax(dim=1) / len(teacher_dims)
                p_t2i = p_t2i + logits.softmax(dim=0) / len(teacher_dims)
        kd_i2t = -(p_i2t * student.log_softmax(dim=1)).sum(1).mean()
        kd_t2i = -(p_t2i * student.log_softmax(dim=0)).sum(0).mean()
        distill = (kd_i2t + kd_t2i) / 2
        total = (1 - self.kd_lambda) * contrastive + self.kd_lambda * distill
        return {"loss": total, "contrastive": contrastive, "distill": distill}
