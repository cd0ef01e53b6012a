"""Proxy benchmarks on this machine, each recorded in benchmarks/results/:

- `spread`   (reinforced-data issue): cpu-tiny zero-shot scores of the presets; the embedded data
             must spread them over >= 15 points with none above 90%.
- `gain`     reinforcement gain: zero-shot top-1 at equal steps, reinforced loss vs plain CLIP
             (lambda = 0, real captions only).
- `fidelity` Kendall tau between cpu-tiny and cpu-small scores over presets plus random samples of
             spaces/hybrid.yaml, with and without reinforcement.

    python benchmarks/proxy_scores.py spread [--presets ...]
    python benchmarks/proxy_scores.py gain --presets mobileclip_s0 mobileclip_s2 vitamin_s mobileclip_b
    python benchmarks/proxy_scores.py fidelity --samples 4

Every run is appended to results/proxy_runs.jsonl (one line per training, so an interrupted
benchmark keeps what it measured and a rerun skips it); the summaries go to results/proxy_<kind>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
from pathlib import Path

import optuna
from md_table import cell
from scipy.stats import kendalltau

from archsearch.latency.fingerprint import device_fingerprint
from archsearch.proxy.recipe import Recipe, load_recipe
from archsearch.proxy.run import run_proxy
from archsearch.space import load_space
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import ArchSpec, layout_summary

RESULTS = Path(__file__).parent / "results"
RUNS = RESULTS / "proxy_runs.jsonl"
METRICS = ("zeroshot_top1", "i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5", "train_seconds", "images_per_second", "steps")


def plain(recipe: Recipe) -> Recipe:
    """The same recipe without reinforcement: lambda = 0 on real captions only."""
    return recipe.model_copy(update={"name": recipe.name + "-plain",
                                     "loss": recipe.loss.model_copy(update={"kd_lambda": 0.0, "captions": "real"})})


def _done() -> dict[tuple[str, str], dict]:
    if not RUNS.is_file():
        return {}
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return {(r["arch"], r["recipe"]): r for r in rows}


def score(name: str, spec: ArchSpec, recipe: Recipe) -> dict:
    """Train and score (or reuse a recorded run of the same arch, recipe and recipe content)."""
    key = (name, recipe.name)
    previous = _done().get(key)
    if previous and previous["recipe_config"] == recipe.to_dict() and previous["spec"] == spec.to_dict():
        return previous
    result = run_proxy(spec, recipe, wandb="disabled", progress=False)
    row = {"arch": name, "recipe": recipe.name, "layout": layout_summary(spec), "spec": spec.to_dict(),
           "recipe_config": recipe.to_dict(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
           **{k: result[k] for k in METRICS}}
    RESULTS.mkdir(exist_ok=True)
    with RUNS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: row[k] for k in ("arch", "recipe", "zeroshot_top1", "i2t_r1", "train_seconds")}), flush=True)
    return row


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties in either list count as neither concordant nor discordant)."""
    return float(kendalltau(a, b).statistic)


def hybrid_samples(count: int, seed: int) -> list[tuple[str, ArchSpec]]:
    space = load_space("hybrid")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    while len(out) < count:
        trial = study.ask()
        try:
            out.append((f"hybrid-s{seed}-{trial.number}", space.sample(trial)))
        except optuna.TrialPruned:
            pass
    return out


def write(kind: str, meta: dict, rows: list[dict], summary: dict, table: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"proxy_{kind}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=2) + "\n")
    lines = [f"# Proxy benchmark: {kind}", "", f"- date: {meta['date']}", f"- command: `{meta['command']}`",
             f"- machine: {meta['machine']['cpu']}, {meta['machine']['threads']} threads, torch {meta['machine']['libraries']['torch']}",
             "", *table, "", "```json", json.dumps(summary, indent=2), "```", ""]
    (RESULTS / f"proxy_{kind}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["spread", "gain", "fidelity"])
    parser.add_argument("--presets", nargs="+", choices=preset_names())
    parser.add_argument("--recipe", default="cpu-tiny")
    parser.add_argument("--long-recipe", default="cpu-small")
    parser.add_argument("--samples", type=int, default=4, help="fidelity: random hybrid architectures added")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    meta = {"date": datetime.date.today().isoformat(),
            "command": shlex.join(["python", "benchmarks/proxy_scores.py", *sys.argv[1:]]),
            "machine": device_fingerprint("torch-cpu", recipe.train.threads or 1), "recipe": recipe.to_dict()}
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
        write("spread", meta, rows, summary, [header, "|---|---|---|---|---|---|---|", *map(line, rows)])
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
        write("gain", meta, rows, summary, table)
    else:
        long_recipe = load_recipe(args.long_recipe)
        archs = [(n, get_preset(n)) for n in (args.presets or ["mobileclip_s0", "mobileclip_s1", "mobileclip_b", "vitamin_s"])]
        archs += hybrid_samples(args.samples, args.seed)
        rows, summary = [], {"architectures": [n for n, _ in archs]}
        for label, short, long in (("reinforced", recipe, long_recipe), ("plain", plain(recipe), plain(long_recipe))):
            a = [score(n, s, short)["zeroshot_top1"] for n, s in archs]
            b = [score(n, s, long)["zeroshot_top1"] for n, s in archs]
            summary[label] = {"kendall_tau": kendall_tau(a, b), "short": a, "long": b}
        rows = list(_done().values())
        write("fidelity", meta, rows, summary, [f"- {k}: tau = {v['kendall_tau']:.2f}" for k, v in summary.items()
                                               if isinstance(v, dict)])


if __name__ == "__main__":
    main()
