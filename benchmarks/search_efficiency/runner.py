"""Running the studies: one Optuna study per (sampler, seed) the way `archsearch sweep` runs one, scored
by the stand-in objectives, and its hypervolume after each trial."""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from archsearch import pareto

from .standin import ACC_REF, GMACS_REF, LATENCY_MODES, NOISE_SD, PREDICTOR_TABLES, Evaluator, latency_stand_in


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


# --- samplers ----------------------------------------------------------------------------------------

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
