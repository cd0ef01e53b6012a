"""`archsearch proxy`: scale a spec down, train it on the recipe's reinforced data, score it."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

from archsearch.data.dataset import AugmentedDataset, ReinforcedDataset, ReinforcedIterableDataset
from archsearch.data.store import ReinforcedStore
from archsearch.proxy.assets import ensure_store, training_source
from archsearch.proxy.evaluate import evaluate
from archsearch.training.fit import WandbMode, fit, make_logger
from archsearch.proxy.recipe import Recipe
from archsearch.proxy.scale import scale_down
from archsearch.proxy.tasks import eval_tasks
from archsearch.spec.arch import ArchSpec


def needs_store(recipe: Recipe) -> bool:
    return recipe.loss.kd_lambda > 0 or recipe.loss.captions != "real"


def store_manifest(recipe: Recipe, progress: bool = True) -> dict | None:
    """The manifest of the recipe's reinforced store (built first if absent); None if it uses none."""
    return ReinforcedStore.open(ensure_store(recipe, progress)).manifest if needs_store(recipe) else None


def student_seed(recipe: Recipe) -> int:
    return recipe.seed if recipe.train.seed is None else recipe.train.seed


def run_proxy(spec: ArchSpec, recipe: Recipe, *, wandb: WandbMode = "offline", out_dir: str | Path | None = None,
              progress: bool = True, callbacks: Sequence[Any] = (),
              eval_guard: Callable[[], ContextManager] = contextlib.nullcontext) -> dict[str, Any]:
    """Train the proxy of full-size `spec` and evaluate it; one JSON-able dict of results.

    Raises `NonFiniteLoss` when training diverges (callers record it as the run's failure).
    `callbacks` join the Lightning trainer and `eval_guard` wraps the evaluation: a sweep uses
    both to keep its workers' compute out of other workers' latency measurements.
    """
    proxy_spec = scale_down(spec, recipe.scale)
    resolution, context = proxy_spec.resolution, proxy_spec.text.context_length
    teacher_dims: tuple[int, ...] = ()
    if needs_store(recipe):
        store = ReinforcedStore.open(ensure_store(recipe, progress))
        teacher_dims = tuple(t.embed_dim for t in store.settings.teachers)
        source = training_source(recipe)
        reader = ReinforcedDataset if hasattr(type(source), "__getitem__") else ReinforcedIterableDataset
        dataset = reader(store, source, resolution, context)
    else:
        dataset = AugmentedDataset(training_source(recipe), resolution, context)
    tasks = eval_tasks(recipe.eval, resolution)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(out_dir) if out_dir else Path(scratch)
        logger = make_logger(wandb, root, recipe.name, {"arch": spec.to_dict(), "proxy_arch": proxy_spec.to_dict(),
                                                        "recipe": recipe.to_dict()})
        module, timing = fit(proxy_spec, dataset, recipe.train, recipe.loss, seed=student_seed(recipe),
                             teacher_dims=teacher_dims, logger=logger, progress=progress, root=root,
                             num_workers=recipe.data.num_workers, callbacks=callbacks,
                             layer_scale_init=recipe.scale.layer_scale_init)
        with eval_guard():
            metrics = evaluate(module.model, *tasks, batch_size=recipe.eval.batch_size)
        if logger:
            logger.log_metrics({f"eval/{k}": v for k, v in metrics.items()})
            logger.experiment.finish()
    return {**metrics, **timing, "recipe": recipe.name, "proxy_arch": proxy_spec.to_dict()}
