"""What the five finding benchmarks (benchmarks/finding_*.py) share: recipe variants, parallel
proxy scoring through the shared run log, latency of a spec, and the result writer.

Every training goes through `proxy_scores.score`, so it is appended to results/proxy_runs.jsonl
and reused by any later benchmark asking for the same architecture under the same recipe.
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import shlex
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from md_table import cell

from archsearch.latency.cost import measure_cost
from archsearch.environment import device_fingerprint
from archsearch.latency.measure import measure_latency
from archsearch.proxy.recipe import Recipe
from archsearch.proxy.run import student_seed
from archsearch.spec.arch import ArchSpec, layout_summary

RESULTS = Path(__file__).parent / "results"


# ----------------------------------------------------------------------------- recipe variants
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


# ----------------------------------------------------------------------------- scoring
def _score_job(job: tuple[str, dict, dict]) -> dict:
    from proxy_scores import score  # benchmarks/ is on the path of the script and of its spawned workers

    name, spec, recipe = job
    return score(name, ArchSpec.from_dict(spec), Recipe.model_validate(recipe))


def score_all(jobs: list[tuple[str, ArchSpec, Recipe]], workers: int, longest_first: bool = True) -> list[dict]:
    """Score every (name, spec, recipe), `workers` trainings at a time (each on the recipe's threads);
    runs already in the log are reused, not retrained. Results come back in the order of `jobs`.
    `longest_first=False` trains in the order given (a benchmark whose partial result must be useful)."""
    from proxy_scores import _done, recorded

    log = _done()
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


def score_variants(variants: dict[str, tuple[str, ArchSpec]], recipe: Recipe, seeds: list[int],
                   workers: int) -> tuple[list[dict], dict[str, dict]]:
    """Train each variant (label -> (run name, spec)) once per student seed; returns the runs and,
    per label, the `mean_sd` of its zero-shot top-1 over the seeds."""
    jobs = [(name, spec, with_seed(recipe, seed)) for name, spec in variants.values() for seed in seeds]
    rows = score_all(jobs, workers)
    n = len(seeds)
    return rows, {label: mean_sd(top1(rows[i * n:(i + 1) * n])) for i, label in enumerate(variants)}


def seed_cells(scores: dict) -> str:
    """'mean +- sd | per seed' table cells of one `mean_sd` result."""
    return f"{scores['mean']:.1f} +- {scores['sd']:.1f} | {', '.join(f'{v:.1f}' for v in scores['values'])}"


def top1(rows: list[dict]) -> list[float]:
    return [r["zeroshot_top1"] for r in rows]


def seed_wins(a: dict, b: dict) -> int:
    """Seeds on which `a` scored above `b` (both `mean_sd` results over the same seeds, in order)."""
    return sum(x > y for x, y in zip(a["values"], b["values"]))


def mean_sd(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


# ----------------------------------------------------------------------------- cost and latency
def latency_and_cost(spec: ArchSpec, repeats: int = 3, threads: int = 1) -> dict:
    """Full-size, folded, torch-cpu latency (median of `repeats` fresh-process measurements) with params
    and MACs. Call it before any training starts: a training beside it would be timed too."""
    runs = [measure_latency(spec, threads=threads, fresh_process=True) for _ in range(repeats)]
    cost = measure_cost(spec)
    return {"image_ms": statistics.median(r.image.median_ms for r in runs),
            "text_ms": statistics.median(r.text.median_ms for r in runs),
            "image_ms_runs": [r.image.median_ms for r in runs], "text_ms_runs": [r.text.median_ms for r in runs],
            "threads": threads, "image_params_m": cost.image.params / 1e6, "text_params_m": cost.text.params / 1e6,
            "image_gmacs": cost.image.macs / 1e9, "text_gmacs": cost.text.macs / 1e9}


# ----------------------------------------------------------------------------- results
def meta(script: str, recipe: Recipe | None, threads: int = 1, **extra) -> dict:
    """Date, exact command, machine fingerprint and the proxy recipe (None: the finding trains nothing)."""
    return {"date": datetime.date.today().isoformat(),
            "command": shlex.join(["python", f"benchmarks/{script}", *sys.argv[1:]]),
            "machine": device_fingerprint("torch-cpu", (recipe.train.threads or 1) if recipe else threads),
            "recipe": recipe.name if recipe else None, **extra}


def layout(spec: ArchSpec) -> str:
    return cell(layout_summary(spec))


def write_finding(key: str, title: str, meta: dict, *, paper: str, measured: list[str], seeds: int,
                  reproduced: bool, verdict: str, tried: str, summary: dict, rows: list[dict]) -> None:
    """results/finding_<key>.json (read by notebooks/findings.ipynb) and a readable .md."""
    RESULTS.mkdir(exist_ok=True)
    record = {"finding": key, "title": title, "meta": meta, "paper": paper, "seeds": seeds,
              "reproduced": reproduced, "verdict": verdict, "tried": tried, "summary": summary, "runs": rows}
    (RESULTS / f"finding_{key}.json").write_text(json.dumps(record, indent=2) + "\n")
    machine = meta["machine"]
    lines = [f"# Finding: {title}", "",
             f"- date: {meta['date']}; command: `{meta['command']}`",
             f"- machine: {machine['cpu']}, torch {machine['libraries']['torch']}; "
             f"proxy recipe: {meta['recipe'] or 'none (nothing is trained)'}",
             f"- seeds: {seeds}", "",
             "## What the paper reports", "", paper, "",
             "## What we measured", "", *measured, "",
             f"## Reproduced in direction: {'yes' if reproduced else 'no'}", "", verdict, "",
             "## What was tried", "", tried, ""]
    (RESULTS / f"finding_{key}.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / f'finding_{key}.md'}: reproduced = {reproduced}", flush=True)
