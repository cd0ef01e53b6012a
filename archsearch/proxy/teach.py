"""`archsearch teach`: train the K teachers a reinforced store distils from, on the recipe's data.

MobileCLIP's teachers were two ViT-L/14 CLIPs trained on billions of pairs. Here the stand-in is
K larger architectures (different seeds) trained longer than any proxy, on the real captions and
the accurate synthetic ones, so they know more than a proxy student can learn from noisy
alt-text alone. Each lands in `runs/teachers/<arch>-<config digest>-s<k>/` and is reused by every
recipe that asks for the same teachers.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from archsearch import workspace
from archsearch.data.captioners import load_captioner
from archsearch.data.dataset import AugmentedDataset
from archsearch.data.teachers import CHECKPOINT_NAME, save_teacher
from archsearch.environment import available_cpus
from archsearch.proxy.curve import ZeroShotCurve
from archsearch.proxy.evaluate import evaluate
from archsearch.training.fit import fit
from archsearch.proxy.recipe import Recipe
from archsearch.training.config import LossConfig, TrainConfig
from archsearch.proxy.scale import scale_down
from archsearch.proxy.shipped import shipped_teacher
from archsearch.proxy.training_data import json_digest, training_source
from archsearch.proxy.tasks import eval_tasks
from archsearch.spec.io import resolve_arch


def teacher_dirs(recipe: Recipe) -> list[Path]:
    cfg = recipe.data.teacher_training
    # Null fields stay out of the name: an optional setting added to the schema later (null: no
    # change) keeps the names, and so the checkpoints and shipped files, of every teacher before it.
    key = json_digest({"training": cfg.model_dump(mode="json", exclude_none=True), "source": recipe.data.source,
                   "captioner": recipe.data.captioner, "seed": recipe.seed})
    name = Path(cfg.arch).stem
    return [workspace.resolve(cfg.dir) / f"{name}-{key}-s{k}" for k in range(cfg.count)]


def teach(recipe: Recipe, progress: bool = True, force: bool = False) -> list[Path]:
    """Find or train the recipe's teachers; returns, per teacher, its directory or shipped file.

    A teacher is, in this order: a local checkpoint in its directory; the shipped fp16 teacher of
    the same name (`proxy.shipped`, sha256 checked); or trained now. `force` trains every one.
    Missing teachers train side by side, one process per teacher with an equal share of the CPUs
    (each seeded by its index, so the order they finish in changes nothing): small models scale
    badly over threads, so K teachers on K cores finish sooner than one after another on all K."""
    dirs = teacher_dirs(recipe)
    found: list[Path] = []
    todo = []
    for k, directory in enumerate(dirs):
        local = (directory / CHECKPOINT_NAME).is_file()
        shipped = None if force or local else shipped_teacher(directory.name)
        found.append(shipped or directory)
        if force or not (local or shipped):
            todo.append((k, directory))
    if not todo:
        return found
    training_source(recipe)  # render the pixel cache once, before any worker reads it
    cpus = len(available_cpus())
    at_once = min(len(todo), cpus)
    threads = max(1, cpus // at_once)  # no trial runs beside the teachers: every CPU is theirs
    if at_once == 1:
        for k, directory in todo:
            _train_teacher(recipe.to_dict(), k, str(directory), threads, progress)
        return found
    if progress:
        print(f"training {len(todo)} teachers, {at_once} at a time with {threads} thread(s) each", flush=True)
    with ProcessPoolExecutor(at_once, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_teacher, recipe.to_dict(), k, str(d), threads, False) for k, d in todo]
        for future in futures:
            done = future.result()
            if progress:
                print(f"teacher {done['directory']}: {done['train_seconds']:.0f} s, "
                      f"zero-shot top-1 {done['metrics']['zeroshot_top1']:.1f}%", flush=True)
    return found


def _train_teacher(recipe_dict: dict, k: int, directory: str, threads: int, progress: bool) -> dict:
    """Train, evaluate and save teacher `k` (a plain-data signature, so a spawned worker can run it)."""
    recipe = Recipe.model_validate(recipe_dict)
    cfg = recipe.data.teacher_training
    spec = scale_down(resolve_arch(cfg.arch)[0], cfg.scale)
    dataset = AugmentedDataset(training_source(recipe), spec.resolution, spec.text.context_length,
                               captioner=load_captioner(recipe.data.captioner))
    train = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, warmup_steps=min(100, cfg.steps // 10),
                        threads=threads)
    tasks = eval_tasks(recipe.eval, spec.resolution)
    curve = Path(directory) / "curve.jsonl"
    curve.unlink(missing_ok=True)
    callbacks = [ZeroShotCurve(tasks, cfg.eval_every, curve, recipe.eval.batch_size)] if cfg.eval_every else []
    module, timing = fit(spec, dataset, train, LossConfig(kd_lambda=0.0, captions="both"),
                         seed=recipe.seed * 1000 + k, progress=progress, callbacks=callbacks,
                         layer_scale_init=cfg.scale.layer_scale_init)
    metrics = evaluate(module.model, *tasks, batch_size=recipe.eval.batch_size)
    save_teacher(module.model, spec, Path(directory), meta={
        "arch": cfg.arch, "seed": recipe.seed * 1000 + k, "training": cfg.model_dump(mode="json"),
        "source": recipe.data.source, "metrics": metrics, "threads": threads, **timing,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return {"directory": directory, "metrics": metrics, **timing}
