"""What the five finding benchmarks (benchmarks/finding_*.py) share: seed-averaged scoring of
variants, latency of a spec, and the result writer.

Every training goes through `benchmarks.runlog.score`, so it is appended to results/proxy_runs.jsonl
and reused by any later benchmark asking for the same architecture under the same recipe.
"""

from __future__ import annotations

import json
import statistics

from archsearch.latency.cost import measure_cost
from archsearch.latency.measure import measure_latency
from archsearch.proxy.recipe import Recipe
from archsearch.spec.arch import ArchSpec, layout_summary

from benchmarks.common import RESULTS, cell
from benchmarks.runlog import score_all, with_seed


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
