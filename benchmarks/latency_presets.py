"""Latency of the presets on this machine, four ways (torch-cpu, batch 1):

- repeatability: each preset measured `--repeats` times, each in a fresh process; CV of the medians;
- agreement with timm: our folded image tower vs timm's reference model, folded, same protocol, same run;
- reparameterization gain: image tower before / after folding;
- efficiency: (FLOPs / measured fp32 matmul peak) / measured latency.

    python -m benchmarks.latency_presets [--presets mobileclip_s0 vitamin_s ...] [--repeats 5]

Writes benchmarks/results/latency_presets.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import timm

from archsearch.latency.backends import get_backend
from archsearch.latency.cost import example_images, measure_cost
from archsearch.latency.measure import measure_latency
from archsearch.latency.peak import matmul_peak_gflops
from archsearch.latency.timing import TimingProtocol
from archsearch.models import build_image_tower, reparameterize
from archsearch.spec import get_preset, preset_names, timm_reference

from benchmarks.common import RESULTS, run_meta



def paired_medians(runs: dict[str, callable], rounds: int, per_round: int, warmup: int = 3) -> dict[str, dict]:
    """Time several modules *interleaved*: round by round, `per_round` runs of each in turn.

    A shared vCPU's speed drifts over minutes; timing A for a minute and then B for a minute
    folds that drift into B/A. Interleaving gives each round's ratio the same machine state,
    so the median over rounds of the per-round ratio is what the comparison reports."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    per_round_medians: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            per_round_medians[name].append(statistics.median(run() for _ in range(per_round)))
    return {name: {"median_ms": statistics.median(values), "round_medians_ms": values}
            for name, values in per_round_medians.items()}


def round_ratio(timings: dict[str, dict], numerator: str, denominator: str) -> float:
    pairs = zip(timings[numerator]["round_medians_ms"], timings[denominator]["round_medians_ms"])
    return statistics.median(a / b for a, b in pairs)


def measure_preset(name: str, repeats: int, threads: int, peak: float, protocol: TimingProtocol,
                   rounds: int, per_round: int, pin: list[int] | None = None) -> dict:
    spec = get_preset(name)
    runs = [measure_latency(spec, threads=threads, pin=pin, fresh_process=True, protocol=protocol)
            for _ in range(repeats)]
    image = [r.image.median_ms for r in runs]
    text = [r.text.median_ms for r in runs]
    total = [r.total_ms for r in runs]

    # Same process, interleaved rounds: ours folded vs timm's reference folded, and ours unfolded.
    x = example_images(spec)
    torch_cpu = get_backend("torch-cpu")
    ours = build_image_tower(spec)
    reference = timm.create_model(timm_reference(name), num_classes=0)
    paired = paired_medians({
        "ours_folded": torch_cpu.prepare(reparameterize(ours), x, threads, "image"),
        "timm_folded": torch_cpu.prepare(reparameterize(reference), x, threads, "image"),
        "ours_unfolded": torch_cpu.prepare(ours, x, threads, "image"),
    }, rounds=rounds, per_round=per_round)
    cost = measure_cost(spec)
    flops = 2 * (cost.image.macs + cost.text.macs)
    median_total = statistics.median(total)
    return {
        "preset": name,
        "image_ms": statistics.median(image), "text_ms": statistics.median(text), "total_ms": median_total,
        "repeats": repeats, "image_ms_runs": image, "text_ms_runs": text, "total_ms_runs": total,
        "cv_total": statistics.stdev(total) / statistics.fmean(total) if repeats > 1 else 0.0,
        "cv_image": statistics.stdev(image) / statistics.fmean(image) if repeats > 1 else 0.0,
        "cv_text": statistics.stdev(text) / statistics.fmean(text) if repeats > 1 else 0.0,
        "settled": all(r.image.settled and r.text.settled for r in runs),
        "image_vs_timm_ratio": round_ratio(paired, "ours_folded", "timm_folded"),
        "reparam_speedup": round_ratio(paired, "ours_unfolded", "ours_folded"),
        "image_folded_ms": paired["ours_folded"]["median_ms"], "timm_folded_ms": paired["timm_folded"]["median_ms"],
        "image_unfolded_ms": paired["ours_unfolded"]["median_ms"], "paired_rounds": paired,
        "gflops": flops / 1e9,
        "efficiency": (flops / (peak * 1e9)) / (median_total / 1e3),
    }


def to_markdown(rows: list[dict], meta: dict) -> str:
    pinned = f", pinned to CPUs {meta['pin']}" if meta.get("pin") else ""
    lines = [
        "# Preset latency on this machine (torch-cpu, batch 1, folded)",
        "",
        f"Machine: {meta['machine']['cpu']}, {meta['threads']} threads{pinned} "
        f"(fingerprint {meta['machine']['id']}); "
        f"date: {meta['date']}; command: `{meta['command']}`.",
        f"Measured fp32 matmul peak: {meta['peak_gflops']:.0f} GFLOP/s. Each preset: {meta['repeats']} independent "
        "measurements, each in a fresh process (median of settled timed runs). The timm comparison and the "
        f"reparameterization gain time the three image towers in one process, interleaved ({meta['rounds']} rounds of "
        f"{meta['per_round']} runs each); the ratios are medians of the per-round ratios. Peak at the end of the run: "
        f"{meta.get('peak_gflops_end', float('nan')):.0f} GFLOP/s; load average at the start: {meta['loadavg']}.",
        "",
        f"Targets: CV <= 3% per preset (met by {sum(r['cv_total'] <= 0.03 for r in rows)}/{len(rows)}); "
        f"ours / timm = 1.00 +- 0.05 (met by {sum(abs(r['image_vs_timm_ratio'] - 1) <= 0.05 for r in rows)}/{len(rows)}).",
        "",
        "| preset | image ms | text ms | total ms | CV of totals (image / text) | ours / timm image | "
        "unfolded / folded image | GFLOPs | efficiency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['image_ms']:.1f} | {r['text_ms']:.1f} | {r['total_ms']:.1f} "
            f"| {r['cv_total']:.1%} ({r['cv_image']:.1%} / {r['cv_text']:.1%}) | {r['image_vs_timm_ratio']:.3f} "
            f"| {r['reparam_speedup']:.2f}x | {r['gflops']:.1f} | {r['efficiency']:.1%} |"
        )
    misses = [line for line in map(repeat_outlier, rows) if line]
    if misses:
        lines += ["", "Presets over the CV target, their repeats in the order taken:", "", *misses]
    return "\n".join(lines) + "\n"


def repeat_outlier(row: dict, target: float = 0.03) -> str | None:
    """One line for a preset whose CV misses the target: its totals, and how far the worst repeat lies
    from the median of the others, so a reader can tell one disturbed process from a spread."""
    if row["cv_total"] <= target:
        return None
    totals = row["total_ms_runs"]
    median = statistics.median(totals)
    worst = max(range(len(totals)), key=lambda i: abs(totals[i] - median))
    others = [t for i, t in enumerate(totals) if i != worst]
    cv_others = statistics.stdev(others) / statistics.fmean(others) if len(others) > 1 else 0.0
    return (f"- {row['preset']}: totals {', '.join(f'{t:.0f}' for t in totals)} ms; repeat {worst + 1} lies "
            f"{totals[worst] / statistics.median(others) - 1:+.1%} from the median of the other {len(others)}, "
            f"whose CV is {cv_others:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=preset_names(), choices=preset_names())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="1 is the sweep's default")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of the same-process comparisons")
    parser.add_argument("--per-round", type=int, default=3, help="timed runs of each module per round")
    parser.add_argument("--pin", type=int, nargs="+", help="CPUs every measurement (and this process) is pinned to")
    parser.add_argument("--out", default="latency_presets")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, args.pin)  # the same-process comparisons run here
    protocol = TimingProtocol()
    peak = matmul_peak_gflops(args.threads)
    meta = {
        **run_meta("latency_presets", threads=args.threads, argv=(
            f"--presets {' '.join(args.presets)}".split() + ["--repeats", str(args.repeats), "--threads",
                                                            str(args.threads), "--rounds", str(args.rounds),
                                                            "--per-round", str(args.per_round)]
            + (["--pin", *map(str, args.pin)] if args.pin else []) + (["--out", args.out] if args.out != "latency_presets" else []))),
        "threads": args.threads, "repeats": args.repeats,
        "peak_gflops": peak, "protocol": protocol.__dict__, "rounds": args.rounds, "per_round": args.per_round,
        "loadavg": [round(x, 2) for x in os.getloadavg()], "pin": args.pin,
    }
    rows = []
    for name in args.presets:
        rows.append(measure_preset(name, args.repeats, args.threads, peak, protocol, args.rounds, args.per_round,
                                   args.pin))
        print(json.dumps(rows[-1]), flush=True)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(to_markdown(rows, meta))
    meta["peak_gflops_end"] = matmul_peak_gflops(args.threads)
    (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(to_markdown(rows, meta))


if __name__ == "__main__":
    main()
