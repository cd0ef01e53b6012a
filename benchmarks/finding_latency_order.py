"""Finding 5: the latency order of the variants on this machine, beside the papers' figures.

MobileCLIP S0 < S1 < S2 < B and ViTamin S < B < L < XL, measured here (torch-cpu, batch 1,
folded, the sweep's 1 thread), with the Spearman correlation against what the papers report:
MobileCLIP's iPhone 12 Pro Max latencies; ViTamin reports no device latency, so its GMACs are the
paper-side figure. Reuses results/latency_presets.json (benchmarks/latency_presets.py, 5 fresh
processes per preset) and measures any preset missing there (3 fresh processes).

    python -m benchmarks.finding_latency_order [--presets-json benchmarks/results/latency_presets.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import RESULTS, run_meta
from benchmarks.findings_common import latency_and_cost, write_finding
from scipy.stats import spearmanr

from archsearch.spec import get_preset

# MobileCLIP: image / text latency (ms), iPhone 12 Pro Max, Core ML. ViTamin: image GMACs @224 (XL @256).
MOBILECLIP = {"mobileclip_s0": (1.5, 1.6), "mobileclip_s1": (2.5, 3.3), "mobileclip_s2": (3.6, 3.3),
              "mobileclip_b": (10.4, 3.3)}
VITAMIN_GMACS = {"vitamin_s": 5.50, "vitamin_b": 21.84, "vitamin_l": 72.6, "vitamin_xl": 125.3}
PAPER = ("MobileCLIP (iPhone 12 Pro Max, Core ML, batch 1), image + text latency: S0 1.5 + 1.6, S1 2.5 + 3.3, "
         "S2 3.6 + 3.3, B 10.4 + 3.3 ms, so S0 < S1 < S2 < B. ViTamin reports no device latency; its image GMACs "
         "(5.50 / 21.84 / 72.6 / 125.3 for S / B / L / XL) order S < B < L < XL.")


def measured(names: list[str], presets_json: Path) -> dict[str, dict]:
    have = {}
    if presets_json.is_file():
        have = {r["preset"]: {"image_ms": r["image_ms"], "text_ms": r["text_ms"], "source": presets_json.name,
                              "repeats": r["repeats"], "cv_total": r["cv_total"]}
                for r in json.loads(presets_json.read_text())["presets"]}
    for name in names:
        if name not in have:
            have[name] = {**latency_and_cost(get_preset(name)), "source": "measured here", "repeats": 3}
    return {name: have[name] for name in names}


def strictly_increasing(values: list[float]) -> bool:
    return all(a < b for a, b in zip(values, values[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets-json", type=Path, default=RESULTS / "latency_presets.json")
    args = parser.parse_args()
    ours = measured([*MOBILECLIP, *VITAMIN_GMACS], args.presets_json)
    total = {name: m["image_ms"] + m["text_ms"] for name, m in ours.items()}

    families = {
        "MobileCLIP": (list(MOBILECLIP), {n: sum(v) for n, v in MOBILECLIP.items()}, "paper ms (image + text)"),
        "ViTamin": (list(VITAMIN_GMACS), VITAMIN_GMACS, "paper image GMACs"),
    }
    table = ["| variant | ours: image + text ms | paper's figure |", "|---|---|---|"]
    summary, verdicts, reproduced = {"ours": ours}, [], True
    for family, (names, paper, unit) in families.items():
        for name in names:
            table.append(f"| {name} | {ours[name]['image_ms']:.1f} + {ours[name]['text_ms']:.1f} = {total[name]:.1f} | "
                         f"{paper[name]:g} {'ms' if family == 'MobileCLIP' else 'GMACs'} |")
        ordered = strictly_increasing([total[n] for n in names])
        rho = float(spearmanr([total[n] for n in names], [paper[n] for n in names]).statistic)
        image_rho = (float(spearmanr([ours[n]["image_ms"] for n in names], [MOBILECLIP[n][0] for n in names]).statistic)
                     if family == "MobileCLIP" else None)
        summary[family] = {"order_reproduced": ordered, "spearman": rho, "spearman_image_only": image_rho,
                           "paper": paper, "paper_unit": unit}
        reproduced &= ordered
        verdicts.append(f"{family}: {' < '.join(names)} {'holds' if ordered else 'does not hold'} here "
                        f"(Spearman with the {unit}: {rho:.2f}"
                        f"{f'; image towers alone: {image_rho:.2f}' if image_rho is not None else ''}).")
    write_finding(
        "latency_order", "latency order of the MobileCLIP and ViTamin variants",
        run_meta("finding_latency_order", recipe=None),
        paper=PAPER, measured=table, seeds=0, reproduced=reproduced, verdict=" ".join(verdicts),
        tried=("Latency, not training: each preset measured full size, folded, batch 1, 1 thread, in fresh "
               f"processes ({'; '.join(sorted({m['source'] for m in ours.values()}))}). A phone's accelerator and "
               "one x86 core differ in what they are fast at (memory-bound depthwise convolutions vs GEMMs), so the "
               "order is the claim checked, not the ratios."),
        summary=summary, rows=[])


if __name__ == "__main__":
    main()
