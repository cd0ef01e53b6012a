"""Loading a timm image trunk's weights (e.g. a local MobileCLIP or ViTamin checkpoint) into an
ImageTower: our towers hold timm's own blocks in timm's order, so tensors map one to one."""

from __future__ import annotations

import torch

from archsearch.errors import UserError
from archsearch.models.image import ImageTower


def _timm_order(keys: list[str]) -> list[str]:
    # timm's ViT registers its class token and position embedding before the patch embedding;
    # ImageTower keeps them in the transformer stage, after the stem.
    front = [k for k in ("pos_embed", "cls_token") if k in keys]
    rest = [k for k in keys if k not in front]
    after_embed = max((i for i, k in enumerate(rest) if k.startswith("patch_embed")), default=-1) + 1
    return rest[:after_embed] + front + rest[after_embed:]


def load_timm_image_weights(tower: ImageTower, timm_state: dict[str, torch.Tensor], source: str = "<state>") -> None:
    """Copy a timm trunk state dict (``num_classes=0``, classifier keys dropped) into `tower`.
    The projection to the joint embedding is left as is."""
    timm_state = {k: v for k, v in timm_state.items() if not k.startswith(("head.", "fc."))}
    ours = tower.state_dict()
    our_keys = [k for k in ours if not k.startswith("proj.")]
    their_keys = _timm_order(list(timm_state))
    if len(our_keys) != len(their_keys):
        raise UserError(f"{source}: {len(their_keys)} tensors, but the tower has {len(our_keys)}; "
                        "is it the trunk of this spec's timm reference?")
    for mine, theirs in zip(our_keys, their_keys):
        if ours[mine].shape != timm_state[theirs].shape:
            raise UserError(f"{source}: {theirs} has shape {tuple(timm_state[theirs].shape)}, "
                            f"expected {tuple(ours[mine].shape)} for {mine}")
        ours[mine] = timm_state[theirs]
    tower.load_state_dict(ours)
