"""A zero-shot learning curve: evaluate every N optimiser steps during a fit, one JSON line each.

Teachers train for thousands of steps; the curve shows whether they were still improving when
they stopped, and is kept beside the checkpoint as part of their provenance.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L

from archsearch.data.embedded import ClassificationTask, RetrievalTask
from archsearch.proxy.evaluate import evaluate


class ZeroShotCurve(L.Callback):
    def __init__(self, tasks: tuple[ClassificationTask, RetrievalTask], every: int, path: str | Path,
                 batch_size: int = 256):
        if every < 1:
            raise ValueError(f"ZeroShotCurve: every must be >= 1, got {every}")
        self.tasks, self.every, self.path, self.batch_size = tasks, every, Path(path), batch_size
        self.started = time.perf_counter()
        self.eval_seconds = 0.0  # time spent evaluating, so a caller can report training time alone

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every or step == 0:
            return
        began = time.perf_counter()
        metrics = evaluate(pl_module.model, *self.tasks, batch_size=self.batch_size)
        self.eval_seconds += time.perf_counter() - began
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step, "seconds": round(time.perf_counter() - self.started, 1),
                                     **{k: round(v, 3) for k, v in metrics.items()}}) + "\n")
