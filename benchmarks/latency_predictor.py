"""Validate the latency lookup table on architectures it was not built from.

Builds this device's table from N architectures of a space (seed A, plus the space's presets
unless --no-presets), then samples M *different* architectures (seed B, excluding every spec the
table was calibrated on), measures each whole with `measure_latency` (image + text) and predicts
it from the table (units it lacks are measured on demand and counted). Reports the share of
predictions within +-10% of the measured value (total and per tower) and Kendall's tau.

    python -m benchmarks.latency_predictor                                    # the full validation
    python -m benchmarks.latency_predictor --build-archs 5 --validate-archs 5 --quick   # a smoke run

Run it on a quiet machine, one process at a time, ideally pinned (``taskset -c 2 python ...``):
the thread count and the CPUs available are part of the device fingerprint the table is keyed by.
Writes benchmarks/results/latency_predictor.{json,md} (or --out PREFIX).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path


from archsearch.analysis.ranking import kendall_tau
from archsearch.choices import CACHE_POLICIES
from archsearch.latency.table import DEFAULT_CACHE_DIR, build_table
from archsearch.space.sampling import sample_archs, table_architectures
from archsearch.latency.timing import TimingProtocol
from archsearch.spec.arch import layout_summary

from benchmarks.common import RESULTS, cell, command

QUICK = dict(warmup=2, min_runs=6, round_size=3, max_runs=30)


def within_share(measured: list[float], predicted: list[float], tolerance: float = 0.10) -> float:
    return sum(abs(p - m) <= tolerance * m for m, p in zip(measured, predicted)) / len(measured)


def summarise(rows: list[dict]) -> dict:
    out = {}
    for tower in ("total", "image", "text"):
        measured = [r[f"measured_{tower}_ms"] for r in rows]
        predicted = [r[f"predicted_{tower}_ms"] for r in rows]
        errors = [abs(p - m) / m for m, p in zip(measured, predicted)]
        out[tower] = {"within_10pct": within_share(measured, predicted),
                      "kendall_tau": kendall_tau(measured, predicted) if len(rows) > 1 else float("nan"),
                      "mean_abs_pct_error": 100 * statistics.fmean(errors),
                      "max_abs_pct_error": 100 * max(errors)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="hybrid")
    parser.add_argument("--build-archs", type=int, default=30, help="sampled architectures the table is built from")
    parser.add_argument("--validate-archs", type=int, default=30, help="held-out architectures to validate on")
    parser.add_argument("--build-seed", type=int, default=0)
    parser.add_argument("--validate-seed", type=int, default=1)
    parser.add_argument("--no-presets", action="store_true", help="build from sampled architectures only")
    parser.add_argument("--backend", default="torch-cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="time budget of one timing (a tower, or a unit) before its median is taken")
    parser.add_argument("--quick", action="store_true", help=f"a short timing protocol {QUICK}")
    parser.add_argument("--cache-policy", choices=CACHE_POLICIES, default="auto",
                        help="warm or cold unit timings per tower (auto: cold when its weights exceed the LLC)")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR / "benchmark"))
    parser.add_argument("--reuse-table", action="store_true", help="extend an existing table instead of rebuilding")
    parser.add_argument("--out", default=str(RESULTS / "latency_predictor"), help="output prefix (.json, .md)")
    args = parser.parse_args(argv)

    protocol = TimingProtocol(**(QUICK if args.quick else {}), max_seconds=args.max_seconds)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    log(f"building the table: {args.build_archs} archs of {args.space} (seed {args.build_seed})"
        f"{'' if args.no_presets else ' + presets'}, {args.threads} thread(s), batch {args.batch}")
    table = build_table(*table_architectures(args.space, args.build_archs, args.build_seed, not args.no_presets),
                        backend=args.backend, batch=args.batch, threads=args.threads, cache_dir=args.cache_dir,
                        protocol=protocol, rebuild=not args.reuse_table, cache_policy=args.cache_policy, progress=log)
    build_seconds = time.monotonic() - started
    build_units = len(table.units)

    from archsearch.latency.measure import measure_latency

    specs = sample_archs(args.space, args.validate_archs, args.validate_seed, exclude=table.calibration_ids())
    rows = []
    for i, spec in enumerate(specs, 1):
        predicted = table.predict(spec, progress=log)
        measured = measure_latency(spec, args.backend, args.batch, args.threads, protocol=protocol)
        row = {"id": spec.digest(), "arch": layout_summary(spec),
               "measured_image_ms": measured.image.median_ms, "measured_text_ms": measured.text.median_ms,
               "measured_total_ms": measured.total_ms, "predicted_image_ms": predicted["image_ms"],
               "predicted_text_ms": predicted["text_ms"], "predicted_total_ms": predicted["total_ms"],
               "image_cv": measured.image.cv, "text_cv": measured.text.cv,
               "units_measured_on_demand": predicted["missing_units"], "image_cache": predicted["image_cache"],
               "text_cache": predicted["text_cache"], "spec": spec.to_dict()}
        row["error_pct"] = 100 * (row["predicted_total_ms"] / row["measured_total_ms"] - 1)
        rows.append(row)
        log(f"validate {i}/{len(specs)}: measured {row['measured_total_ms']:.2f} ms, predicted "
            f"{row['predicted_total_ms']:.2f} ms ({row['error_pct']:+.1f}%), "
            f"{row['units_measured_on_demand']} units on demand  {row['arch']}")

    # The same measurements under every cache policy (overheads refit, nothing re-measured).
    policies = {}
    for policy in CACHE_POLICIES:
        table.set_cache_policy(policy)
        predicted = [table.predict(spec, measure_missing=False, save=False) for spec in specs]
        policies[policy] = summarise([{**row, **{f"predicted_{t}_ms": p[f"{t}_ms"] for t in ("image", "text", "total")}}
                                      for row, p in zip(rows, predicted)])
        policies[policy]["overhead_ms"] = dict(table.overhead_ms)
    table.set_cache_policy(args.cache_policy)

    fingerprint = table.fingerprint
    meta = {
        "machine": f"{fingerprint.get('cpu')} ({fingerprint.get('cpus_available')} CPUs available), "
                   f"{fingerprint.get('system')}",
        "fingerprint": fingerprint, "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command("latency_predictor", argv),
        "space": args.space, "backend": args.backend, "batch": args.batch, "threads": args.threads,
        "protocol": protocol.__dict__, "build_archs": len(table.calibration), "build_seed": args.build_seed,
        "presets": not args.no_presets, "validate_seed": args.validate_seed, "build_units": build_units,
        "units_measured_on_demand": sum(r["units_measured_on_demand"] for r in rows),
        "overhead_ms": table.overhead_ms, "cache_policy": args.cache_policy, "llc_bytes": table.llc_bytes,
        "build_seconds": round(build_seconds),
        "total_seconds": round(time.monotonic() - started), "table": str(table.path),
    }
    result = {"meta": meta, "summary": summarise(rows), "policies": policies, "validation": rows,
              "calibration": [{k: v for k, v in r.items() if k != "spec"} for r in table.calibration]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(to_markdown(result))
    s = result["summary"]["total"]
    log(f"within +-10%: {s['within_10pct']:.0%} (target >= 90%), Kendall tau {s['kendall_tau']:.3f}; "
        f"wrote {out.with_suffix('.json')} and .md")
    return 0


def to_markdown(result: dict) -> str:
    meta, summary = result["meta"], result["summary"]
    p = meta["protocol"]
    lines = [
        "# Latency lookup-table predictor: held-out validation",
        "",
        f"Machine: {meta['machine']}; fingerprint `{meta['fingerprint']['id']}`; date: {meta['date']};",
        f"command: `{meta['command']}`.",
        f"Backend {meta['backend']}, batch {meta['batch']}, {meta['threads']} thread(s); protocol: warm-up "
        f"{p['warmup']}, {p['min_runs']}-{p['max_runs']} runs, settle {p['rel_tol']:.1%}, "
        f"budget {p['max_seconds']:g} s "
        "(the same for units and whole towers).",
        f"Cache policy {meta['cache_policy']} (last-level cache {meta['llc_bytes'] >> 20} MiB). "
        f"Table: {meta['build_archs']} calibration architectures of `{meta['space']}` (seed {meta['build_seed']}"
        f"{', presets included' if meta['presets'] else ''}), {meta['build_units']} units; fixed overhead "
        f"image {meta['overhead_ms']['image']:+.3f} ms, text {meta['overhead_ms']['text']:+.3f} ms. "
        f"Validation: {len(result['validation'])} different architectures (seed {meta['validate_seed']}); "
        f"{meta['units_measured_on_demand']} units were measured on demand for them. "
        f"Wall time {meta['total_seconds']} s (table {meta['build_seconds']} s).",
        "",
        "| tower | within ±10% | Kendall tau | mean abs error | max abs error |",
        "|---|---|---|---|---|",
    ]
    for tower, s in summary.items():
        lines.append(f"| {tower} | {s['within_10pct']:.0%} | {s['kendall_tau']:.3f} | "
                     f"{s['mean_abs_pct_error']:.1f}% | {s['max_abs_pct_error']:.1f}% |")
    lines += ["", "Target: ≥ 90% of totals within ±10%.", "",
              "The same measurements predicted under each cache policy (overheads refit on the calibration archs):", "",
              "| policy | total within ±10% | image within ±10% | text within ±10% | total Kendall tau |"
              " total mean abs error | overhead image / text ms |", "|---|---|---|---|---|---|---|"]
    for policy, s in result["policies"].items():
        lines.append(f"| {policy} | {s['total']['within_10pct']:.0%} | {s['image']['within_10pct']:.0%} | "
                     f"{s['text']['within_10pct']:.0%} | {s['total']['kendall_tau']:.3f} | "
                     f"{s['total']['mean_abs_pct_error']:.1f}% | {s['overhead_ms']['image']:+.2f} / "
                     f"{s['overhead_ms']['text']:+.2f} |")
    lines += ["", "| architecture | image ms (measured / predicted) | text ms (measured / predicted) | "
              "total ms (measured / predicted) | error | cache (image/text) | units on demand |",
              "|---|---|---|---|---|---|---|"]
    for r in result["validation"]:
        lines.append(f"| `{cell(r['arch'])}` | {r['measured_image_ms']:.2f} / {r['predicted_image_ms']:.2f} | "
                     f"{r['measured_text_ms']:.2f} / {r['predicted_text_ms']:.2f} | "
                     f"{r['measured_total_ms']:.2f} / {r['predicted_total_ms']:.2f} | {r['error_pct']:+.1f}% | "
                     f"{r['image_cache']}/{r['text_cache']} | {r['units_measured_on_demand']} |")
    lines += ["", "Calibration architectures (measured whole vs sum of units before the overhead, "
              f"cache policy {meta['cache_policy']}):", "",
              "| architecture | image ms (measured / units) | text ms (measured / units) |", "|---|---|---|"]
    for r in result["calibration"]:
        lines.append(f"| `{cell(r['name'])}` | {r['image_ms']:.2f} / {r['image_units_ms']:.2f} ({r['image_cache']}) | "
                     f"{r['text_ms']:.2f} / {r['text_units_ms']:.2f} ({r['text_cache']}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
