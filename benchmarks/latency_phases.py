"""How long are the host's slow phases, and does a model's latency ratio to the anchor survive them?

Drift correction (`archsearch.latency.drift`) assumes two things about a slow phase: it lasts
longer than a round, so both halves of a round see it, and it slows both models by the same
factor. This measures both on the idle machine. The image towers of a candidate (MobileCLIP-S2)
and the anchor (MobileCLIP-S0) run pinned to one CPU in single-run alternation (one candidate run,
then as many anchor runs as take about as long) for `--seconds`, and the report gives:

- how slow each run is against its model's median (quantiles: a bimodal spread is phases);
- the autocorrelation of that slowness by lag in runs (how long a phase lasts);
- the ratio in slow and in fast phases (a difference is what no interleaving can cancel);
- the scatter (CV) of round ratios for rounds of 1, 2, 4 and 8 cycles.

    python -m benchmarks.latency_phases [--seconds 120] [--cpu 1] [--out latency_phases]

Results: results/OUT.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from benchmarks.common import RESULTS, run_meta

CANDIDATE, ANCHOR = "mobileclip_s2", "mobileclip_s0"
LAGS = (1, 2, 4, 8, 16, 32)
BLOCKS = (1, 2, 4, 8)
SLOW = 1.1  # an anchor run this much above its median is in a slow phase


def record(seconds: float, cpu: int) -> list[tuple[float, float, list[float]]]:
    """[(time s, candidate ms, [anchor ms, ...])], one cycle each, image towers, 1 thread, pinned."""
    os.sched_setaffinity(0, [cpu])
    from archsearch.latency.backends import get_backend
    from archsearch.latency.measure import timed_runs
    from archsearch.spec import get_preset

    backend = get_backend("torch-cpu")
    candidate, _ = timed_runs(get_preset(CANDIDATE), backend, 1, 1)
    anchor, _ = timed_runs(get_preset(ANCHOR), backend, 1, 1)
    warm = [(candidate(), anchor()) for _ in range(3)]
    per_cycle = max(1, round(min(c for c, _ in warm) / min(a for _, a in warm)))
    cycles, start = [], time.monotonic()
    while time.monotonic() - start < seconds:
        at = time.monotonic() - start
        cycles.append((at, candidate(), [anchor() for _ in range(per_cycle)]))
    return cycles


def analyse(cycles: list[tuple[float, float, list[float]]]) -> dict:
    cand = np.array([c for _, c, _ in cycles])
    anch = np.array([statistics.median(a) for _, _, a in cycles])
    runs = np.array([x / np.median(cand) if i == 0 else x / np.median(anch)
                     for _, c, a in cycles for i, x in enumerate([c, *a])])
    slow = anch > SLOW * np.median(anch)
    ratio = cand / anch

    def by_blocks(k: int) -> dict:
        rounds = [float(np.median(cand[j:j + k]) / np.median(anch[j:j + k])) for j in range(0, len(cand) - k + 1, k)]
        return {"cycles": k, "rounds": len(rounds), "median": statistics.median(rounds),
                "cv": statistics.stdev(rounds) / statistics.fmean(rounds) if len(rounds) > 1 else 0.0}

    return {
        "cycles": len(cycles), "seconds": cycles[-1][0] if cycles else 0.0,
        "anchor_runs_per_cycle": len(cycles[0][2]) if cycles else 0,
        "candidate_ms": float(np.median(cand)), "anchor_ms": float(np.median(anch)),
        "slowness_quantiles": {str(q): float(v) for q, v in zip((0.05, 0.25, 0.5, 0.75, 0.95),
                                                               np.quantile(runs, [0.05, 0.25, 0.5, 0.75, 0.95]))},
        "autocorrelation": {str(lag): float(np.corrcoef(runs[:-lag], runs[lag:])[0, 1])
                            for lag in LAGS if lag < len(runs) - 2},
        "slow_cycles": int(slow.sum()),
        "ratio_fast": float(np.median(ratio[~slow])) if (~slow).any() else None,
        "ratio_slow": float(np.median(ratio[slow])) if slow.any() else None,
        "slowdown_anchor": float(np.median(anch[slow]) / np.median(anch[~slow])) if slow.any() and (~slow).any()
        else None,
        "slowdown_candidate": float(np.median(cand[slow]) / np.median(cand[~slow])) if slow.any() and (~slow).any()
        else None,
        "round_ratios": [by_blocks(k) for k in BLOCKS if k <= len(cycles) // 2],
    }


def report(result: dict) -> str:
    meta, a = result["meta"], result["analysis"]
    q = a["slowness_quantiles"]
    lines = [
        "# The host's slow phases and the latency ratio (`latency_phases`)", "",
        f"- date: {meta['date']}; command: `{meta['command']}`",
        f"- machine: {meta['machine']['cpu']}, {meta['machine']['cpus_available']} CPUs; pinned to CPU "
        f"{meta['cpu']}, 1 thread, idle otherwise",
        f"- {a['cycles']} cycles in {a['seconds']:.0f} s: one {CANDIDATE} image run ({a['candidate_ms']:.1f} ms median), "
        f"then {a['anchor_runs_per_cycle']} {ANCHOR} image runs ({a['anchor_ms']:.1f} ms median)", "",
        "Slowness of a run (its time / its model's median), quantiles 5/25/50/75/95%: "
        + ", ".join(f"{q[k]:.3f}" for k in ("0.05", "0.25", "0.5", "0.75", "0.95")) + ".", "",
        "| lag (runs) | " + " | ".join(a["autocorrelation"]) + " |",
        "|---|" + "---|" * len(a["autocorrelation"]),
        "| autocorrelation of slowness | " + " | ".join(f"{v:.2f}" for v in a["autocorrelation"].values()) + " |", "",
    ]
    if a["ratio_slow"] is not None and a["ratio_fast"] is not None:
        lines += [f"Slow phases (anchor > {SLOW} x its median): {a['slow_cycles']} of {a['cycles']} cycles; they slow "
                  f"the anchor x{a['slowdown_anchor']:.2f} and the candidate x{a['slowdown_candidate']:.2f}. "
                  f"Ratio in fast phases {a['ratio_fast']:.3f}, in slow phases {a['ratio_slow']:.3f} "
                  f"({(a['ratio_slow'] / a['ratio_fast'] - 1) * 100:+.1f}%).", ""]
    lines += ["| cycles a round | rounds | median ratio | CV of round ratios |", "|---|---|---|---|"]
    lines += [f"| {r['cycles']} | {r['rounds']} | {r['median']:.3f} | {r['cv'] * 100:.1f}% |" for r in a["round_ratios"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--out", default="latency_phases")
    args = parser.parse_args()
    meta = run_meta("latency_phases", cpu=args.cpu)  # before pinning: the fingerprint counts the CPUs it may use
    cycles = record(args.seconds, args.cpu)
    result = {"meta": meta, "analysis": analyse(cycles), "cycles": cycles}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{args.out}.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
