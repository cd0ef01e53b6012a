"""The held-out zero-shot tasks a proxy is scored on, built once per process and resolution."""

from __future__ import annotations

from functools import lru_cache

from archsearch.data.embedded import ClassificationTask, RetrievalTask, classification_task, retrieval_task
from archsearch.proxy.recipe import EvalConfig


@lru_cache(maxsize=4)
def _tasks(classify: int, retrieval: int, seed: int, resolution: int) -> tuple[ClassificationTask, RetrievalTask]:
    return (classification_task(classify, seed, resolution), retrieval_task(retrieval, seed, resolution))


def eval_tasks(cfg: EvalConfig, resolution: int) -> tuple[ClassificationTask, RetrievalTask]:
    return _tasks(cfg.classify, cfg.retrieval, cfg.seed, resolution)
