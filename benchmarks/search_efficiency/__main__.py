"""`python -m benchmarks.search_efficiency`: the arguments, the studies, and the result written to
benchmarks/results/search_efficiency.{json,md} (or --out PREFIX)."""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import benchmarks.search_efficiency as package
from benchmarks.common import RESULTS, command

from .report import EHVI_NOTE, TARGET_TRIALS, compact_json, to_markdown, variant
from .runner import _run_study_job, build_sampler, parse_sampler, quiet, run_study, scipy_outside_env
from .standin import ACC_REF, DEFAULT_CACHE, LATENCY_MODES, NOISE_SD, PREDICTOR_TABLES, accuracy_stand_in, load_cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_efficiency", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
                                   if os.environ.get(k)), command("search_efficiency", argv)]),
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