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
    python benchmarks/proxy_scores.py fidelity --long-kd-lambda 0.75 --out proxy_fidelity_kd075

Every run is appended to results/proxy_runs.jsonl (one line per training, so an interrupted
benchmark keeps what it measured and a rerun skips it); the summaries go to results/proxy_<kind>.{json,md}
(or results/<--out>.{json,md}).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import optuna
from md_table import cell

from archsearch.analysis.ranking import kendall_tau
from archsearch.latency.fingerprint import device_fingerprint
from archsearch.proxy.recipe import LossConfig, Recipe, load_recipe
from archsearch.proxy.run import run_proxy
from archsearch.space import load_space
from archsearch.spec import get_preset, preset_names
from archsearch.spec.arch import ArchSpec, layout_summary

RESULTS = Path(__file__).parent / "results"
RUNS = RESULTS / "proxy_runs.jsonl"
METRICS = ("zeroshot_top1", "i2t_r1", "t2i_r1", "i2t_r5", "t2i_r5", "train_seconds", "images_per_second", "steps",
           "train_loss_tail")


def plain(recipe: Recipe) -> Recipe:
    """The same recipe without reinforcement: lambda = 0 on real captions only."""
    return recipe.model_copy(update={"name": recipe.name + "-plain",
                                     "loss": recipe.loss.model_copy(update={"kd_lambda": 0.0, "captions": "real"})})


def with_kd_lambda(recipe: Recipe, kd_lambda: float) -> Recipe:
    """The recipe with another distillation weight (named for it): the fidelity benchmark's long run
    with some CLIP loss left in, so that its students are not capped at the teachers' level."""
    loss = LossConfig.model_validate({**recipe.loss.model_dump(), "kd_lambda": kd_lambda})
    return recipe.model_copy(update={"name": f"{recipe.name}-kd{kd_lambda:g}", "loss": loss})


def kd_lambda_arg(text: str) -> float:
    """argparse type for --long-kd-lambda: one clear line (exit 2) outside the loss's range."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the recipe field loss.kd_lambda's range [0, 1]")
    return value


def _done() -> dict[tuple[str, str], dict]:
    if not RUNS.is_file():
        return {}
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return {(r["arch"], r["recipe"]): r for r in rows}


def recorded(name: str, spec: ArchSpec, recipe: Recipe, done: dict | None = None) -> dict | None:
    """The logged run of this arch name under this recipe, if its spec and recipe content are the same."""
    previous = (_done() if done is None else done).get((name, recipe.name))
    if previous and previous["recipe_config"] == recipe.to_dict() and previous["spec"] == spec.to_dict():
        return previous
    return None


def score(name: str, spec: ArchSpec, recipe: Recipe) -> dict:
    """Train and score (or reuse a recorded run of the same arch, recipe and recipe content)."""
    previous = recorded(name, spec, recipe)
    if previous:
        return previous
    started = time.perf_counter()
    result = run_proxy(spec, recipe, wandb="disabled", progress=False)
    row = {"arch": name, "recipe": recipe.name, "layout": layout_summary(spec), "spec": spec.to_dict(),
           "recipe_config": recipe.to_dict(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "wall_seconds": time.perf_counter() - started, **{k: result[k] for k in METRICS}}
    RESULTS.mkdir(exist_ok=True)
    with RUNS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: row[k] for k in ("arch", "recipe", "zeroshot_top1", "i2t_r1", "train_seconds")}), flush=True)
    return row


def seed_repeatability(rows: list[dict]) -> dict:
    """How well a short proxy ranks architectures against *itself*: Kendall tau between the scores
    of two student seeds, over every (architecture, recipe) the run log holds at seeds 0, 1 and 2
    (recipe names `<base>`, `<base>-seed1`, `<base>-seed2`). Seed noise alone bounds how high any
    tau between two recipes can go, so the fidelity result is read against this."""
    by_item: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        base, _, seed = r["recipe"].rpartition("-seed")
        base, seed = (base, int(seed)) if base and seed.isdigit() else (r["recipe"], 0)
        by_item.setdefault((r["arch"], base), {})[seed] = r["zeroshot_top1"]
    items = sorted(key for key, seeds in by_item.items() if {0, 1, 2} <= set(seeds))
    if len(items) < 3:
        return {"items": [], "note": "fewer than 3 architectures with seeds 0, 1 and 2 in the run log"}
    pairs = {f"{i}-{j}": kendall_tau([by_item[x][i] for x in items], [by_item[x][j] for x in items])
             for i, j in ((0, 1), (0, 2), (1, 2))}
    sds = [statistics.stdev(by_item[x][s] for s in (0, 1, 2)) for x in items]
    return {"items": [f"{a} ({b})" for a, b in items], "kendall_tau_between_seeds": pairs,
            "mean_kendall_tau": statistics.fmean(pairs.values()), "mean_seed_sd_top1": statistics.fmean(sds)}


def fidelity_table(summary: dict) -> list[str]:
    short_name, long_name = summary["short_recipe"], summary["long_recipe"]
    long_names = {"reinforced": summary.get("long_reinforced_recipe", long_name), "plain": long_name}
    lines = [f"| arch | {short_name} reinforced | {long_names['reinforced']} reinforced | {short_name} plain | {long_name} plain |",
             "|---|---|---|---|---|"]
    def score(label: str, part: str, i: int) -> str:
        value = (summary[label] if label in summary else summary["partial"][label])[part][i]
        return "not run" if value is None else f"{value:.1f}"

    for i, name in enumerate(summary["architectures"]):
        lines.append(f"| {name} | " + " | ".join(score(label, part, i) for label in ("reinforced", "plain")
                                                  for part in ("short", "long")) + " |")
    lines += ["", *(f"- {label}: Kendall tau ({short_name} vs {long_names[label]}) = {summary[label]['kendall_tau']:.2f}"
                    if label in summary else f"- {label}: not measured yet; missing {', '.join(summary['missing'][label])}"
                    for label in ("reinforced", "plain"))]
    if "reinforced_short_vs_plain_long" in summary:
        lines.append(f"- reinforced {short_name} vs plain {long_name} (no teacher ceiling on the long run): "
                     f"Kendall tau = {summary['reinforced_short_vs_plain_long']:.2f}")
    lines += [f"- {label}: {short_name} scores span {min(v['short']):.1f}-{max(v['short']):.1f}, "
              f"{long_names[label]} scores {min(v['long']):.1f}-{max(v['long']):.1f}"
              for label, v in ((label, summary.get(label)) for label in ("reinforced", "plain")) if v]
    rep = summary["seed_repeatability"]
    if rep.get("items"):
        lines.append(f"- seed repeatability of the short proxy (tau between student seeds over {len(rep['items'])} "
                     f"architectures already run at seeds 0-2): mean {rep['mean_kendall_tau']:.2f} "
                     f"({', '.join(f'{k}: {v:.2f}' for k, v in rep['kendall_tau_between_seeds'].items())}); "
                     f"mean seed sd {rep['mean_seed_sd_top1']:.1f} points")
    return lines


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
    parser.add_argument("--long-recipe", default="cpu-small")
    parser.add_argument("--samples", type=int, default=4, help="fidelity: random hybrid architectures added")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="fidelity: trainings at a time (each on the recipe's threads)")
    parser.add_argument("--from-log", action="store_true",
                        help="fidelity: train nothing; report the variants whose runs are all in the log")
    parser.add_argument("--long-kd-lambda", type=kd_lambda_arg,
                        help="fidelity: the long reinforced run's lambda instead of its recipe's (e.g. 0.75, "
                             "MobileCLIP-B's), so that long-trained students can pass the teachers")
    parser.add_argument("--out", help="results name in benchmarks/results/ (default proxy_<kind>)")
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
        from findings_common import score_all  # imports this module lazily in its workers

        long_recipe = load_recipe(args.long_recipe)
        archs = [(n, get_preset(n)) for n in (args.presets or ["mobileclip_s0", "mobileclip_s1", "mobileclip_b", "vitamin_s"])]
        archs += hybrid_samples(args.samples, args.seed)
        long_reinforced = long_recipe if args.long_kd_lambda is None else with_kd_lambda(long_recipe, args.long_kd_lambda)
        variants = (("reinforced", recipe, long_reinforced), ("plain", plain(recipe), plain(long_recipe)))
        # Reinforced first: an interrupted run has the headline pair before the plain one.
        jobs = [(n, s, r) for _, short, long in variants for r in (short, long) for n, s in archs]
        if args.from_log:  # report what the log holds; a variant with a run missing is listed, not scored
            log = _done()
            found = [recorded(*job, done=log) for job in jobs]
        else:
            found = score_all(jobs, args.workers)
            log = _done()  # read the run log once, after every training
        k = len(archs)
        summary = {"architectures": [n for n, _ in archs], "short_recipe": recipe.name, "long_recipe": long_recipe.name}
        if long_reinforced is not long_recipe:
            summary["long_reinforced_recipe"] = long_reinforced.name
        for i, (label, _, _) in enumerate(variants):
            part = found[2 * i * k:(2 * i + 2) * k]
            if any(row is None for row in part):
                summary.setdefault("missing", {})[label] = [
                    f"{n} ({r.name})" for (n, _, r), row in zip(jobs[2 * i * k:(2 * i + 2) * k], part) if row is None]
                values = [row and row["zeroshot_top1"] for row in part]
                summary.setdefault("partial", {})[label] = {"short": values[:k], "long": values[k:]}
                continue
            a, b = [row["zeroshot_top1"] for row in part[:k]], [row["zeroshot_top1"] for row in part[k:]]
            summary[label] = {"kendall_tau": kendall_tau(a, b), "short": a, "long": b}
        if "reinforced" in summary and "plain" in summary:
            # The plain long run has no teacher ceiling: how the reinforced short score ranks against it.
            summary["reinforced_short_vs_plain_long"] = kendall_tau(summary["reinforced"]["short"], summary["plain"]["long"])
        logged = list(log.values())
        summary["seed_repeatability"] = seed_repeatability(logged)
        names, recipes = set(summary["architectures"]), {r.name for _, short, long in variants for r in (short, long)}
        rows = [r for r in logged if r["arch"] in names and r["recipe"] in recipes]
        write("fidelity", meta, rows, summary, fidelity_table(summary), args.out)


if __name__ == "__main__":
    main()
