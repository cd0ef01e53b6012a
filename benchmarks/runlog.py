"""The proxy run log: every training a benchmark asks for, one JSON line each in results/proxy_runs.jsonl.

A line holds the architecture's name and spec, the recipe (name and full content), the date and the
scores, so an interrupted benchmark keeps what it measured and any later benchmark asking for the
same architecture under the same recipe content reads it instead of training again. Trainings go
through `archsearch.proxy.run.run_proxy`, exactly as a sweep's proxy does. The log is committed: it
is the evidence behind every proxy figure in benchmarks/results/.

Each line also carries the run's key in the sweeps' proxy score cache (`archsearch.proxy.score_cache`:
proxy-size spec, recipe settings, store manifest, device and training-code digests), so a reader can
tell which runs share one training code. Lookup stays by name and content rather than by that key:
the key changes with every edit of the training code, and the fidelity protocol's references take
hours of CPU across sessions; `training_code` in a line says which code trained it.

Runs of at least CURVE_MIN_STEPS steps (the 10x references) also log a zero-shot learning curve.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from archsearch.proxy.curve import ZeroShotCurve
from archsearch.proxy.recipe import Recipe
from archsearch.proxy.run import run_proxy, store_manifest, student_seed
from archsearch.proxy.scale import scale_down
from archsearch.proxy.score_cache import proxy_key, training_code_digest
from archsearch.proxy.tasks import eval_tasks
from archsearch.spec.arch import ArchSpec, layout_summary

from benchmarks.common import RESULTS

RUNS = RESULTS / "proxy_runs.jsonl"
# Runs of at least this many steps (the references) log a zero-shot curve at CURVE_POINTS evenly
# spaced steps: how a ranking forms over training, at no extra training. Short runs stay exactly as a
# sweep runs them, since their wall time is a target.
CURVE_MIN_STEPS, CURVE_POINTS = 400, 10
METRICS = ("zeroshot_top1", "i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5", "train_seconds", "images_per_second", "steps",
           "train_loss_tail")


# ----------------------------------------------------------------------------- recipe variants
def plain(recipe: Recipe) -> Recipe:
    """The same recipe without reinforcement: lambda = 0 on real captions only."""
    return recipe.model_copy(update={"name": recipe.name + "-plain",
                                     "loss": recipe.loss.model_copy(update={"kd_lambda": 0.0, "captions": "real"})})


def with_steps(recipe: Recipe, steps: int) -> Recipe:
    """The recipe trained for `steps` (warm-up kept at the same share, 1/8); unchanged at its own steps."""
    if steps == recipe.train.steps:
        return recipe
    train = recipe.train.model_copy(update={"steps": steps, "warmup_steps": max(1, round(steps / 8))})
    return recipe.model_copy(update={"name": f"{recipe.name}-{steps}steps", "train": train})


def with_seed(recipe: Recipe, seed: int) -> Recipe:
    """The same data, teachers and store, a different student seed; unchanged at its own seed."""
    if seed == student_seed(recipe):
        return recipe
    train = recipe.train.model_copy(update={"seed": seed})
    return recipe.model_copy(update={"name": f"{recipe.name}-seed{seed}", "train": train})


def with_scale(recipe: Recipe, suffix: str, **scale) -> Recipe:
    return recipe.model_copy(update={"name": f"{recipe.name}-{suffix}", "scale": recipe.scale.model_copy(update=scale)})


# ----------------------------------------------------------------------------- the log
def logged_runs(path: Path | None = None) -> dict[tuple[str, str], dict]:
    """Every logged run by (arch name, recipe name); a later line replaces an earlier one."""
    path = RUNS if path is None else path
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["arch"], r["recipe"]): r for r in rows}


def recorded(name: str, spec: ArchSpec, recipe: Recipe, done: dict | None = None) -> dict | None:
    """The logged run of this arch name under this recipe, if its spec and recipe content are the same."""
    previous = (logged_runs() if done is None else done).get((name, recipe.name))
    if previous and previous["recipe_config"] == recipe.to_dict() and previous["spec"] == spec.to_dict():
        return previous
    return None


def score(name: str, spec: ArchSpec, recipe: Recipe) -> dict:
    """Train and score (or reuse a recorded run of the same arch, recipe and recipe content)."""
    previous = recorded(name, spec, recipe)
    if previous:
        return previous
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        curve = None
        if recipe.train.steps >= CURVE_MIN_STEPS:
            curve = ZeroShotCurve(eval_tasks(recipe.eval, scale_down(spec, recipe.scale).resolution),
                                  recipe.train.steps // CURVE_POINTS, Path(scratch) / "curve.jsonl",
                                  recipe.eval.batch_size)
        result = run_proxy(spec, recipe, wandb="disabled", progress=False, callbacks=[curve] if curve else ())
        if curve:  # the curve's evaluations are not training time
            result["train_seconds"] -= curve.eval_seconds
            result["curve"] = [json.loads(line) for line in curve.path.read_text().splitlines()]
    row = {"arch": name, "recipe": recipe.name, "layout": layout_summary(spec), "spec": spec.to_dict(),
           "recipe_config": recipe.to_dict(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "wall_seconds": time.perf_counter() - started, **{k: result[k] for k in METRICS},
           **({"curve": result["curve"]} if "curve" in result else {}),
           "proxy_key": proxy_key(spec, recipe, store_manifest(recipe, progress=False)),
           "training_code": training_code_digest()}
    RUNS.parent.mkdir(exist_ok=True)
    with RUNS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: row[k] for k in ("arch", "recipe", "zeroshot_top1", "i2t_r1", "train_seconds")}), flush=True)
    return row


def _score_job(job: tuple[str, dict, dict]) -> dict:
    name, spec, recipe = job
    return score(name, ArchSpec.from_dict(spec), Recipe.model_validate(recipe))


def score_all(jobs: list[tuple[str, ArchSpec, Recipe]], workers: int, longest_first: bool = True) -> list[dict]:
    """Score every (name, spec, recipe), `workers` trainings at a time (each on the recipe's threads);
    runs already in the log are reused, not retrained. Results come back in the order of `jobs`.
    `longest_first=False` trains in the order given (a benchmark whose partial result must be useful)."""
    log = logged_runs()
    results = {i: row for i, job in enumerate(jobs) if (row := recorded(*job, done=log))}
    todo = [i for i in range(len(jobs)) if i not in results]
    payload = {i: (jobs[i][0], jobs[i][1].to_dict(), jobs[i][2].to_dict()) for i in todo}
    if workers <= 1 or len(todo) <= 1:
        results.update({i: _score_job(payload[i]) for i in todo})
    elif todo:
        # Longest first (by steps) so the last worker does not finish alone on a long run.
        order = sorted(todo, key=lambda i: -jobs[i][2].train.steps) if longest_first else todo
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
            results.update(zip(order, pool.map(_score_job, [payload[i] for i in order])))
    return [results[i] for i in range(len(jobs))]
