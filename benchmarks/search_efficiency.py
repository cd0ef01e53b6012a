"""Search efficiency on a space: hypervolume after N trials for each sampler, over several seeds.

Each (sampler, seed) runs one Optuna study the way `archsearch sweep` runs one: the samplers come
from `archsearch.search.samplers.make_sampler` (exactly what the sweep uses), the two objectives
are (accuracy: maximise, latency: minimise), the space's presets are enqueued first as named
trials (``--no-presets`` leaves them out), a sampled combination the space does not build is
told PRUNED and counts against the budget as in the sweep's tally, and there are no constraints.
One worker, trials one after another.

With ``--latency predictor`` the latency objective is this machine's latency lookup table
(``runs/latency_tables/benchmark``, built and validated by benchmarks/latency_predictor.py)
instead of GMACs; units it lacks are timed as they come, so that mode runs one study at a time.

What is *not* real, and why (the proxy trains for minutes and the latency table measures units
on demand; 1500+ evaluations of either cost hours on a shared 2-core machine):

- latency stand-in: the architecture's total fvcore GMACs (image + text, folded model, one
  image at its resolution and one 77-token sequence), from `archsearch.latency.cost.measure_cost`
  (the same count the sweep stores as ``gmacs``). Monotone in work, blind to how efficiently a
  kernel runs (attention vs. convolution, memory-bound ops).
- accuracy stand-in: `accuracy_stand_in`, a fixed, documented function of the architecture alone
  (never of the sampler), saturating in capacity, plus a per-architecture pseudo-random term
  from the spec hash. Its constants were set from the presets before any sampler ran.

Evaluations are cached by `ArchSpec.digest` in ``runs/search_efficiency/costs.jsonl`` (MAC counts do
not depend on the machine), so a rerun only pays for the samplers. Results dated before 2026-12-06
keyed the cache and the stand-in's noise term by a hash of the full spec dump instead; a rerun
differs from them by that noise draw alone.

Hypervolume: `archsearch.pareto.hypervolume` (the area Optuna's WFG computes in two objectives),
over the completed trials among the first n, on the minimised pair (-accuracy / 100, GMACs / GMACS_REF)
with the reference point (-ACC_REF / 100, 1): the area dominated by the front in (accuracy fraction,
fraction of GMACS_REF), below ACC_REF% accuracy or above GMACS_REF counting nothing (points
outside the reference box are dropped, as Optuna's hypervolume-history plot does).

    python benchmarks/search_efficiency.py --latency predictor [--trials 100] [--seeds 5] [--samplers ehvi tpe nsga2 random]
    python benchmarks/search_efficiency.py --samplers tpe gp tpe:n_startup_trials=20 nsga2:population_size=20

`ehvi` (the sweep's default) screens its candidates by the latency objective itself, so it runs
only with ``--latency predictor``, where that objective is the table's prediction: what the
sampler knows before a trial is then exactly the trial's latency value, as in a sweep it is the
table's prediction of the measured one (within ±10 %).

A sampler argument is a `make_sampler` name, optionally with ``:key=value,...``: for tpe and gp,
``n_startup_trials`` goes through `make_sampler`; anything else (e.g. nsga2's
``population_size``) builds the Optuna sampler directly with make_sampler's other settings and
is marked as not the sweep's configuration. Writes benchmarks/results/search_efficiency.{json,md}
(or --out PREFIX).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from archsearch import pareto

RESULTS = Path(__file__).parent / "results"
DEFAULT_CACHE = Path("runs/search_efficiency/costs.jsonl")
CHECKPOINTS = (10, 20, 40, 60, 100)
TARGET_TRIALS = 40  # the target: the default sampler reaches random's final HV within this many trials

# Hypervolume reference point (fixed, independent of any run): accuracy floor (%) and latency ceiling.
ACC_REF = 40.0
GMACS_REF = 40.0
# The latency objective: `gmacs` (total fvcore GMACs, the first stand-in) or `predictor` (the
# latency lookup table's predicted image + text ms on this machine, 1 thread, batch 1), with the
# ceiling of its hypervolume box and its unit.
LATENCY_MODES = {"gmacs": (GMACS_REF, "GMACs"), "predictor": (2000.0, "ms")}
PREDICTOR_TABLES = Path("runs/latency_tables/benchmark")  # where benchmarks/latency_predictor.py builds its table

# --- the accuracy stand-in ------------------------------------------------------------------------
# Constants fixed from the presets before any sampler ran: capacity puts MobileCLIP-S0 near 60%
# and the base-size models near 75%; the architecture terms are each worth a few points.
ACC_FLOOR, ACC_SPAN = 30.0, 50.0        # logistic in capacity: 30% .. 80%
CAPACITY_MID, CAPACITY_SCALE = 1.8, 0.9
HYBRID_BONUS = 2.0      # image towers that mix convolutional and attention stages (peak at half/half)
DEPTH_BONUS = 1.0       # per e-fold of image depth (number of blocks) over 12
TEXT_ATTENTION_BONUS = 1.5  # all-attention text tower vs all Text-RepMixer
NOISE_SD = 1.0          # per-architecture pseudo-random term (std, accuracy points)


def capacity(cost: dict) -> float:
    """Log-capacity: 0.55 ln(image GMACs) + 0.25 ln(image Mparams) + 0.20 ln(text Mparams)."""
    return (0.55 * math.log(cost["image_gmacs"]) + 0.25 * math.log(cost["image_params"] / 1e6)
            + 0.20 * math.log(cost["text_params"] / 1e6))


def spec_noise(sid: str) -> float:
    """A fixed standard-normal draw per architecture, from its spec hash (Box-Muller)."""
    digest = hashlib.sha256(f"search-efficiency:{sid}".encode()).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2 ** 64 + 1)
    u2 = int.from_bytes(digest[8:16], "big") / 2 ** 64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def accuracy_stand_in(spec, cost: dict, sid: Optional[str] = None, noise_sd: float = NOISE_SD) -> float:
    """Stand-in zero-shot top-1 (%) of `spec` with fvcore `cost` (ArchCost.to_dict()):

        30 + 50 * sigmoid((capacity - 1.8) / 0.9)
        + 2.0 * 4 a (1 - a)          a: share of image blocks that are attention
        + 1.0 * ln(D / 12)           D: image blocks (sum of stage depths)
        + 1.5 * t                    t: share of text layers that are attention
        + 1.0 * N(0, 1)[spec hash]     (1.0: `noise_sd`, --noise-sd)

    clipped to [0, 100]. Deterministic in the architecture; saturating in capacity."""
    blocks = sum(s.depth for s in spec.image.stages)
    attention = sum(s.depth for s in spec.image.stages if s.mixer == "attention") / blocks
    text_attention = sum(m == "attention" for m in spec.text.layers) / len(spec.text.layers)
    acc = (ACC_FLOOR + ACC_SPAN / (1.0 + math.exp(-(capacity(cost) - CAPACITY_MID) / CAPACITY_SCALE))
           + HYBRID_BONUS * 4.0 * attention * (1.0 - attention)
           + DEPTH_BONUS * math.log(blocks / 12.0)
           + TEXT_ATTENTION_BONUS * text_attention
           + noise_sd * spec_noise(sid or spec.digest()))
    return min(100.0, max(0.0, acc))


def latency_stand_in(cost: dict) -> float:
    """Total GMACs, image + text."""
    return cost["image_gmacs"] + cost["text_gmacs"]


# --- hypervolume ----------------------------------------------------------------------------------

def hypervolume(points: Sequence[tuple[float, float]], acc_ref: float = ACC_REF, latency_ref: float = GMACS_REF
                ) -> float:
    """HV of (accuracy %, latency objective) points (GMACs, or predicted ms), maximise accuracy,
    minimise the latency objective, in the unit box: (acc/100, latency/latency_ref) against the
    reference (acc_ref/100, 1); points outside the box are dropped."""
    return pareto.hypervolume(points, acc_ref, latency_ref) / (100.0 * latency_ref)


def hypervolume_curve(values: Sequence[Optional[tuple[float, float]]], acc_ref: float = ACC_REF,
                      latency_ref: float = GMACS_REF) -> list[float]:
    """HV after each trial: entry n-1 is the HV of the completed trials among the first n (None
    for a pruned trial)."""
    curve, done = [], []
    for v in values:
        if v is not None:
            done.append(v)
        curve.append(hypervolume(done, acc_ref, latency_ref) if v is not None or not curve else curve[-1])
    return curve


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (accuracy, GMACs) points no other point dominates, first occurrence of
    duplicates only, by GMACs."""
    return pareto.front_indices(points)


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


# --- samplers ----------------------------------------------------------------------------------------

EHVI_NOTE = (
    "How far ehvi's lead carries over to real proxies: its accuracy model regresses on the log latency of each tower "
    "and of their sum (plus the encoded parameters), and the stand-in is a saturating function of log capacity "
    "(MACs and parameters), which latency tracks. The model's form therefore suits the stand-in, and real proxy "
    "scores are noisier (cpu-tiny's seed sd is 2.0 points, against the stand-in's 1.0), so the benchmark likely "
    "overstates the lead. What carries over regardless is the mechanism: latency is known exactly before a trial, so "
    "no trial is spent to learn it. Its screening (a few hundred candidates per trial, each a table lookup) is the "
    "`sampler s` column of the per-run table.")

def parse_sampler(arg: str) -> tuple[str, dict]:
    """'tpe' -> ('tpe', {}); 'nsga2:population_size=20,crossover_prob=0.8' -> ('nsga2', {...})."""
    name, _, rest = arg.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"sampler option {item!r}: expected key=value")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        else:
            value = {"true": True, "false": False}.get(value.lower(), value)
        options[key] = value
    return name, options


def build_sampler(arg: str, seed: int, space=None, latency_of=None):
    """(sampler, whether it is exactly what `make_sampler` gives the sweep). `space` and
    `latency_of` are what `ehvi` screens with (the benchmark's own latency objective)."""
    import optuna

    from archsearch.search.ehvi import KnownLatencySampler
    from archsearch.search.samplers import make_sampler

    name, options = parse_sampler(arg)
    direct = {k: v for k, v in options.items() if k != "n_startup_trials"}
    if not direct:
        kwargs = {"n_startup_trials": options["n_startup_trials"]} if "n_startup_trials" in options else {}
        return make_sampler(name, seed, space=space, latency_of=latency_of, **kwargs), not kwargs
    if name == "ehvi":
        return KnownLatencySampler(space, latency_of, seed=seed, **options), False
    defaults = {"tpe": (optuna.samplers.TPESampler, dict(multivariate=True, group=True, constant_liar=True)),
                "nsga2": (optuna.samplers.NSGAIISampler, {}),
                "gp": (optuna.samplers.GPSampler, dict(warn_independent_sampling=False)),
                "random": (optuna.samplers.RandomSampler, {})}
    cls, base = defaults[name]
    return cls(seed=seed, **{**base, **options}), False


# --- evaluations (cached by ArchSpec.digest) ----------------------------------------------------------

COST_KEYS = ("image_params", "text_params", "image_gmacs", "text_gmacs")


def load_cache(path: Path) -> dict[str, dict]:
    cache = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a killed writer
            cache[row["id"]] = row
    return cache


def append_cache(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(row) + "\n").encode())  # one write per line: safe for parallel runs
    finally:
        os.close(fd)


class Evaluator:
    """Accuracy stand-in and latency objective of a spec: MAC counts cached by ArchSpec.digest; predicted
    latency from this machine's table, its missing units timed on demand (and kept in the table)."""

    def __init__(self, cache_path: Path, latency: str = "gmacs", table_dir: Path = PREDICTOR_TABLES,
                 noise_sd: float = NOISE_SD):
        self.noise_sd = noise_sd
        self.cache_path = cache_path
        self.cache = load_cache(cache_path)
        self.measured = self.seconds = 0
        self.latency = latency
        self.units_measured, self.unit_seconds = 0, 0.0
        self.table = None
        if latency == "predictor":
            from archsearch.latency.table import load_table

            self.table = load_table("torch-cpu", batch=1, threads=1, cache_dir=table_dir)

    def latency_of(self, spec, cost: dict) -> float:
        if self.table is None:
            return latency_stand_in(cost)
        started = time.perf_counter()
        predicted = self.table.predict(spec, measure_missing=True, save=True)
        if predicted["added_units"]:
            self.units_measured += len(predicted["added_units"])
            self.unit_seconds += time.perf_counter() - started
        return predicted["total_ms"]

    def latency_of_spec(self, spec, measure_missing: bool) -> Optional[tuple[float, float]]:
        """The latency objective of `spec` before it is a trial (what `ehvi` screens with): the
        table's prediction, so only in predictor mode, where it costs a lookup; None for a
        candidate with units the table lacks, unless `measure_missing`."""
        if self.table is None:
            raise ValueError("ehvi screens candidates by the latency table: run it with --latency predictor")
        if not measure_missing and self.table.missing_units(spec):
            return None
        predicted = self.table.predict(spec, measure_missing=True, save=True)
        return predicted["image_ms"], predicted["text_ms"]

    def cost(self, spec, sid: str) -> dict:
        if sid not in self.cache:
            from archsearch.latency.cost import measure_cost
            from archsearch.spec.arch import layout_summary

            started = time.perf_counter()
            cost = measure_cost(spec).to_dict()
            seconds = time.perf_counter() - started
            self.seconds += seconds
            self.measured += 1
            row = {"id": sid, **{k: cost[k] for k in COST_KEYS}, "layout": layout_summary(spec),
                   "seconds": round(seconds, 2)}
            append_cache(self.cache_path, row)
            self.cache[sid] = row
        return self.cache[sid]

    def __call__(self, spec, sid: str) -> tuple[float, float, dict]:
        cost = self.cost(spec, sid)
        return accuracy_stand_in(spec, cost, sid, self.noise_sd), self.latency_of(spec, cost), cost


# --- one study -----------------------------------------------------------------------------------------

def scipy_outside_env() -> Optional[str]:
    """None when scipy cannot be imported, '' when it is installed in this environment, else the
    directory it comes from (put on PYTHONPATH)."""
    import importlib.util

    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).resolve().parents[1]
    if Path(sys.prefix).resolve() in root.parents:
        return ""
    return os.path.relpath(root) if Path.cwd().resolve() in root.parents else str(root)


def quiet() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def run_study(sampler_arg: str, seed: int, trials: int, space_name: str, presets: bool, cache_path: str,
              log_every: int = 0, latency: str = "gmacs", table_dir: str = str(PREDICTOR_TABLES),
              noise_sd: float = NOISE_SD) -> dict:
    import optuna
    import torch

    from archsearch.space import PrunedArchitecture, load_space
    from archsearch.spec.arch import layout_summary
    from archsearch.spec.presets import get_preset

    torch.set_num_threads(1)
    quiet()
    space = load_space(space_name)
    evaluate = Evaluator(Path(cache_path), latency, Path(table_dir), noise_sd)
    sampler, as_sweep = build_sampler(sampler_arg, seed, space, evaluate.latency_of_spec)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    if presets:
        for name in space.presets:
            study.enqueue_trial(space.params_of(get_preset(name)), user_attrs={"preset": name})
    started = time.perf_counter()
    sampling = 0.0
    records, values = [], []
    for n in range(1, trials + 1):
        t0 = time.perf_counter()
        trial = study.ask()
        try:
            spec = space.sample(trial)
        except PrunedArchitecture as exc:
            sampling += time.perf_counter() - t0
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            records.append({"trial": n, "state": "pruned", "rule": exc.rule})
            values.append(None)
            continue
        sampling += time.perf_counter() - t0
        sid = spec.digest()
        acc, lat, cost = evaluate(spec, sid)
        study.tell(trial, (acc, lat))
        record = {"trial": n, "state": "complete", "id": sid, "acc": round(acc, 4), "latency": round(lat, 5),
                  "gmacs": round(latency_stand_in(cost), 5),
                  "params_m": round((cost["image_params"] + cost["text_params"]) / 1e6, 3),
                  "layout": layout_summary(spec)}
        if "preset" in trial.user_attrs:
            record["preset"] = trial.user_attrs["preset"]
        records.append(record)
        values.append((acc, lat))
        if log_every and n % log_every == 0:
            print(f"  {sampler_arg} seed {seed}: {n}/{trials} trials, {evaluate.measured} measured "
                  f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    curve = hypervolume_curve(values, latency_ref=LATENCY_MODES[latency][0])
    complete = [r for r in records if r["state"] == "complete"]
    ids = [r["id"] for r in complete]
    return {"sampler": sampler_arg, "seed": seed, "presets": presets, "as_sweep": as_sweep,
            "hv": [round(h, 6) for h in curve], "pruned": len(records) - len(complete),
            "pruned_rules": [r["rule"] for r in records if r["state"] == "pruned"],
            "distinct": len(set(ids)), "repeats": len(ids) - len(set(ids)), "measured": evaluate.measured,
            "measure_seconds": round(evaluate.seconds, 1), "sampler_seconds": round(sampling, 2),
            "units_measured": evaluate.units_measured, "unit_seconds": round(evaluate.unit_seconds, 1),
            "seconds": round(time.perf_counter() - started, 1),
            "trials": [[r["id"], r["acc"], r["latency"]] if r["state"] == "complete" else None for r in records],
            "enqueued": [r for r in complete if "preset" in r],
            "front": [complete[i] for i in pareto_front([(r["acc"], r["latency"]) for r in complete])]}


def _run_study_job(job: tuple) -> dict:
    return run_study(*job)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--samplers", nargs="+", default=["ehvi", "tpe", "nsga2", "random"])
    parser.add_argument("--space", default="hybrid")
    parser.add_argument("--no-presets", action="store_true", help="do not enqueue the space's presets first")
    parser.add_argument("--no-presets-also", nargs="*", default=[], metavar="SAMPLER",
                        help="also run these samplers without presets (a second table; must include --reference)")
    parser.add_argument("--reference", default="random", help="sampler whose mean final HV is the target")
    parser.add_argument("--jobs", type=int, default=1, help="studies run in parallel processes (1 thread each)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--out", default=str(RESULTS / "search_efficiency"), help="output prefix (.json, .md)")
    parser.add_argument("--latency", choices=sorted(LATENCY_MODES), default="gmacs",
                        help="latency objective: total GMACs, or the latency table's prediction on this machine")
    parser.add_argument("--noise-sd", type=float, default=NOISE_SD,
                        help="std of the stand-in's per-architecture noise term (accuracy points); the constants "
                             f"were fixed with {NOISE_SD:g}, a larger value checks how a sampler copes with noisier "
                             "scores (real cpu-tiny proxies: seed sd 2.0)")
    parser.add_argument("--table-dir", default=str(PREDICTOR_TABLES),
                        help="--latency predictor: where this machine's table is (benchmarks/latency_predictor.py's)")
    args = parser.parse_args(argv)
    if args.latency == "predictor" and args.jobs > 1:
        parser.error("--latency predictor times the units the table lacks as it goes: run with --jobs 1, so that "
                     "no other study shares the CPU with those measurements")
    latency_ref = LATENCY_MODES[args.latency][0]
    if args.latency == "predictor":
        from archsearch.errors import UserError
        from archsearch.latency.table import load_table

        try:
            load_table("torch-cpu", batch=1, threads=1, cache_dir=args.table_dir)
        except UserError as exc:
            parser.error(f"{exc} (benchmarks/latency_predictor.py builds it in {PREDICTOR_TABLES})")

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import optuna
    import torch

    from archsearch.environment import device_fingerprint
    from archsearch.search.config import DEFAULT_SAMPLER
    from archsearch.space import load_space

    torch.set_num_threads(1)
    quiet()
    space = load_space(args.space)
    for arg in [*args.samplers, *args.no_presets_also]:
        if parse_sampler(arg)[0] == "ehvi" and args.latency != "predictor":
            parser.error(f"{arg}: ehvi screens candidates by their predicted latency: use --latency predictor")
        build_sampler(arg, 0, space, lambda spec, measure: (0.0, 0.0))  # fail now on a bad name or option
        if parse_sampler(arg)[0] == "gp" and scipy_outside_env() is None:
            parser.error(f"{arg}: Optuna's GPSampler needs scipy, which is not importable here "
                         "(e.g. `pip install --target DIR scipy` and PYTHONPATH=DIR)")
    if args.reference not in args.samplers:
        parser.error(f"--reference {args.reference!r} is not among --samplers")
    also = args.no_presets_also if not args.no_presets else []
    if also and args.reference not in also:
        parser.error(f"--no-presets-also: include the reference sampler {args.reference!r}")
    started = time.monotonic()
    cached_at_start = len(load_cache(Path(args.cache)))
    # The reference sampler first: with the same seed, the other samplers' random start-up trials
    # are the same architectures, which are then already cached.
    jobs = []
    for presets, samplers in ((not args.no_presets, args.samplers), (False, also)):
        order = [s for s in samplers if s == args.reference] + [s for s in samplers if s != args.reference]
        jobs += [(s, seed, args.trials, args.space, presets, args.cache, 10, args.latency, args.table_dir,
                  args.noise_sd)
                 for s in order for seed in range(args.seeds)]
    print(f"{len(jobs)} studies of {args.trials} trials on {args.space}, {args.jobs} at a time; "
          f"{cached_at_start} evaluations cached in {args.cache}", file=sys.stderr, flush=True)

    def done(run: dict) -> None:
        print(f"done {run['sampler']}{'' if run['presets'] else ' (no presets)'} seed {run['seed']}: "
              f"HV {run['hv'][-1]:.4f} ({run['seconds']:.0f} s)", file=sys.stderr, flush=True)

    runs = []
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
            for run in pool.imap(_run_study_job, jobs):
                done(run)
                runs.append(run)
    else:
        for job in jobs:
            runs.append(run_study(*job))
            done(runs[-1])

    main_runs = [r for r in runs if r["presets"] == (not args.no_presets)]
    result = variant(main_runs, args.samplers, args.reference)
    if also:
        result["no_presets"] = variant([r for r in runs if not r["presets"]], also, args.reference)
    presets = [] if args.no_presets else list(space.presets)
    preset_values = []
    if presets:
        preset_values = [{k: t[k] for k in ("preset", "acc", "gmacs", "latency", "params_m", "layout")}
                         for t in main_runs[0]["enqueued"]]
    fp = device_fingerprint("torch-cpu", 1)
    cache = load_cache(Path(args.cache))
    used = {t[0] for r in runs for t in r["trials"] if t is not None}
    timed = [cache[i]["seconds"] for i in used if "seconds" in cache.get(i, {})]
    notes = []
    scipy_origin = scipy_outside_env()
    if scipy_origin is None:
        notes.append("`gp` (make_sampler's GPSampler) cannot run in this environment: Optuna's GP sampler imports "
                     "scipy, which is not installed (ModuleNotFoundError at its first non-start-up trial).")
    elif scipy_origin:
        notes.append(f"scipy is not installed in the project's environment (nor declared in pyproject.toml), but "
                     f"Optuna's GPSampler needs it: for `gp`, scipy was put on PYTHONPATH from `{scipy_origin}`. "
                     "`archsearch sweep --sampler gp` fails without it.")
    if any(parse_sampler(arg)[0] == "ehvi" for arg in [*args.samplers, *args.no_presets_also]):
        notes.append(EHVI_NOTE)
    meta = {"space": args.space, "trials": args.trials, "seeds": list(range(args.seeds)), "samplers": args.samplers,
            "no_presets_samplers": also, "presets": presets, "reference": args.reference,
            "target": f"the default sampler ({DEFAULT_SAMPLER}) reaches {args.reference}'s mean HV@{args.trials} in <= "
                      f"{TARGET_TRIALS} trials (mean over seeds)",
            "latency": args.latency, "noise_sd": args.noise_sd,
            "hv_reference_point": {"accuracy_pct": ACC_REF, LATENCY_MODES[args.latency][1]: latency_ref,
                                   "minimised": [-ACC_REF / 100, 1.0],
                                   "normalisation": f"(-acc/100, latency/{latency_ref:g})"},
            "latency_stand_in": ("predicted image + text ms from this machine's latency table"
                                 if args.latency == "predictor" else
                                 "total fvcore GMACs (image + text) from archsearch.latency.cost.measure_cost"),
            "units_measured": sum(r.get("units_measured", 0) for r in runs),
            "unit_seconds": sum(r.get("unit_seconds", 0.0) for r in runs),
            "outside_box": len({t[0] for r in runs for t in r["trials"] if t is not None and t[2] >= latency_ref}),
            "accuracy_stand_in": accuracy_stand_in.__doc__.strip(),
            "fingerprint": fp, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "optuna": optuna.__version__, "torch": torch.__version__,
            "command": " ".join([*(f"{k}={shlex.quote(os.environ[k])}" for k in ("OMP_NUM_THREADS", "PYTHONPATH")
                                   if os.environ.get(k)), "python", "benchmarks/search_efficiency.py",
                                 *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
            "jobs": args.jobs, "cache": args.cache, "cached_at_start": cached_at_start,
            "distinct_architectures": len(used),
            "mean_cost_seconds": statistics.fmean(timed) if timed else float("nan"),
            "cold_measure_seconds": round(sum(timed)),
            "measured": sum(r["measured"] for r in runs),
            "measure_seconds": sum(r["measure_seconds"] for r in runs),
            "wall_seconds": round(time.monotonic() - started, 1), "notes": notes}
    result = {"meta": meta, **result, "preset_values": preset_values}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(compact_json(result) + "\n")
    out.with_suffix(".md").write_text(to_markdown(result))
    for name, v in (("presets" if presets else "no presets", result), ("no presets", result.get("no_presets"))):
        if not v:
            continue
        for label, row in v["summary"]["samplers"].items():
            hv = ", ".join(f"@{n} {x['mean']:.4f}±{x['std']:.4f}" for n, x in row["hv"].items())
            print(f"[{name}] {label}: {hv}; trials to target {row.get('trials_to_target')}", file=sys.stderr)
        if v["verdict"]:
            print(f"[{name}] {v['verdict']}", file=sys.stderr)
    print(f"wrote {out.with_suffix('.json')} and .md ({meta['wall_seconds']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
