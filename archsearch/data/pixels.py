"""Pixel conventions shared by students, archsearch teachers and the stores.

Images travel as float tensors in [0, 1]; models trained here see them normalised with OpenAI
CLIP's mean and std (as MobileCLIP's S3/S4 and ViTamin do), applied at the model's door.
"""

from __future__ import annotations

import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from PIL import Image

_MEAN = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 [3, H, W] in [0, 1] (exact: uint8 / 255)."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> normalised with OpenAI CLIP's mean/std."""
    return (images - _MEAN.to(images.device, images.dtype)) / _STD.to(images.device, images.dtype)
