"""Proxy benchmarks on this machine, each recorded in benchmarks/results/:

- `spread`   (reinforced-data issue): cpu-tiny zero-shot scores of the presets; the embedded data
             must spread them over >= 15 points with none above 90%.
- `gain`     reinforcement gain: zero-shot top-1 at equal steps, reinforced loss vs plain CLIP
             (lambda = 0, real captions only).
- `fidelity` the fidelity protocol (proxy_fidelity.py): 20 architectures of spaces/hybrid.yaml, short
             runs at seeds 0 and 1 against a 10x reference at seeds 0 and 1; writes proxy_fidelity.{json,md}.

    python -m benchmarks.proxy_scores spread [--presets ...]
    python -m benchmarks.proxy_scores gain --presets mobileclip_s0 mobileclip_s2 vitamin_s mobileclip_b
    python -m benchmarks.proxy_scores fidelity [--recipe cpu-tiny] [--reference-recipe cpu-small] [--from-log]

Every training goes through the run log (`benchmarks.runlog`: results/proxy_runs.jsonl, so an
interrupted benchmark keeps what it measured and a rerun skips it); the summaries go to results/proxy_<kind>.{json,md}
(or results/<--out>.{json,md}). Earlier protocols' results stay beside them: proxy_fidelity_v1
(8 architectures, old teachers, with and without reinforcement) and proxy_fidelity_kd075.
"""

from __future__ import annotations

import argparse
import json
import statistics

from archsearch.analysis.ranking import PUBLISHED_PRESETS
from archsearch.latency.cost import measure_cost
from archsearch.proxy.recipe import Recipe, load_recipe
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import layout_summary

from benchmarks import proxy_fidelity as protocol
from benchmarks.common import RESULTS, cell, run_meta
from benchmarks.proxy_levers import teacher_scores
from benchmarks.runlog import logged_runs, plain, recorded, score, score_all, with_seed


def fidelity(args: argparse.Namespace, recipe: Recipe, meta: dict) -> None:
    """The fidelity protocol (proxy_fidelity.py): short runs, then the reference, then the report."""
    reference = load_recipe(args.reference_recipe)
    protocol.check_reference(recipe, reference)
    archs = protocol.architectures(args.draws, args.seed, args.per_layout)
    names, kinds, specs = [a[0] for a in archs], {a[0]: a[1] for a in archs}, {a[0]: a[2] for a in archs}
    extra = {n: get_preset(n) for n in PUBLISHED_PRESETS if n not in specs}  # papers' order only
    # Published variants outside the space first: the longest runs (ViTamin-L) should not finish alone.
    short_jobs = [(n, spec, with_seed(recipe, s)) for n, spec in [*extra.items(), *specs.items()]
                  for s in protocol.SEEDS]
    if args.from_log:
        log = logged_runs()
        short_rows = [recorded(*job, done=log) for job in short_jobs]
        missing = [f"{n} ({r.name})" for (n, _, r), row in zip(short_jobs, short_rows) if row is None]
        if missing:
            raise SystemExit(f"the run log lacks short runs: {', '.join(missing)}; run without --from-log")
    else:
        short_rows = score_all(short_jobs, args.workers, longest_first=False)
    short_by = {(row["arch"], row["recipe"]): row for row in short_rows}
    seeds = {s: (with_seed(recipe, s), with_seed(reference, s)) for s in protocol.SEEDS}
    # The reference at seed 0 for every architecture, cheapest first, then at seed 1: a partial run
    # yields tau(short, reference seed 0) over as many architectures as it reached.
    ordered = sorted(names, key=lambda n: short_by[(n, seeds[0][0].name)]["wall_seconds"])
    ref_jobs = [(n, specs[n], seeds[s][1]) for s in protocol.SEEDS for n in ordered]
    if args.pairs_first:  # seed 1 where seed 0 is logged comes first: the ceiling before more coverage
        log = logged_runs()
        ref_jobs.sort(key=lambda job: not (job[2].name == seeds[1][1].name
                                           and recorded(job[0], specs[job[0]], seeds[0][1], done=log)))
    if args.from_log or args.short_only:
        log = logged_runs()
        ref_rows = [recorded(*job, done=log) for job in ref_jobs]
    else:
        ref_rows = score_all(ref_jobs, args.workers, longest_first=False)
    ref_by = {(job[0], job[2].name): row for job, row in zip(ref_jobs, ref_rows)}

    def per_seed(table: dict, n: str, which: int, key: str = "zeroshot_top1") -> list:
        return [(row := table.get((n, seeds[s][which].name))) and row[key] for s in protocol.SEEDS]

    costs = {}
    for n in names:
        cost = measure_cost(specs[n])
        costs[n] = {"params_m": (cost.image.params + cost.text.params) / 1e6,
                    "gmacs": (cost.image.macs + cost.text.macs) / 1e9, "layout": layout_summary(specs[n])}
    summary = protocol.summarise(
        names, kinds, costs, {n: per_seed(short_by, n, 0) for n in names}, {n: per_seed(ref_by, n, 1) for n in names},
        {n: per_seed(short_by, n, 0) for n in extra}, {n: per_seed(short_by, n, 0, "train_loss_tail") for n in names})
    seed1 = seeds[protocol.SEEDS[1]][1].name
    curves = {n: row["curve"] for n in names if (row := ref_by.get((n, seed1))) and row.get("curve")}
    summary["curve_fidelity"] = protocol.curve_fidelity(
        curves, {n: v[0] for n in names if (v := per_seed(ref_by, n, 1))[0] is not None},
        {n: ref_by[(n, seed1)]["train_seconds"] / ref_by[(n, seed1)]["steps"] for n in curves})
    summary["score_screen"] = protocol.score_screen(
        names, {score: {n: [None if v is None else sign * v for v in per_seed(short_by, n, 0, score.removeprefix("neg_"))]
                        for n in names} for score, sign in protocol.SHORT_SCORES.items()},
        {n: per_seed(ref_by, n, 1) for n in names}, costs)
    walls = [short_by[(n, seeds[s][0].name)]["wall_seconds"] for n in names for s in protocol.SEEDS]
    summary["median_trial_seconds"] = statistics.median(walls)
    record = {"meta": meta, **summary, "recipe": recipe.to_dict(), "reference_recipe": reference.to_dict(),
              "teachers_top1": teacher_scores(recipe), "targets": protocol.targets(summary, summary["median_trial_seconds"]),
              "draws": [{"name": n, "layout": kinds[n], "spec": specs[n].to_dict()} for n in names
                        if kinds[n] != "preset"],
              "runs": [{k: v for k, v in r.items() if k not in ("spec", "recipe_config")}
                       for r in [*short_rows, *ref_rows] if r]}
    out = args.out or "proxy_fidelity"
    (RESULTS / f"{out}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"{out}.md").write_text("\n".join(protocol.report(record, args.workers)) + "\n")
    print(json.dumps({k: record[k] for k in ("tau_short_seeds", "tau_short_reference", "reference_complete",
                                              "preset_order_swaps_total", "min_multiple_of_chance")}), flush=True)


def write(kind: str, meta: dict, rows: list[dict], summary: dict, table: list[str], out: str | None = None) -> None:
    out = out or f"proxy_{kind}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{out}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=2) + "\n")
    lines = [f"# Proxy benchmark: {kind}", "", f"- date: {meta['date']}", f"- command: `{meta['command']}`",
             f"- machine: {meta['machine']['cpu']}, {meta['machine']['threads']} threads, torch {meta['machine']['libraries']['torch']}",
             "", *table, "", "```json", json.dumps(summary, indent=2), "```", ""]
    (RESULTS / f"{out}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["spread", "gain", "fidelity"])
    parser.add_argument("--presets", nargs="+", choices=preset_names())
    parser.add_argument("--recipe", default="cpu-tiny")
    parser.add_argument("--reference-recipe", default="cpu-small", help="fidelity: the >= 10x reference")
    parser.add_argument("--draws", type=int, default=14, help="fidelity: draws of spaces/hybrid.yaml added")
    parser.add_argument("--per-layout", type=int, default=2, help="fidelity: the fewest draws of each layout")
    parser.add_argument("--seed", type=int, default=0, help="fidelity: the draws' sampler seed")
    parser.add_argument("--workers", type=int, default=2, help="fidelity: trainings at a time (each on the recipe's threads)")
    parser.add_argument("--short-only", action="store_true", help="fidelity: train the short runs only")
    parser.add_argument("--pairs-first", action="store_true",
                        help="fidelity: train the reference at seed 1 of the architectures whose seed-0 reference is "
                             "logged before the rest, so the ceiling tau(reference seed 0, seed 1) comes first")
    parser.add_argument("--from-log", action="store_true",
                        help="fidelity: train nothing; report what the run log holds")
    parser.add_argument("--out", help="results name in benchmarks/results/ (default proxy_<kind>)")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    meta = run_meta("proxy_scores", threads=recipe.train.threads or 1, recipe=recipe.to_dict())
    header = "| arch | layout | zero-shot top-1 | I->T R@1 | T->I R@1 | train s | images/s |"

    def line(r):
        return (f"| {r['arch']} | {cell(r['layout'])} | {r['zeroshot_top1']:.1f} | {r['i2t_r1']:.1f} | {r['t2i_r1']:.1f} "
                f"| {r['train_seconds']:.0f} | {r['images_per_second']:.0f} |")

    if args.kind == "spread":
        rows = [score(name, get_preset(name), recipe) for name in (args.presets or preset_names())]
        top1 = [r["zeroshot_top1"] for r in rows]
        summary = {"recipe": recipe.name, "min": min(top1), "max": max(top1), "spread": max(top1) - min(top1),
                   "target": "spread >= 15 points, none above 90%",
                   "met": max(top1) - min(top1) >= 15 and max(top1) <= 90}
        write("spread", meta, rows, summary, [header, "|---|---|---|---|---|---|---|", *map(line, rows)], args.out)
    elif args.kind == "gain":
        names = args.presets or ["mobileclip_s0", "mobileclip_s2", "mobileclip_b", "vitamin_s"]
        rows, table = [], ["| arch | reinforced top-1 | plain top-1 | gain | reinforced I->T R@1 | plain I->T R@1 |",
                           "|---|---|---|---|---|---|"]
        for name in names:
            reinforced, baseline = score(name, get_preset(name), recipe), score(name, get_preset(name), plain(recipe))
            rows += [reinforced, baseline]
            table.append(f"| {name} | {reinforced['zeroshot_top1']:.1f} | {baseline['zeroshot_top1']:.1f} | "
                         f"{reinforced['zeroshot_top1'] - baseline['zeroshot_top1']:+.1f} | "
                         f"{reinforced['i2t_r1']:.1f} | {baseline['i2t_r1']:.1f} |")
        gains = [rows[i]["zeroshot_top1"] - rows[i + 1]["zeroshot_top1"] for i in range(0, len(rows), 2)]
        summary = {"steps": recipe.train.steps, "mean_gain_top1": statistics.mean(gains), "gains": dict(zip(names, gains))}
        write("gain", meta, rows, summary, table, args.out)
    else:
        fidelity(args, recipe, meta)

if __name__ == "__main__":
    main()
