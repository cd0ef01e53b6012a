"""Two finished sweeps on real proxies, side by side: hypervolume by trial count, and how well
`ehvi`'s accuracy model predicted the proxies it chose.

`benchmarks.search_efficiency` compares samplers on a cheap accuracy stand-in over many seeds. This
reads real `archsearch sweep` studies (trained proxies, measured latency) instead, so it checks
whether the stand-in's verdict survives real scores, at the few seeds a 2-core machine affords:

    archsearch sweep --study real-ehvi --trials 24
    archsearch sweep --study real-random --sampler random --trials 24
    python -m benchmarks.sweep_compare runs/real-ehvi runs/real-random --ref-latency-ms 800 \\
        --out benchmarks/results/sweep_real_ehvi_vs_random

For every trial `ehvi` screened, its record (user attribute `screening`) holds the predicted
accuracy (mean, std) at the time it was chosen; the report sets that against the proxy's score.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
from pathlib import Path

from optuna.trial import TrialState
from scipy.stats import spearmanr

from archsearch.analysis.front import scored_points
from archsearch.analysis.hypervolume import ReferencePoint, hypervolume
from archsearch.analysis.open_study import open_run_dir
from archsearch.environment import cpu_model
from archsearch.search.ehvi import SCREENING_ATTR

from benchmarks.common import cell, command



def hv_by_trials(trials, reference: ReferencePoint, counts: list[int]) -> dict[int, float]:
    """Hypervolume of the first n finished trials (by number), for each n in `counts`."""
    finished = sorted((t for t in trials if t.state.is_finished()), key=lambda t: t.number)
    return {n: hypervolume(scored_points(finished[:n]), reference) for n in counts if n <= len(finished)}


def screened_predictions(trials) -> list[dict]:
    rows = []
    for t in trials:
        seen = t.user_attrs.get(SCREENING_ATTR)
        if seen and t.state == TrialState.COMPLETE and t.user_attrs.get("trained", True):
            actual = t.user_attrs["zeroshot_top1"]
            rows.append({"trial": t.number, "layout": t.user_attrs.get("layout", ""), "predicted": seen["mean"],
                         "std": seen["std"], "actual": actual, "z": (actual - seen["mean"]) / max(seen["std"], 1e-9),
                         "table_ms": seen["latency"], "measured_ms": t.user_attrs["latency_ms"]})
    return rows


def spearman(a: list[float], b: list[float]) -> float:
    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="run directories of finished sweeps (runs/<study>/)")
    parser.add_argument("--ref-latency-ms", type=float, required=True,
                        help="hypervolume reference latency, the same for every study")
    parser.add_argument("--counts", type=int, nargs="+", default=[6, 10, 14, 18, 24])
    parser.add_argument("--out", type=Path, required=True, help="result path without suffix (.json and .md)")
    args = parser.parse_args(argv)

    reference = ReferencePoint(0.0, args.ref_latency_ms, "given")
    studies = {}
    for directory in args.run_dirs:
        source = open_run_dir(directory)
        trials = source.study.get_trials(deepcopy=False)
        config = source.study.user_attrs["archsearch"]
        studies[source.name] = {"sampler": config["sampler"], "seed": config["seed"],
                                "hv": hv_by_trials(trials, reference, args.counts),
                                "screened": screened_predictions(trials)}
    result = {"date": datetime.date.today().isoformat(), "machine": f"{cpu_model()}, {platform.machine()}",
              "command": command("sweep_compare", argv),
              "reference": reference.to_dict(), "studies": studies}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(report(result, args.counts))
    print(args.out.with_suffix(".md").read_text())
    return result


def report(result: dict, counts: list[int]) -> str:
    lines = ["# Sweeps on real proxies, side by side", "",
             f"- date: {result['date']}; machine: {result['machine']}",
             f"- command: `{result['command']}`",
             f"- hypervolume reference: zero-shot top-1 0 %, latency {result['reference']['latency_ms']:g} ms "
             "(% x ms; measured full-size latency, cpu-tiny proxy scores)", "",
             "| study | sampler | seed | " + " | ".join(f"HV@{n}" for n in counts) + " |",
             "|---|---|---|" + "---|" * len(counts)]
    for name, s in result["studies"].items():
        cells = [f"{s['hv'][n]:.0f}" if n in s["hv"] else "–" for n in counts]
        lines.append(f"| {name} | {s['sampler']} | {s['seed']} | " + " | ".join(cells) + " |")
    for name, s in result["studies"].items():
        rows = s["screened"]
        if not rows:
            continue
        z = [abs(r["z"]) for r in rows]
        lines += ["", f"## {name}: what ehvi predicted for the {len(rows)} trials it chose", "",
                  f"- Spearman correlation of predicted and actual zero-shot top-1: "
                  f"{spearman([r['predicted'] for r in rows], [r['actual'] for r in rows]):.2f}",
                  f"- within 1 predicted std: {sum(v <= 1 for v in z)}/{len(z)}; within 2: {sum(v <= 2 for v in z)}/{len(z)}"
                  f"; mean actual - predicted: {statistics.fmean(r['actual'] - r['predicted'] for r in rows):+.1f} points",
                  "", "| trial | layout | predicted % | actual % | z | table ms | measured ms |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['trial']} | {cell(r['layout'])} | {r['predicted']:.1f} ± {r['std']:.1f} | {r['actual']:.1f} | "
                  f"{r['z']:+.1f} | {r['table_ms']:.0f} | {r['measured_ms']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
