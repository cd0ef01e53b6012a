"""`FinalWeights`: what a finished training hands on, beside Lightning's resumable checkpoints.

* ``final.pt``: ``{"arch": spec dict, "state_dict": train-time CLIP weights, "step", "versions"}``,
  plain tensors and builtins only, so ``torch.load(path, weights_only=True)`` reads it (no pickled
  classes, nothing executed): ``build_clip(ArchSpec.from_dict(d["arch"])).load_state_dict(d["state_dict"])``.
* ``reparameterized.pt``: the state dict of ``reparameterize(model)``, every train-time branch
  folded, for deployment (load it into ``reparameterize(build_clip(spec))``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import lightning as L
import torch

from archsearch.files import replacing
from archsearch.models.reparam import reparameterize

FINAL = "final.pt"
REPARAMETERIZED = "reparameterized.pt"


def _save(obj, path: Path) -> None:
    with replacing(path) as tmp:
        torch.save(obj, tmp)


class FinalWeights(L.Callback):
    def __init__(self, dirpath: Optional[str] = None):
        """`dirpath`: where to write (default: the trainer's default_root_dir)."""
        self.dirpath = dirpath

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from archsearch.environment import library_versions

        out = Path(self.dirpath or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        model = pl_module.model
        state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
        _save({"arch": model.spec.to_dict(), "state_dict": state, "step": trainer.global_step,
               "versions": library_versions()}, out / FINAL)
        folded = reparameterize(model).cpu()
        _save({key: value.detach().clone() for key, value in folded.state_dict().items()}, out / REPARAMETERIZED)
