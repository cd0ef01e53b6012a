"""The report: the summary over seeds (hypervolume at the checkpoints, trials to the reference's HV, the
verdict) and the result's Markdown and JSON."""

from __future__ import annotations

import json
import statistics
from typing import Optional, Sequence

from .standin import (ACC_FLOOR, ACC_REF, ACC_SPAN, CAPACITY_MID, CAPACITY_SCALE, DEPTH_BONUS, HYBRID_BONUS,
                      LATENCY_MODES, NOISE_SD, TEXT_ATTENTION_BONUS)

CHECKPOINTS = (10, 20, 40, 60, 100)
TARGET_TRIALS = 40  # the target: the default sampler reaches random's final HV within this many trials

# What the report notes when ehvi ran: how far its lead on the stand-in carries over to real proxies.
EHVI_NOTE = (
    "How far ehvi's lead carries over to real proxies: its accuracy model regresses on the log latency of each tower "
    "and of their sum (plus the encoded parameters), and the stand-in is a saturating function of log capacity "
    "(MACs and parameters), which latency tracks. The model's form therefore suits the stand-in, and real proxy "
    "scores are noisier (cpu-tiny's seed sd is 2.0 points, against the stand-in's 1.0), so the benchmark likely "
    "overstates the lead. What carries over regardless is the mechanism: latency is known exactly before a trial, so "
    "no trial is spent to learn it. Its screening (a few hundred candidates per trial, each a table lookup) is the "
    "`sampler s` column of the per-run table.")


# --- summary -------------------------------------------------------------------------------------------

def trials_to_reach(curve: Sequence[float], target: float) -> Optional[int]:
    """The first trial count n at which curve (entry n-1) reaches `target`, or None within the budget."""
    for n, hv in enumerate(curve, 1):
        if hv >= target - 1e-12:
            return n
    return None


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarise(runs: dict[str, list[list[float]]], reference: str = "random", checkpoints=None) -> dict:
    """Per sampler label: mean/std HV at the checkpoints, and trials to reach the reference sampler's
    mean final HV (per seed; a seed that never reaches it is counted as budget + 1, and the mean is
    then a lower bound)."""
    budget = min(len(c) for curves in runs.values() for c in curves)
    target = statistics.fmean(c[budget - 1] for c in runs[reference]) if reference in runs else None
    out = {"budget": budget, "reference": reference, "target_hv": target, "samplers": {}}
    for label, curves in runs.items():
        row = {"seeds": len(curves), "hv": {}}
        for n in checkpoints or CHECKPOINTS:
            if n <= budget:
                m, s = mean_std([c[n - 1] for c in curves])
                row["hv"][str(n)] = {"mean": m, "std": s}
        if target is not None:
            reached = [trials_to_reach(c[:budget], target) for c in curves]
            counted = [r if r is not None else budget + 1 for r in reached]
            mean_curve = [statistics.fmean(c[i] for c in curves) for i in range(budget)]
            row.update(trials_to_target=reached, seeds_reaching=sum(r is not None for r in reached),
                       mean_trials_to_target=statistics.fmean(counted),
                       mean_trials_to_target_is_lower_bound=any(r is None for r in reached),
                       mean_curve_trials_to_target=trials_to_reach(mean_curve, target))
        out["samplers"][label] = row
    return out


def verdict(summary: dict, default: Optional[str] = None) -> Optional[str]:
    from archsearch.search.config import DEFAULT_SAMPLER

    default = default or DEFAULT_SAMPLER
    row = summary["samplers"].get(default)
    if row is None or summary["target_hv"] is None:
        return None
    mean = row["mean_trials_to_target"]
    met = (not row["mean_trials_to_target_is_lower_bound"]) and mean <= TARGET_TRIALS
    passing = [label for label, r in summary["samplers"].items()
               if not r["mean_trials_to_target_is_lower_bound"] and r["mean_trials_to_target"] <= TARGET_TRIALS]
    text = (f"Default ({default}): {'meets' if met else 'does not meet'} the target: mean "
            f"{'≥ ' if row['mean_trials_to_target_is_lower_bound'] else ''}{mean:.1f} trials to "
            f"{summary['reference']}'s mean HV@{summary['budget']} ({row['seeds_reaching']}/{row['seeds']} seeds reach "
            f"it; target ≤ {TARGET_TRIALS}).")
    others = [p for p in passing if p != default]
    if others:
        text += " Configurations meeting it: " + ", ".join(
            f"{p} ({summary['samplers'][p]['mean_trials_to_target']:.1f})" for p in others) + "."
    elif met:
        text += " No other configuration run meets it."
    else:
        rows = summary["samplers"]
        fastest = min((label for label in rows if label != summary["reference"]),
                      key=lambda label: rows[label]["mean_trials_to_target"], default=None)
        if fastest is not None:
            bound = "≥ " if rows[fastest]["mean_trials_to_target_is_lower_bound"] else ""
            text += (f" No configuration run meets it; the fastest is {fastest} "
                     f"(mean {bound}{rows[fastest]['mean_trials_to_target']:.1f}).")
    return text


def variant(runs: list[dict], samplers: list[str], reference: str) -> dict:
    runs = sorted(runs, key=lambda r: (samplers.index(r["sampler"]), r["seed"]))
    summary = summarise({s: [r["hv"] for r in runs if r["sampler"] == s] for s in samplers}, reference=reference)
    return {"summary": summary, "verdict": verdict(summary),
            "as_sweep": {s: all(r["as_sweep"] for r in runs if r["sampler"] == s) for s in samplers}, "runs": runs}


# --- report --------------------------------------------------------------------------------------------

def hv_table(variant: dict, n_seeds: int) -> list[str]:
    summary = variant["summary"]
    budget, target = summary["budget"], summary["target_hv"]
    shown = [n for n in CHECKPOINTS if n <= budget]
    lines = [f"Mean ± std over {n_seeds} seeds; trials to target: the first trial count at which a seed's HV reaches "
             f"{summary['reference']}'s mean HV@{budget}"
             + (f" ({target:.4f})" if target is not None else "")
             + f" (a seed that never does counts as {budget + 1}, and the mean is then a lower bound, '≥').", "",
             "| sampler | " + " | ".join(f"HV@{n}" for n in shown)
             + f" | trials to {summary['reference']}'s HV@{budget}: mean (per seed) | seeds reaching"
             " | mean curve reaches at |",
             "|---|" + "---|" * (len(shown) + 3)]
    for label, row in summary["samplers"].items():
        hv = " | ".join(f"{row['hv'][str(n)]['mean']:.4f} ± {row['hv'][str(n)]['std']:.4f}" for n in shown)
        name = f"{label}{'' if variant['as_sweep'][label] else ' (not make_sampler default)'}"
        if target is None:
            lines.append(f"| {name} | {hv} | | | |")
            continue
        per_seed = ", ".join(str(r) if r is not None else f">{budget}" for r in row["trials_to_target"])
        mean = f"{'≥ ' if row['mean_trials_to_target_is_lower_bound'] else ''}{row['mean_trials_to_target']:.1f}"
        reach = row["mean_curve_trials_to_target"]
        lines.append(f"| {name} | {hv} | {mean} ({per_seed}) | {row['seeds_reaching']}/{row['seeds']} | "
                     f"{reach if reach is not None else f'>{budget}'} |")
    if variant.get("verdict"):
        lines += ["", f"**{variant['verdict']}**"]
    return lines


def run_table(runs: list[dict]) -> list[str]:
    lines = ["| sampler | presets | seed | HV@final | pruned | repeated archs | sampler s | run s |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['sampler']} | {'yes' if run['presets'] else 'no'} | {run['seed']} | "
                     f"{run['hv'][-1]:.4f} | "
                     f"{run['pruned']} | {run['repeats']} | {run['sampler_seconds']:.1f} | {run['seconds']:.1f} |")
    return lines


def compact_json(obj, indent: int = 0) -> str:
    """JSON indented by one space per level, except that a list of scalars or of flat lists (an HV
    curve, the trial rows) stays on one line, and a dict of scalars too."""
    def flat(x):
        return not isinstance(x, (dict, list))

    if isinstance(obj, list) and all(flat(x) or (isinstance(x, list) and all(map(flat, x))) for x in obj):
        return json.dumps(obj)
    if isinstance(obj, dict) and all(map(flat, obj.values())):
        return json.dumps(obj, ensure_ascii=False)
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, list):
        return "[\n" + ",\n".join(inner + compact_json(x, indent + 1) for x in obj) + "\n" + pad + "]"
    if isinstance(obj, dict):
        return ("{\n" + ",\n".join(f"{inner}{json.dumps(k)}: {compact_json(v, indent + 1)}" for k, v in obj.items())
                + "\n" + pad + "}")
    return json.dumps(obj, ensure_ascii=False)


def latency_bullets(meta: dict) -> list[str]:
    """What the latency objective is and how the hypervolume normalises it, per mode."""
    mode = meta.get("latency", "gmacs")
    ref, unit = LATENCY_MODES[mode]
    if mode == "predictor":
        what = ("- **Latency is predicted**, not measured per architecture: the latency lookup table of this machine "
                "(`archsearch.latency.table`, torch-cpu, 1 thread, batch 1; validated in "
                "`latency_predictor.md`: 100% of 30 held-out totals within ±10%, Kendall tau 0.97) sums its measured "
                "per-unit latencies, image + text, in ms. Units the table lacked were timed on demand on this machine "
                f"and kept ({meta.get('units_measured', 0)} units, {meta.get('unit_seconds', 0):.0f} s).")
    else:
        what = ("- **Latency is a stand-in**: total fvcore GMACs (image + text; folded model; 1 image at the spec's "
                "resolution, 1 sequence of 77 tokens) from `archsearch.latency.cost.measure_cost`, the count the sweep "
                "stores as `gmacs`. GMACs grow with the work but ignore kernel efficiency (attention vs. convolution, "
                "memory-bound ops, cache effects); `--latency predictor` uses the latency table instead.")
    return [what,
            f"- Hypervolume: `archsearch.pareto.hypervolume` (Optuna's two-objective hypervolume) on the minimised pair "
            f"(-accuracy/100, latency/{ref:g} {unit}) with the fixed reference point (-{ACC_REF / 100:g}, 1), i.e. an "
            f"accuracy floor of {ACC_REF:g}% and a ceiling of {ref:g} {unit} ({meta.get('outside_box', 0)} evaluated "
            "architectures lie outside the box and count nothing). HV after n trials is that of the completed trials "
            f"among the first n, in units of (accuracy fraction) x (fraction of {ref:g} {unit})."]


def to_markdown(result: dict) -> str:
    meta = result["meta"]
    fp = meta["fingerprint"]
    n_seeds = len(meta["seeds"])
    lines = [
        f"# Search efficiency on `{meta['space']}`: hypervolume after N trials",
        "",
        f"Machine: {fp.get('cpu')} ({fp.get('cpus_available')} CPUs available), {fp.get('system')}, torch-cpu 1 thread "
        f"(fingerprint `{fp['id']}`); date: {meta['date']}; optuna {meta['optuna']}, torch {meta['torch']}.",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Wall time {meta['wall_seconds']:.0f} s with {meta['jobs']} process(es), of which "
        f"{meta['measure_seconds']:.0f} s "
        f"(summed over processes) measuring the MACs of {meta['measured']} architectures not yet cached; "
        f"{meta['cached_at_start']} evaluations were cached by ArchSpec.digest in `{meta['cache']}` at the start. "
        f"{meta['distinct_architectures']} distinct architectures were evaluated in all; their MAC count took "
        f"{meta['mean_cost_seconds']:.1f} s each on average when first measured, so from an empty cache the MAC "
        f"counts alone take about {meta['cold_measure_seconds']} s of one core.",
        "",
        "## Setup, and what is a stand-in",
        "",
        f"- {meta['trials']} trials per study, seeds {', '.join(map(str, meta['seeds']))}; one worker, trials one "
        "after "
        "another; samplers from `archsearch.search.samplers.make_sampler` (exactly what `archsearch sweep` uses; the "
        "sampler seed is what worker 0 of a sweep with `--seed S` gets); two objectives (accuracy up, latency down), "
        "no constraints. A label with `:key=value` changes a setting and is marked as not the default.",
        f"- Main comparison: the space's {len(meta['presets'])} presets ({', '.join(meta['presets'])}) are enqueued "
        "first, as `archsearch sweep` does, so every study starts with the same trials and they count against the "
        "budget (for TPE they also count towards its `n_startup_trials`)."
        if meta["presets"] else "- Main comparison: no presets enqueued (`--no-presets`).",
        "- A sampled combination the space does not build (a tie rule or the ArchSpec validator) is a PRUNED trial and "
        "counts against the budget, as in the sweep's tally (none occurred: see `pruned` per run).",
        "- Same seed, same start: TPE's start-up trials and NSGA-II's first generation are drawn by Optuna's "
        "RandomSampler with the study's seed, so for a given seed they are the very architectures random search "
        "samples first (TPE: until `n_startup_trials` trials are complete; NSGA-II: the first population, 50). The "
        "curves are paired by seed and equal until a sampler starts to model.",
        *latency_bullets(meta),
        "- **Accuracy is a stand-in**, a fixed function of the architecture only, never of the sampler "
        f"(`accuracy_stand_in`): `{ACC_FLOOR:g} + {ACC_SPAN:g} * sigmoid((capacity - {CAPACITY_MID:g}) / "
        f"{CAPACITY_SCALE:g})` with capacity = 0.55 ln(image GMACs) + 0.25 ln(image Mparams) + 0.20 ln(text Mparams); "
        f"plus {HYBRID_BONUS:g} · 4a(1-a) (a: attention share of image blocks), {DEPTH_BONUS:g} · "
        f"ln(image blocks / 12), {TEXT_ATTENTION_BONUS:g} · (attention share of text layers) and "
        f"{meta.get('noise_sd', NOISE_SD):g} · "
        "N(0,1) drawn from the spec hash; clipped to [0, 100]. Its constants were set from the presets (table below) "
        "before any sampler ran and were not "
        "changed after. It says nothing about real zero-shot accuracy: what is measured is how fast each sampler "
        "finds a front of this shape in this space.",
        "",
        "## Preset stand-in values",
        "",
        "| preset | accuracy stand-in (%) | GMACs | predicted ms | params (M) | layout |",
        "|---|---|---|---|---|---|",
    ]
    for p in result["preset_values"]:
        ms = f"{p['latency']:.1f}" if meta.get("latency") == "predictor" else ""
        lines.append(f"| {p['preset']} | {p['acc']:.1f} | {p['gmacs']:.2f} | {ms} | {p['params_m']:.1f} | "
                     f"{p['layout'].replace('|', '/')} |")
    title = "presets enqueued first, as in a sweep" if meta["presets"] else "no presets"
    lines += ["", f"## Hypervolume: {title}", "", *hv_table(result, n_seeds)]
    if result.get("no_presets"):
        lines += ["", "## Hypervolume: no presets (each study starts from the sampler alone)", "",
                  *hv_table(result["no_presets"], n_seeds)]
    if meta.get("notes"):
        lines += ["", "## Notes", "", *(f"- {n}" for n in meta["notes"])]
    lines += ["", "## Per run", "", *run_table(result["runs"] + result.get("no_presets", {}).get("runs", [])),
              "", "In the JSON beside this file, per run: `hv` (the HV after each trial), `trials` ([ArchSpec.digest, accuracy "
              "stand-in, latency objective] per trial, null when pruned) and `front` (its final front, with layouts); "
              "`no_presets.runs` likewise.", ""]
    return "\n".join(lines)

