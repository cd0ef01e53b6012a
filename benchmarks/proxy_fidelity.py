"""The proxy-fidelity protocol: does the short proxy rank 20 architectures as a 10x longer training does?

- Architectures: the presets of spaces/hybrid.yaml plus draws from it with a fixed seed, at least
  `per_layout` of each of its layouts (the draws are listed in the result).
- Short runs: the default recipe exactly as a sweep runs it, at student seeds 0 and 1. MobileCLIP
  and ViTamin variants outside the space (ViTamin-L) are run short too, for the papers' order only.
- Reference runs: a recipe with >= 10x the short optimiser steps, the same loss, lambda, data and
  teachers, at the same proxy scale or larger (checked), at seeds 0 and 1, averaged.
- Figures: tau(short seed 0, short seed 1), tau(reference seed 0, seed 1), tau(short seed 0,
  reference mean) with its bootstrap 95% interval over architectures, the same tau for two free
  baselines (image+text params and GMACs of the full-size spec), the papers' order of the
  published variants, the lowest short score as a multiple of chance and the median trial time.

The reference costs 10x the short runs (hours of CPU), so the trainings go in an order that makes
a partial run useful: every short run first, then the reference at seed 0 for every architecture,
cheapest first by its short run's time, then at seed 1 in the same order. Every training is appended to
results/proxy_runs.jsonl; a rerun resumes, and `--from-log` reports what the log holds, with the
number of architectures each figure rests on.
"""

from __future__ import annotations

import statistics
from collections import Counter

import optuna

from archsearch.analysis.ranking import (
    PUBLISHED_PRESETS, kendall_tau, multiple_of_chance, preset_order_swaps, tau_bootstrap_ci,
)
from archsearch.data.scenes import class_names
from archsearch.proxy.recipe import Recipe
from archsearch.space import load_space
from archsearch.spec import get_preset
from archsearch.spec.arch import ArchSpec

from benchmarks.common import ci_suffix

SPACE = "hybrid"
SEEDS = (0, 1)
MIN_STEP_RATIO = 10
SCALE_FIELDS = ("resolution", "width_mult", "depth_mult", "text_width_mult", "text_depth_mult", "context_length")


def protocol_draws(count: int = 14, seed: int = 0, per_layout: int = 2,
                   space_name: str = SPACE) -> list[tuple[str, str, ArchSpec]]:
    """(name, layout, spec) of `count` random draws of the space, at least `per_layout` of each layout.

    Draws come from Optuna's RandomSampler at `seed`, in order; a draw is skipped only when taking
    it would leave too few places for the layouts still short of their quota, so the list is fixed
    by the seed alone."""
    space = load_space(space_name)
    layouts = list(space.file.image.layouts)
    if count < per_layout * len(layouts):
        raise ValueError(f"{count} draws cannot hold {per_layout} of each of {len(layouts)} layouts")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    taken: Counter[str] = Counter()
    out: list[tuple[str, str, ArchSpec]] = []
    while len(out) < count:
        trial = study.ask()
        try:
            spec = space.sample(trial)
        except optuna.TrialPruned:
            continue
        layout = trial.params["image.layout"]
        short_after = sum(max(0, per_layout - taken[name] - (name == layout)) for name in layouts)
        if short_after > count - len(out) - 1:
            continue
        taken[layout] += 1
        out.append((f"{space_name}-s{seed}-{trial.number}", layout, spec))
    return out


def architectures(draws: int, seed: int, per_layout: int) -> list[tuple[str, str, ArchSpec]]:
    """The space's presets, then its draws: (name, kind, spec), kind 'preset' or the draw's layout."""
    space = load_space(SPACE)
    presets = [(name, "preset", get_preset(name)) for name in space.file.presets]
    return presets + protocol_draws(draws, seed, per_layout)


def check_reference(short: Recipe, reference: Recipe) -> None:
    """The protocol's conditions on the reference recipe, as one clear error naming the field."""
    problems = []
    if reference.train.steps < MIN_STEP_RATIO * short.train.steps:
        problems.append(f"train.steps {reference.train.steps} < {MIN_STEP_RATIO} x {short.train.steps}")
    if reference.loss != short.loss:
        problems.append(f"loss {reference.loss.model_dump()} differs from {short.loss.model_dump()}")
    if reference.data != short.data:
        problems.append("data (store and teachers) differs")
    for field in SCALE_FIELDS:
        a, b = getattr(short.scale, field), getattr(reference.scale, field)
        if a is not None and (b is not None and b < a):
            problems.append(f"scale.{field} {b} < the short recipe's {a}")
    if problems:
        raise ValueError(f"reference recipe {reference.name!r} does not fit the protocol: {'; '.join(problems)}")


def _tau(a: list[float], b: list[float], least: int = 3) -> float | None:
    """Kendall's tau, or None over fewer than `least` architectures (too few to rank)."""
    return kendall_tau(a, b) if len(a) >= least else None


def _interval(a: list[float], b: list[float]) -> tuple[float, float] | None:
    return tau_bootstrap_ci(a, b) if len(a) >= 3 else None


def summarise(names: list[str], kinds: dict[str, str], costs: dict[str, dict], short: dict[str, list],
              reference: dict[str, list], extra_short: dict[str, list], loss_tail: dict[str, list]) -> dict:
    """The protocol's figures from per-architecture score lists (seed 0, seed 1; None where not run).

    `short` and `reference` map each of the protocol's architectures to its zero-shot top-1 per
    seed; `extra_short` holds published variants outside the space (papers' order only);
    `loss_tail` the short runs' last-quarter training loss per seed (lower is better)."""
    chance = len(class_names())
    complete = [n for n in names if None not in reference[n]]
    ref_mean = {n: statistics.fmean(reference[n]) for n in complete}
    table = []
    for n in names:
        table.append({"arch": n, "kind": kinds[n], "layout": costs[n]["layout"], "params_m": costs[n]["params_m"],
                      "gmacs": costs[n]["gmacs"], "short": short[n], "reference": reference[n],
                      "reference_mean": ref_mean.get(n), "short_loss_tail": loss_tail[n],
                      "multiple_of_chance": min(multiple_of_chance(v, chance) for v in short[n])})
    s0 = [short[n][0] for n in names]
    published = {**short, **extra_short}
    swaps = {f"seed{s}": preset_order_swaps({n: published[n][i] for n in PUBLISHED_PRESETS if n in published})
             for i, s in enumerate(SEEDS)}
    out = {
        "architectures": names,
        "tau_short_seeds": kendall_tau(s0, [short[n][1] for n in names]),
        "tau_short_seeds_ci": tau_bootstrap_ci(s0, [short[n][1] for n in names]),
        "tau_reference_seeds": _tau([reference[n][0] for n in complete], [reference[n][1] for n in complete], least=2),
        "tau_reference_seeds_ci": _interval([reference[n][0] for n in complete], [reference[n][1] for n in complete]),
        "tau_short_reference": None, "tau_short_reference_ci": None, "tau_params": None, "tau_gmacs": None,
        "reference_complete": len(complete),
        "min_multiple_of_chance": min(row["multiple_of_chance"] for row in table),
        "preset_order_swaps": swaps,
        "preset_order_swaps_total": {k: sum(v.values()) for k, v in swaps.items()},
        "tau_short_loss_tail_seeds": kendall_tau([-loss_tail[n][0] for n in names], [-loss_tail[n][1] for n in names]),
        "table": table,
    }
    first = [n for n in names if reference[n][0] is not None]
    out["reference_seed0_complete"] = len(first)
    interim = [short[n][0] for n in first], [reference[n][0] for n in first]
    out["tau_short_reference_seed0"], out["tau_short_reference_seed0_ci"] = _tau(*interim), _interval(*interim)
    if len(complete) >= 3:
        mean = [ref_mean[n] for n in complete]
        out["tau_short_reference"] = kendall_tau([short[n][0] for n in complete], mean)
        out["tau_short_reference_ci"] = tau_bootstrap_ci([short[n][0] for n in complete], mean)
        out["tau_params"] = kendall_tau([costs[n]["params_m"] for n in complete], mean)
        out["tau_gmacs"] = kendall_tau([costs[n]["gmacs"] for n in complete], mean)
        out["tau_short_loss_tail_reference"] = kendall_tau([-loss_tail[n][0] for n in complete], mean)
        out["best_reference_top1"] = max(max(reference[n]) for n in complete)
    return out


def curve_fidelity(curves: dict[str, list[dict]], final_other_seed: dict[str, float],
                   seconds_per_step: dict[str, float]) -> list[dict]:
    """How the reference's ranking forms over its training: at every step k of the zero-shot curves
    one reference seed logged (`curves`: arch -> [{step, zeroshot_top1, ...}]), Kendall's tau of the
    curve's top-1 at k against the other seed's final top-1 (`final_other_seed`: a truncated reference
    as the proxy, against an independent full one; at the last step this is the ceiling) and against
    the same run's final top-1 (how far the order still moves). `seconds` is what k steps cost per
    trial on this machine (median over the architectures of the reference's training seconds per step)."""
    names = [n for n in curves if n in final_other_seed and curves[n]]
    if len(names) < 3:
        return []
    steps = sorted({point["step"] for n in names for point in curves[n]})
    per_step = statistics.median(seconds_per_step[n] for n in names)
    rows = []
    for k in steps:
        at = {n: next((p["zeroshot_top1"] for p in curves[n] if p["step"] == k), None) for n in names}
        have = [n for n in names if at[n] is not None]
        if len(have) < 3:
            continue
        mine, other = [at[n] for n in have], [final_other_seed[n] for n in have]
        own_final = [curves[n][-1]["zeroshot_top1"] for n in have]
        rows.append({"step": k, "n": len(have), "seconds": k * per_step,
                     "tau_other_seed_final": kendall_tau(mine, other), "tau_other_seed_final_ci": tau_bootstrap_ci(mine, other),
                     "tau_own_final": kendall_tau(mine, own_final),
                     "top1_min": min(mine), "top1_max": max(mine)})
    return rows


# Scores a short run yields besides zero-shot top-1, each screened as the proxy's score: minus the
# last-quarter training loss (Ru et al.'s TSE-E) and the retrieval recalls (continuous at 500 pairs).
SHORT_SCORES = {"zeroshot_top1": 1.0, "neg_train_loss_tail": -1.0, "i2t_r1": 1.0, "t2i_r1": 1.0, "i2t_r5": 1.0,
                "t2i_r5": 1.0}


def score_screen(names: list[str], scores: dict[str, dict[str, list]], reference: dict[str, list],
                 costs: dict[str, dict]) -> dict[str, dict]:
    """Each candidate score of the short run (and the free baselines) against the reference's zero-shot
    top-1: tau between its seeds, tau against the reference at seed 0 and against the seed mean, each
    with the number of architectures it rests on. Chosen after looking at nothing: every score the
    run logs is screened, and all stay in the result."""
    first = [n for n in names if reference[n][0] is not None]
    complete = [n for n in names if None not in reference[n]]
    ref0 = [reference[n][0] for n in first]
    mean = [statistics.fmean(reference[n]) for n in complete]
    out = {}
    for score, values in scores.items():
        out[score] = {"tau_seeds": kendall_tau([values[n][0] for n in names], [values[n][1] for n in names]),
                      "tau_reference_seed0": _tau([values[n][0] for n in first], ref0), "n_seed0": len(first),
                      "tau_reference_mean": _tau([values[n][0] for n in complete], mean), "n_mean": len(complete)}
    for baseline in ("params_m", "gmacs"):
        out[baseline] = {"tau_seeds": None, "tau_reference_seed0": _tau([costs[n][baseline] for n in first], ref0),
                         "n_seed0": len(first), "n_mean": len(complete),
                         "tau_reference_mean": _tau([costs[n][baseline] for n in complete], mean)}
    return out


def targets(summary: dict, median_seconds: float) -> dict[str, dict]:
    """The issue's targets, each with its value and whether it is met (None: not measured yet)."""
    tau, params, gmacs = summary["tau_short_reference"], summary["tau_params"], summary["tau_gmacs"]
    full = summary["reference_complete"] == len(summary["architectures"])
    baseline = None if params is None else max(params, gmacs)
    swaps = max(summary["preset_order_swaps_total"].values())
    return {
        "tau_short_reference": {"target": ">= 0.8 and >= 0.15 above max(tau_params, tau_gmacs), over all 20",
                                "value": tau, "baseline": baseline,
                                "met": None if tau is None or not full else tau >= 0.8 and tau - baseline >= 0.15},
        "tau_short_seeds": {"target": ">= 0.8", "value": summary["tau_short_seeds"],
                            "met": summary["tau_short_seeds"] >= 0.8},
        "preset_order_swaps": {"target": "<= 1 over the seven published variants, at each seed", "value": swaps,
                               "met": swaps <= 1},
        "min_multiple_of_chance": {"target": ">= 3", "value": summary["min_multiple_of_chance"],
                                   "met": summary["min_multiple_of_chance"] >= 3},
        "median_trial_seconds": {"target": "<= 90 (1 thread)", "value": median_seconds, "met": median_seconds <= 90},
    }



def _f(value: float | None, digits: int = 1) -> str:
    return "not run" if value is None else f"{value:.{digits}f}"




def report(record: dict, workers: int) -> list[str]:
    """proxy_fidelity.md: the per-architecture table, the figures with their n, and the targets."""
    m, n, k = record["meta"], len(record["architectures"]), record["reference_complete"]
    short, ref = record["recipe"], record["reference_recipe"]
    lines = ["# Proxy fidelity: the short proxy against a 10x reference on 20 architectures", "",
             f"- date: {m['date']}", f"- command: `{m['command']}`",
             f"- machine: {m['machine']['cpu']}, {m['machine']['threads']} thread(s) per run, {workers} runs at a "
             f"time, torch {m['machine']['libraries']['torch']}",
             f"- short: `{short['name']}`, {short['train']['steps']} steps, batch {short['train']['batch_size']}, "
             f"lr {short['train']['lr']:g}, at {short['scale']['resolution']} px, widths x{short['scale']['width_mult']}",
             f"- reference: `{ref['name']}`, {ref['train']['steps']} steps (the same data, teachers, loss and scale)",
             f"- teachers (zero-shot top-1): {', '.join(f'{t:.1f}' for t in record['teachers_top1'])}; best reference "
             f"student: {_f(record.get('best_reference_top1'))}", "",
             "| arch | kind | layout | params M | GMACs | short s0, s1 | x chance | loss tail s0, s1 | reference s0, s1 "
             "| reference mean |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in record["table"]:
        lines.append(f"| {row['arch']} | {row['kind']} | {row['layout'].replace('|', '/')} | {row['params_m']:.1f} | "
                     f"{row['gmacs']:.2f} | {', '.join(map(_f, row['short']))} | {row['multiple_of_chance']:.1f} | "
                     f"{', '.join(_f(v, 3) for v in row['short_loss_tail'])} | "
                     f"{', '.join(map(_f, row['reference']))} | {_f(row['reference_mean'])} |")
    swaps = record["preset_order_swaps"]
    lines += ["", "## Figures", "",
              f"- tau(short seed 0, short seed 1), n = {n}: {record['tau_short_seeds']:.2f}"
              f"{ci_suffix(record['tau_short_seeds_ci'])} (top-1); {record['tau_short_loss_tail_seeds']:.2f} "
              "(minus the last-quarter training loss)",
              f"- tau(reference seed 0, seed 1), the ceiling, n = {k}: {_f(record['tau_reference_seeds'], 2)}"
              f"{ci_suffix(record.get('tau_reference_seeds_ci'))}",
              f"- tau(short seed 0, reference mean), n = {k} of {n}: {_f(record['tau_short_reference'], 2)}"
              f"{ci_suffix(record['tau_short_reference_ci'])}; by the loss tail "
              f"{_f(record.get('tau_short_loss_tail_reference'), 2)}",
              f"- interim, tau(short seed 0, reference seed 0), n = {record['reference_seed0_complete']} of {n}: "
              f"{_f(record['tau_short_reference_seed0'], 2)}{ci_suffix(record.get('tau_short_reference_seed0_ci'))}",
              f"- baselines against the reference mean, n = {k}: params {_f(record['tau_params'], 2)}, "
              f"GMACs {_f(record['tau_gmacs'], 2)}",
              "- papers' order of the seven published variants (pairs out of order; a tie counts half): "
              + "; ".join(f"{s}: {', '.join(f'{fam} {v:g}' for fam, v in fam_swaps.items())}"
                          for s, fam_swaps in swaps.items()),
              f"- lowest short score: {record['min_multiple_of_chance']:.1f}x chance (64 classes)",
              f"- median short trial: {record['median_trial_seconds']:.0f} s wall",
              "", "## Each short score against the reference (zero-shot top-1)", "",
              "| score | tau seed 0 vs 1 | tau vs reference seed 0 (n) | tau vs reference mean (n) |", "|---|---|---|---|",
              *(f"| {name} | {_f(v['tau_seeds'], 2)} | {_f(v['tau_reference_seed0'], 2)} ({v['n_seed0']}) | "
                f"{_f(v['tau_reference_mean'], 2)} ({v['n_mean']}) |" for name, v in record["score_screen"].items()),
              "", "params_m and gmacs are the free baselines (full-size image + text params and GMACs).",
              "", "## Targets", "", "| figure | target | value | met |", "|---|---|---|---|"]
    for name, t in record["targets"].items():
        value = t["value"] if not isinstance(t["value"], float) else round(t["value"], 2)
        met = "not measured yet" if t["met"] is None else "yes" if t["met"] else "no"
        lines.append(f"| {name} | {t['target']} | {value} | {met} |")
    if k < n:
        lines += ["", f"The reference has run at both seeds for {k} of {n} architectures and at seed 0 for "
                  f"{record['reference_seed0_complete']}; it runs cheapest first (by the short run's time), so the "
                  "partial figures lean towards the smaller models."]
    curve = record.get("curve_fidelity") or []
    if curve:
        lines += ["", "## How the reference's ranking forms (the seed-1 reference's zero-shot curve)", "",
                  "At every tenth of the reference's steps, tau of the seed-1 run's top-1 so far against the seed-0 "
                  "reference's final top-1 (a truncated reference as the proxy, against an independent full one; "
                  "at the last step this is the ceiling) and against the same run's final top-1. Seconds: what that "
                  "many steps cost per trial here (median training seconds per step of these architectures' "
                  "references, 1 thread). The reference's schedule (warm-up 80 steps, cosine over 800) is not the "
                  "short recipe's, so an early row is not a short run; it shows when the order settles.", "",
                  "| step | n | seconds | top-1 range | tau vs seed-0 final [95% CI] | tau vs own final |",
                  "|---|---|---|---|---|---|",
                  *(f"| {r['step']} | {r['n']} | {r['seconds']:.0f} | {r['top1_min']:.1f}-{r['top1_max']:.1f} | "
                    f"{r['tau_other_seed_final']:.2f}{ci_suffix(r['tau_other_seed_final_ci'])} | {r['tau_own_final']:.2f} |"
                    for r in curve)]
    lines += ["", "Draws of spaces/hybrid.yaml (RandomSampler, seed in the command; spec in the JSON): "
              + ", ".join(f"{d['name']} ({d['layout']})" for d in record["draws"]) + "."]
    return lines
