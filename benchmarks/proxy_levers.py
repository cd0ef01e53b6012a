"""Proxy levers screened on the papers' seven variants: which recipe changes make the short proxy rank.

The full fidelity protocol (20 architectures against a 10x reference, `python -m benchmarks.proxy_scores fidelity`)
costs hours of CPU per recipe. This screen costs minutes and measures what needs no reference:

- the seed agreement, Kendall tau between student seeds 0 and 1 over the seven variants;
- the papers' order (MobileCLIP S0 < S1 < S2 < B, ViTamin S < B < L): swaps by short score;
- the lowest score as a multiple of chance (64 classes), and the wall time per run (1 thread);
- tau of the seed-mean score against params and GMACs, the free baselines, for reference.

Every lever is one named change to the default recipe; every lever tried stays in the results,
the ones that lost too.

    python -m benchmarks.proxy_levers [--levers default ls0.1 ...] [--seeds 0 1] [--workers 2]

Results: results/proxy_levers.{json,md}; every training is logged in results/proxy_runs.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from benchmarks import proxy_fidelity
from benchmarks.common import RESULTS, run_meta, with_ci
from benchmarks.runlog import logged_runs, recorded, score_all, with_seed

from archsearch.analysis.ranking import (
    PUBLISHED_PRESETS, kendall_tau, multiple_of_chance, preset_order_swaps, tau_bootstrap_ci,
)
from archsearch.data.scenes import class_names
from archsearch.latency.cost import measure_cost
from archsearch.proxy.recipe import Recipe, load_recipe
from archsearch.spec import get_preset
from archsearch.spec.arch import layout_summary

# name -> (what it tests, dotted overrides of the default recipe). Scale-downs keep widths x 0.25 unless named.
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("the recipe as a sweep runs it", {}),
    "ls0.1": ("every residual branch of the proxy starts at a LayerScale gain of 0.1 (papers: 1e-5 in MCi and "
              "Text-RepMixer blocks, no gain in ViT, ViTamin and text transformer blocks)",
              {"scale.layer_scale_init": 0.1}),
    "ls0.1-wu": ("ls0.1, and a quarter of the steps as warm-up at half the peak lr (deep attention stacks)",
                 {"scale.layer_scale_init": 0.1, "train.warmup_steps": 20, "train.lr": 1.0e-3}),
    "ls0.1-r32-s240": ("ls0.1 at 32 px and 3x the steps (EcoNAS: smaller and longer)",
                       {"scale.layer_scale_init": 0.1, "scale.resolution": 32, "train.steps": 240,
                        "train.warmup_steps": 30}),
    "ls0.1-w0.125-s240": ("ls0.1 at half the image width (x 0.125) and 3x the steps (EcoNAS: fewer channels, longer)",
                          {"scale.layer_scale_init": 0.1, "scale.width_mult": 0.125, "train.steps": 240,
                           "train.warmup_steps": 30}),
    "ls0.1-r48-s160": ("ls0.1 at 48 px and 2x the steps",
                       {"scale.layer_scale_init": 0.1, "scale.resolution": 48, "train.steps": 160,
                        "train.warmup_steps": 20}),
    "ls0.1-b64-s160": ("ls0.1, batch 64 and 2x the steps (same images seen)",
                       {"scale.layer_scale_init": 0.1, "train.batch_size": 64, "train.steps": 160,
                        "train.warmup_steps": 20}),
    "lr1e-3": ("half the peak lr: deep attention stacks without LayerScale may start too hot",
               {"train.lr": 1.0e-3}),
    "lr4e-3": ("twice the peak lr: large models get further in 80 steps",
               {"train.lr": 4.0e-3}),
}


# The scores a run yields: zero-shot top-1, and minus the last-quarter training loss (higher is better).
SCORES = {"zeroshot_top1": 1.0, "neg_train_loss_tail": -1.0}


def with_overrides(recipe: Recipe, lever: str) -> Recipe:
    """The recipe with one lever's overrides, validated as a recipe file would be."""
    data = recipe.to_dict()
    for dotted, value in LEVERS[lever][1].items():
        *parents, key = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        if key not in node:
            raise KeyError(f"lever {lever}: {dotted} is not a recipe field")
        node[key] = value
    data["name"] = recipe.name if lever == "default" else f"{recipe.name}@{lever}"
    return Recipe.model_validate(data)


def summarise(lever: str, recipe: Recipe, names: list[str], rows: list[dict], seeds: list[int],
              costs: dict[str, dict], reference: dict[str, list[float | None]] | None = None) -> dict:
    """One lever's screen figures from its runs (arch-major, seed-minor order)."""
    n = len(seeds)
    walls = [r.get("wall_seconds", r["train_seconds"]) for r in rows]
    chance = len(class_names())
    out = {"lever": lever, "question": LEVERS[lever][0], "recipe": recipe.name, "overrides": LEVERS[lever][1],
           "steps": recipe.train.steps, "resolution": recipe.scale.resolution,
           "median_wall_seconds": statistics.median(walls), "max_wall_seconds": max(walls)}
    for score, sign in SCORES.items():
        key = "train_loss_tail" if score == "neg_train_loss_tail" else score
        if any(r.get(key) is None for r in rows):
            continue  # runs logged before the score existed
        values = {name: [sign * rows[i * n + j][key] for j in range(n)] for i, name in enumerate(names)}
        mean = [statistics.fmean(values[name]) for name in names]
        figures = {"scores": values,
                   "preset_order_swaps": {f"seed{s}": preset_order_swaps({k: v[j] for k, v in values.items()})
                                          for j, s in enumerate(seeds)},
                   "tau_params": kendall_tau([costs[k]["params_m"] for k in names], mean),
                   "tau_gmacs": kendall_tau([costs[k]["gmacs"] for k in names], mean)}
        if reference:  # against the 10x reference (seed 0) of the fidelity protocol, seed by seed
            pairs = {f"seed{s}": ([values[k][j] for k in names], [reference[k][0] for k in names])
                     for j, s in enumerate(seeds)}
            figures["tau_reference_seed0"] = {s: kendall_tau(*pair) for s, pair in pairs.items()}
            figures["tau_reference_seed0_ci95"] = {s: tau_bootstrap_ci(*pair) for s, pair in pairs.items()}
            # the figure: the student's seed-0 score against the mean of both reference seeds
            both = [k for k in names if None not in reference[k]]
            if len(both) >= 3:
                pair = [values[k][0] for k in both], [statistics.fmean(reference[k]) for k in both]
                figures["tau_reference_mean"] = {"tau": kendall_tau(*pair), "ci95": tau_bootstrap_ci(*pair),
                                                 "n": len(both)}
        if n >= 2:
            first, second = [values[k][0] for k in names], [values[k][1] for k in names]
            figures["tau_seeds"] = kendall_tau(first, second)
            figures["tau_seeds_ci95"] = tau_bootstrap_ci(first, second)
            figures["mean_seed_sd"] = statistics.fmean(statistics.stdev(values[k]) for k in names)
        out[score] = figures
    top1 = out["zeroshot_top1"]["scores"]
    out["min_multiple_of_chance"] = min(multiple_of_chance(v, chance) for v in sum(top1.values(), []))
    out["best_mean_top1"] = max(statistics.fmean(v) for v in top1.values())
    return out


def reference_scores(recipe: Recipe) -> dict[str, list[float | None]]:
    """Zero-shot top-1 of the fidelity protocol's reference at seeds 0 and 1 (None where not run) for
    every protocol architecture whose seed-0 reference the run log holds."""
    reference, log = load_recipe("cpu-small"), logged_runs()
    out = {}
    for name, _, spec in proxy_fidelity.architectures(14, 0, 2):
        rows = [recorded(name, spec, with_seed(reference, seed), done=log) for seed in proxy_fidelity.SEEDS]
        if rows[0] is not None:
            out[name] = [row and row["zeroshot_top1"] for row in rows]
    return out


def teacher_scores(recipe: Recipe) -> list[float]:
    from archsearch.data.teachers import teacher_meta
    from archsearch.proxy.teach import teach

    return [teacher_meta(p)["metrics"]["zeroshot_top1"] for p in teach(recipe, progress=False)]


def table(summaries: list[dict], names: list[str], teachers: list[float]) -> list[str]:
    lines = ["| lever | score | steps @px | " + " | ".join(names) + " | tau seeds | swaps s0 / s1 | min x chance | "
             "median s | tau params / GMACs | tau reference s0 / s1 | tau seed 0 vs reference mean (n) |",
             "|---" * (len(names) + 10) + "|"]
    for s in summaries:
        for score in (k for k in SCORES if k in s):
            f = s[score]
            swaps = " / ".join(f"{sum(v.values()):g}" if v else "-" for v in f["preset_order_swaps"].values())
            ref = " / ".join(with_ci(v, ci) for v, ci in
                             zip(f["tau_reference_seed0"].values(), f["tau_reference_seed0_ci95"].values())
                             ) if "tau_reference_seed0" in f else "-"
            mean = f.get("tau_reference_mean")
            ref_mean = f"{with_ci(mean['tau'], mean['ci95'])} ({mean['n']})" if mean else "-"
            digits = 1 if score == "zeroshot_top1" else 3
            lines.append(f"| {s['lever']} | {score} | {s['steps']} @{s['resolution']} | "
                         + " | ".join(", ".join(f"{v:.{digits}f}" for v in f["scores"][k]) for k in names)
                         + f" | {with_ci(f.get('tau_seeds', float('nan')), f['tau_seeds_ci95'])} | {swaps} | "
                           f"{s['min_multiple_of_chance']:.1f} | {s['median_wall_seconds']:.0f} | {f['tau_params']:.2f} / {f['tau_gmacs']:.2f} | {ref} | "
                           f"{ref_mean} |")
    lines += ["", "Scores at student seeds 0, 1: zero-shot top-1 (%) on 64 classes (chance 1.6%), and minus the mean "
              "training loss over the last quarter of the steps (Ru et al.'s TSE-E); swaps count pairs of each family "
              "out of the papers' order (a tie counts half; - where a family is not all there); tau seeds has its 95% "
              f"bootstrap interval over the {len(names)} architectures; tau params / GMACs ranks the seed-mean score "
              "against full-size params and GMACs; tau reference ranks each seed's score against the zero-shot top-1 "
              "of the fidelity protocol's 10x reference (cpu-small, seed 0) where it was run, and the last column the "
              "seed-0 score against the mean of the reference's seeds 0 and 1 where both ran; min x chance is the "
              "lowest top-1 over all runs.",
              f"Teachers (the store's, zero-shot top-1): {', '.join(f'{t:.1f}' for t in teachers)}.", "",
              *(f"- **{s['lever']}**: {s['question']}; overrides `{json.dumps(s['overrides'])}`" for s in summaries)]
    untried = [name for name in LEVERS if name not in {s["lever"] for s in summaries}]
    if untried:
        lines += ["", f"Defined but not run here: {', '.join(untried)}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cpu-tiny")
    parser.add_argument("--levers", nargs="+", choices=list(LEVERS), default=list(LEVERS))
    parser.add_argument("--archs", nargs="+", default=list(PUBLISHED_PRESETS),
                        help="presets, or the fidelity protocol's draws by name (hybrid-s0-N)")
    parser.add_argument("--with-reference", action="store_true",
                        help="the fidelity protocol's architectures whose reference (seed 0) is in the run log, "
                             "instead of --archs; adds tau against that reference to the figures")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="proxy_levers")
    args = parser.parse_args()
    base = load_recipe(args.recipe)
    reference = reference_scores(base) if args.with_reference else {}
    protocol = {name: spec for name, _, spec in proxy_fidelity.architectures(14, 0, 2)}
    names = [n for n in protocol if n in reference] if args.with_reference else args.archs
    specs = {name: protocol[name] if name in protocol else get_preset(name) for name in names}
    args.archs = names
    costs = {}
    for name, spec in specs.items():
        cost = measure_cost(spec)
        costs[name] = {"params_m": (cost.image.params + cost.text.params) / 1e6,
                       "gmacs": (cost.image.macs + cost.text.macs) / 1e9, "layout": layout_summary(spec)}
    summaries, all_rows = [], []
    for lever in args.levers:
        recipe = with_overrides(base, lever)
        # the largest models first, so that no long run is left to finish alone on one worker
        jobs = [(name, specs[name], with_seed(recipe, seed)) for name in args.archs for seed in args.seeds]
        order = sorted(range(len(jobs)), key=lambda i: -costs[jobs[i][0]]["gmacs"])
        done = dict(zip(order, score_all([jobs[i] for i in order], args.workers)))
        rows = [done[i] for i in range(len(jobs))]
        all_rows += rows
        summaries.append(summarise(lever, recipe, args.archs, rows, args.seeds, costs, reference))
        last = summaries[-1]
        print(json.dumps({"lever": lever, "median_wall_seconds": last["median_wall_seconds"],
                          **{score: {k: last[score].get(k) for k in ("tau_seeds", "preset_order_swaps")}
                             for score in SCORES if score in last}}), flush=True)
    teachers = teacher_scores(base)
    record = {"meta": run_meta("proxy_levers", threads=base.train.threads or 1, recipe=base.name),
              "architectures": args.archs, "seeds": args.seeds,
              "reference_top1": reference,
              "costs": costs, "teachers_top1": teachers, "levers": summaries,
              "runs": [{k: v for k, v in r.items() if k not in ("spec", "recipe_config")} for r in all_rows]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(record, indent=2) + "\n")
    m = record["meta"]
    title = "the protocol's architectures with a reference" if args.with_reference else "the papers' seven variants"
    lines = [f"# Proxy levers on {title}", "", f"- date: {m['date']}", f"- command: `{m['command']}`",
             f"- machine: {m['machine']['cpu']}, {m['machine']['threads']} thread(s) per run, "
             f"{args.workers} runs at a time, torch {m['machine']['libraries']['torch']}", "",
             *table(summaries, args.archs, teachers), ""]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
