"""`archsearch teach`: train the K teachers a reinforced store distils from, on the recipe's data.

MobileCLIP's teachers were two ViT-L/14 CLIPs trained on billions of pairs. Here the stand-in is
K larger architectures (different seeds) trained longer than any proxy, on the real captions and
the accurate synthetic ones, so they know more than a proxy student can learn from noisy
alt-text alone. Each lands in `runs/teachers/<arch>-<config digest>-s<k>/` and is reused by every
recipe that asks for the same teachers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from archsearch.data.captioners import load_captioner
from archsearch.data.dataset import AugmentedDataset
from archsearch.data.teachers import CHECKPOINT_NAME, save_teacher
from archsearch.proxy.assets import _digest, training_source
from archsearch.proxy.evaluate import evaluate
from archsearch.proxy.fit import fit
from archsearch.proxy.recipe import LossConfig, Recipe, TrainConfig
from archsearch.proxy.scale import scale_down
from archsearch.proxy.tasks import eval_tasks
from archsearch.spec.io import resolve_arch


def teacher_dirs(recipe: Recipe) -> list[Path]:
    cfg = recipe.data.teacher_training
    key = _digest({"training": cfg.model_dump(mode="json"), "source": recipe.data.source,
                   "captioner": recipe.data.captioner, "seed": recipe.seed})
    name = Path(cfg.arch).stem
    return [Path(cfg.dir) / f"{name}-{key}-s{k}" for k in range(cfg.count)]


def teach(recipe: Recipe, progress: bool = True, force: bool = False) -> list[Path]:
    """Train (or find) the recipe's teachers; returns their directories."""
    cfg = recipe.data.teacher_training
    full, _ = resolve_arch(cfg.arch)
    spec = scale_down(full, cfg.scale)
    dirs = teacher_dirs(recipe)
    todo = [(k, d) for k, d in enumerate(dirs) if force or not (d / CHECKPOINT_NAME).is_file()]
    if not todo:
        return dirs
    source = training_source(recipe)
    dataset = AugmentedDataset(source, spec.resolution, spec.text.context_length,
                               captioner=load_captioner(recipe.data.captioner))
    train = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=min(100, cfg.steps // 10),
                        threads=len(os.sched_getaffinity(0)))  # no trial runs beside the teachers: every CPU
    tasks = eval_tasks(recipe.eval, spec.resolution)
    for k, directory in todo:
        module, timing = fit(spec, dataset, train, LossConfig(kd_lambda=0.0, captions="both"),
                             seed=recipe.seed * 1000 + k, progress=progress)
        metrics = evaluate(module.model, *tasks, batch_size=recipe.eval.batch_size)
        save_teacher(module.model, spec, directory, meta={
            "arch": cfg.arch, "seed": recipe.seed * 1000 + k, "training": cfg.model_dump(mode="json"),
            "source": recipe.data.source, "metrics": metrics, **timing,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return dirs
