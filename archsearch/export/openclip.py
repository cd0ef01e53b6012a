"""An ArchSpec as an OpenCLIP model config, and archsearch weights as an OpenCLIP state dict.

The file is what ``open_clip.create_model("local-dir:DIR")`` reads (``open_clip_config.json``
with ``model_cfg`` and ``preprocess_cfg``, as on the Hugging Face hub); ``model_cfg`` alone is an
ordinary config for ``open_clip.factory`` (the keys of open_clip's own ``model_configs``).

* Image tower: ``timm_model_name`` is the tower's timm name (`timm_registry`), built by
  ``timm.create_model(name, num_classes=embed_dim, global_pool=pool)`` (``timm_proj: null``), so
  the projection, with or without bias, is archsearch's own: the head matches exactly.
* Text tower: OpenCLIP's `TextTransformer` is a stack of transformer blocks; a spec whose text
  layers are all ``attention`` maps onto ``text_cfg``. Text-RepMixer layers (MobileCLIP-S0's
  hybrid) have no OpenCLIP spelling, and OpenCLIP declined adding one, so such a spec has no config.
* ``custom_text: true`` keeps the text tower under ``text.`` (OpenCLIP's `CustomTextCLIP`), the
  prefix archsearch uses, so weights map by renaming ``visual.`` to ``visual.trunk.`` only.
"""

from __future__ import annotations

from typing import Mapping

import torch

from archsearch.errors import UserError
from archsearch.spec.arch import ArchSpec

CONFIG_FILE = "open_clip_config.json"


def text_unsupported(spec: ArchSpec) -> str | None:
    """Why OpenCLIP cannot express `spec`'s text tower, or None if it can."""
    mixers = sorted(set(spec.text.layers) - {"attention"})
    if not mixers:
        return None
    return (f"the text tower mixes {', '.join(mixers)} layers with attention "
            f"({', '.join(spec.text.layers)}); OpenCLIP's text tower is transformer blocks only, "
            "so no OpenCLIP config can describe it")


def model_config(spec: ArchSpec) -> dict:
    """The OpenCLIP model config (``embed_dim``, ``vision_cfg``, ``text_cfg``, ``custom_text``)."""
    from archsearch.export.timm_registry import timm_name

    reason = text_unsupported(spec)
    if reason:
        raise UserError(f"open_clip config: {reason}; allowed: text.layers all 'attention'")
    text = spec.text
    return {
        "embed_dim": spec.embed_dim,
        "vision_cfg": {
            "timm_model_name": timm_name(spec),
            "timm_model_pretrained": False,
            "timm_pool": spec.image.head.pool,
            "timm_proj": None,
            "image_size": spec.resolution,
        },
        "text_cfg": {
            "context_length": text.context_length,
            "vocab_size": text.vocab_size,
            "width": text.width,
            "heads": text.heads,
            "layers": len(text.layers),
            "mlp_ratio": text.mlp_ratio,
            "no_causal_mask": not text.causal_mask,
        },
        "custom_text": True,
    }


def open_clip_config(spec: ArchSpec) -> dict:
    """The ``open_clip_config.json`` of a ``local-dir:`` model: model and preprocessing config
    (OpenAI CLIP's normalisation, which archsearch trains with: `archsearch.data.pixels`)."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    return {
        "model_cfg": model_config(spec),
        "preprocess_cfg": {"size": spec.resolution, "mean": list(OPENAI_DATASET_MEAN), "std": list(OPENAI_DATASET_STD),
                           "interpolation": "bicubic", "resize_mode": "shortest"},
    }


def open_clip_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """archsearch CLIP weights (``build_clip(spec).state_dict()``, or ``final.pt``'s ``state_dict``)
    renamed for the OpenCLIP model of `open_clip_config`: ``visual.X`` -> ``visual.trunk.X``."""
    return {("visual.trunk." + key[len("visual."):] if key.startswith("visual.") else key): value
            for key, value in state_dict.items()}
