"""Latency of the presets on this machine, four ways (torch-cpu, batch 1):

- repeatability: each preset measured `--repeats` times, each in a fresh process; CV of the medians;
- agreement with timm: our folded image tower vs timm's reference model, folded, same protocol, same run;
- reparameterization gain: image tower before / after folding;
- efficiency: (FLOPs / measured fp32 matmul peak) / measured latency.

    python benchmarks/latency_presets.py [--presets mobileclip_s0 vitamin_s ...] [--repeats 5]

Writes benchmarks/results/latency_presets.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
from pathlib import Path

import timm
import torch

from archsearch.latency.backends import get_backend
from archsearch.latency.cost import example_images, measure_cost
from archsearch.latency.fingerprint import device_fingerprint
from archsearch.latency.measure import measure_latency
from archsearch.latency.peak import matmul_peak_gflops
from archsearch.latency.timing import TimingProtocol, time_until_settled
from archsearch.models import build_image_tower, reparameterize
from archsearch.spec import get_preset, preset_names, timm_reference

RESULTS = Path(__file__).parent / "results"
MOBILE_SCALE = ["mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b", "vitamin_s", "vitamin_b"]


def _time_module(module, x, threads: int, protocol: TimingProtocol) -> float:
    return time_until_settled(get_backend("torch-cpu").prepare(module, x, threads, "image"), protocol).median_ms


def measure_preset(name: str, repeats: int, threads: int, peak: float, protocol: TimingProtocol) -> dict:
    spec = get_preset(name)
    runs = [measure_latency(spec, threads=threads, fresh_process=True, protocol=protocol) for _ in range(repeats)]
    image = [r.image.median_ms for r in runs]
    text = [r.text.median_ms for r in runs]
    total = [r.total_ms for r in runs]

    # Same run, same protocol: ours vs timm's reference (folded), and ours unfolded.
    x = example_images(spec)
    ours = build_image_tower(spec)
    reference = timm.create_model(timm_reference(name), num_classes=0)
    ours_folded_ms = _time_module(reparameterize(ours), x, threads, protocol)
    timm_folded_ms = _time_module(reparameterize(reference), x, threads, protocol)
    ours_unfolded_ms = _time_module(ours, x, threads, protocol)
    cost = measure_cost(spec)
    flops = 2 * (cost.image.macs + cost.text.macs)
    median_total = statistics.median(total)
    return {
        "preset": name,
        "image_ms": statistics.median(image), "text_ms": statistics.median(text), "total_ms": median_total,
        "repeats": repeats, "image_ms_runs": image, "text_ms_runs": text,
        "cv_total": statistics.stdev(total) / statistics.fmean(total) if repeats > 1 else 0.0,
        "cv_image": statistics.stdev(image) / statistics.fmean(image) if repeats > 1 else 0.0,
        "cv_text": statistics.stdev(text) / statistics.fmean(text) if repeats > 1 else 0.0,
        "settled": all(r.image.settled and r.text.settled for r in runs),
        "image_vs_timm_ratio": ours_folded_ms / timm_folded_ms,
        "image_folded_ms": ours_folded_ms, "timm_folded_ms": timm_folded_ms, "image_unfolded_ms": ours_unfolded_ms,
        "reparam_speedup": ours_unfolded_ms / ours_folded_ms,
        "gflops": flops / 1e9,
        "efficiency": (flops / (peak * 1e9)) / (median_total / 1e3),
    }


def to_markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Preset latency on this machine (torch-cpu, batch 1, folded)",
        "",
        f"Machine: {meta['fingerprint']['cpu']}, {meta['threads']} threads (fingerprint {meta['fingerprint']['id']}); "
        f"date: {meta['date']}; command: `{meta['command']}`.",
        f"Measured fp32 matmul peak: {meta['peak_gflops']:.0f} GFLOP/s. Each preset: {meta['repeats']} independent "
        "measurements, each in a fresh process (median of settled timed runs); the timm comparison, the unfolded "
        "tower and the folded tower are timed in the same process with the same protocol.",
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=MOBILE_SCALE, choices=preset_names())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="latency_presets")
    args = parser.parse_args()
    protocol = TimingProtocol()
    peak = matmul_peak_gflops(args.threads)
    meta = {
        "date": datetime.date.today().isoformat(), "threads": args.threads, "repeats": args.repeats,
        "command": "python benchmarks/latency_presets.py " + " ".join(
            f"--presets {' '.join(args.presets)}".split() + ["--repeats", str(args.repeats), "--threads",
                                                            str(args.threads)]),
        "peak_gflops": peak, "protocol": protocol.__dict__,
        "fingerprint": device_fingerprint("torch-cpu", args.threads),
    }
    rows = []
    for name in args.presets:
        rows.append(measure_preset(name, args.repeats, args.threads, peak, protocol))
        print(json.dumps(rows[-1]), flush=True)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{args.out}.json").write_text(json.dumps({"meta": meta, "presets": rows}, indent=2) + "\n")
        (RESULTS / f"{args.out}.md").write_text(to_markdown(rows, meta))


if __name__ == "__main__":
    main()
