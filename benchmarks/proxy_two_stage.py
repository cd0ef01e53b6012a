"""A two-stage proxy score, measured on the fidelity protocol's architectures.

Every trial runs the short proxy; the k trials that could move the front by their short score
(the first layers of non-dominated sorting on short score and latency) are promoted to the 10x
reference run, and the front is drawn from the promoted trials' reference scores. Whether that is
worth its cost depends on two figures, both measured here on the architectures whose reference ran:

- **what a sweep can pay**: a 40-trial sweep at <= 90 s per trial on average affords
  floor(40 x (90 - short) / reference) promotions, from the run log's median times;
- **what the promoted set recovers**: the hypervolume of its front (reference score vs full-size
  latency) as a share of the true reference front's, and the share of true front members it holds,
  for every k; against random promotion (all k-subsets, or 20,000 draws), with the permutation
  p-value of doing at least as well, and against promotion by the free baselines (params, GMACs).

The promoted score is the reference run itself (seed 0), so its own seed noise is not charged here:
the figures are an upper bound for a two-stage score with this rung.

Latency: full-size folded towers, 1 thread, pinned, drift-corrected against MobileCLIP-S0
(`archsearch latency --anchor`), measured once and kept in results/proxy_two_stage.json.

    python -m benchmarks.proxy_two_stage

Results: results/proxy_two_stage.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics

from benchmarks import proxy_fidelity
from benchmarks.common import RESULTS, run_meta

from archsearch.environment import available_cpus
from archsearch.latency.measure import measure_latency
from archsearch.pareto import front_indices, hypervolume
from archsearch.spec import get_preset

SWEEP_TRIALS, MAX_MEAN_SECONDS = 40, 90.0
ANCHOR = "mobileclip_s0"
DRAWS = 20_000


def measured_latencies(specs: dict, known: dict[str, float]) -> dict[str, float]:
    """Total ms of each spec; those in `known` are not measured again."""
    todo = [n for n in specs if n not in known]
    if not todo:
        return dict(known)
    cpu = available_cpus()[-1]
    quiet = measure_latency(get_preset(ANCHOR), threads=1, pin=[cpu], fresh_process=True, repeats=5)
    anchor_ms = {"image_ms": quiet.image.median_ms, "text_ms": quiet.text.median_ms}
    out = dict(known)
    for name in todo:
        out[name] = measure_latency(specs[name], threads=1, pin=[cpu], fresh_process=True, anchor=ANCHOR,
                                    anchor_quiet_ms=anchor_ms).total_ms
        print(json.dumps({"latency": name, "ms": round(out[name], 1)}), flush=True)
    return out


def layers(score: list[float], latency: list[float]) -> list[list[int]]:
    """Non-dominated sorting: the front, then the front of the rest, ... (each by latency)."""
    left, out = list(range(len(score))), []
    while left:
        front = [left[i] for i in front_indices([(score[j], latency[j]) for j in left])]
        # points equal to a front member in both objectives belong to the same layer
        front += [j for j in left if j not in front and any(score[j] == score[f] and latency[j] == latency[f]
                                                             for f in front)]
        out.append(front)
        left = [j for j in left if j not in front]
    return out


def promoted(score: list[float], latency: list[float], k: int) -> list[int]:
    """The k trials that could move the front first: whole layers, the last by score."""
    chosen: list[int] = []
    for layer in layers(score, latency):
        chosen += sorted(layer, key=lambda i: -score[i])[:k - len(chosen)]
        if len(chosen) == k:
            break
    return chosen


def recovery(chosen: list[int], truth: list[float], latency: list[float], true_front: set[int],
             latency_ref: float, full: float | None = None) -> tuple[float, float]:
    """(hypervolume of the chosen set's front / the true front's (`full`, computed when not given),
    share of true front members held)."""
    if full is None:
        full = hypervolume(list(zip(truth, latency)), 0.0, latency_ref)
    mine = hypervolume([(truth[i], latency[i]) for i in chosen], 0.0, latency_ref)
    return mine / full, len(true_front & set(chosen)) / len(true_front)


def random_recoveries(n: int, k: int, truth, latency, true_front, latency_ref) -> list[tuple[float, float]]:
    if math.comb(n, k) <= DRAWS:
        subsets = itertools.combinations(range(n), k)
    else:
        rng = random.Random(0)
        subsets = (rng.sample(range(n), k) for _ in range(DRAWS))
    full = hypervolume(list(zip(truth, latency)), 0.0, latency_ref)
    return [recovery(list(s), truth, latency, true_front, latency_ref, full) for s in subsets]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help only
    fidelity = json.loads((RESULTS / "proxy_fidelity.json").read_text())
    rows = {r["arch"]: r for r in fidelity["table"] if r["reference"] and r["reference"][0] is not None}
    specs = {name: spec for name, _, spec in proxy_fidelity.architectures(14, 0, 2) if name in rows}
    names = list(specs)
    previous = RESULTS / "proxy_two_stage.json"
    known = json.loads(previous.read_text())["latency_ms"] if previous.is_file() else {}
    latency_ms = measured_latencies(specs, {k: v for k, v in known.items() if k in specs})

    log = [json.loads(line) for line in (RESULTS / "proxy_runs.jsonl").read_text().splitlines()]
    short_s = statistics.median(r["train_seconds"] for r in log if r["recipe"] in ("cpu-tiny", "cpu-tiny-seed1")
                                and r["arch"] in rows)
    reference_s = statistics.median(r["train_seconds"] for r in log if r["recipe"] == "cpu-small"
                                    and r["arch"] in rows)
    affordable = max(0, math.floor(SWEEP_TRIALS * (MAX_MEAN_SECONDS - short_s) / reference_s))

    truth = [rows[n]["reference"][0] for n in names]
    latency = [latency_ms[n] for n in names]
    latency_ref = 1.1 * max(latency)
    true_front = set(front_indices(list(zip(truth, latency))))
    policies = {
        "short top-1, seed 0": [rows[n]["short"][0] for n in names],
        "short top-1, seed 1": [rows[n]["short"][1] for n in names],
        "short loss tail, seed 0": [-rows[n]["short_loss_tail"][0] for n in names],
        "params (more is better)": [rows[n]["params_m"] for n in names],
        "GMACs (more is better)": [rows[n]["gmacs"] for n in names],
        "oracle (the reference)": truth,
    }
    n = len(names)
    by_k = []
    for k in range(1, n + 1):
        chance = random_recoveries(n, k, truth, latency, true_front, latency_ref)
        entry = {"k": k, "share_of_trials": k / n,
                 "random_mean_hv": statistics.fmean(c[0] for c in chance),
                 "random_mean_recall": statistics.fmean(c[1] for c in chance), "policies": {}}
        for policy, score in policies.items():
            chosen = promoted(score, latency, k)
            hv, recall = recovery(chosen, truth, latency, true_front, latency_ref)
            entry["policies"][policy] = {
                "promoted": [names[i] for i in chosen], "hv_share": hv, "front_recall": recall,
                "p_vs_random": sum(c[0] >= hv - 1e-12 for c in chance) / len(chance)}
        by_k.append(entry)
    record = {"meta": run_meta("proxy_two_stage", recipe=None, anchor=ANCHOR), "architectures": names,
              "latency_ms": latency_ms, "reference_top1": dict(zip(names, truth)),
              "true_front": [names[i] for i in sorted(true_front, key=lambda i: latency[i])],
              "short_median_seconds": short_s, "reference_median_seconds": reference_s,
              "affordable_promotions_in_40_trials": affordable,
              "affordable_share": affordable / SWEEP_TRIALS, "by_k": by_k}
    RESULTS.mkdir(exist_ok=True)
    previous.write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "proxy_two_stage.md").write_text("\n".join(report(record)) + "\n")


def report(record: dict) -> list[str]:
    m, n = record["meta"], len(record["architectures"])
    policies = list(record["by_k"][0]["policies"])
    lines = ["# Two-stage proxy score on the fidelity protocol's architectures", "",
             f"- date: {m['date']}; command: `{m['command']}`; machine: {m['machine']['cpu']}",
             f"- architectures: the {n} whose 10x reference (cpu-small, seed 0) ran: "
             + ", ".join(record["architectures"]),
             f"- true front (reference top-1 vs drift-corrected full-size latency): {', '.join(record['true_front'])}",
             f"- median training time: short {record['short_median_seconds']:.0f} s, reference "
             f"{record['reference_median_seconds']:.0f} s; a {SWEEP_TRIALS}-trial sweep at <= {MAX_MEAN_SECONDS:.0f} s "
             f"per trial affords **{record['affordable_promotions_in_40_trials']} promotions** "
             f"({record['affordable_share']:.0%} of its trials)", "",
             "Share of the true front's hypervolume recovered by the promoted set's front (p: share of random "
             "k-subsets doing at least as well), then front members held:", "",
             "| k of " + str(n) + " | random mean | " + " | ".join(policies) + " |", "|---" * (len(policies) + 2) + "|"]
    for e in record["by_k"]:
        cells = [f"{p['hv_share']:.2f} (p {p['p_vs_random']:.2f}), {p['front_recall']:.0%}" for p in e["policies"].values()]
        lines.append(f"| {e['k']} | {e['random_mean_hv']:.2f}, {e['random_mean_recall']:.0%} | " + " | ".join(cells) + " |")
    lines += ["", "The promoted score is the reference run itself, so rung-2 seed noise is not charged: an upper bound "
              "for this rung. p is one-sided and uncorrected for the 12 values of k. Latency (ms, drift-corrected; the "
              "anchor's quiet figure was taken while two proxy trainings ran, so the absolute scale is high, and only "
              "the order enters a front): " + ", ".join(f"{k} {v:.0f}" for k, v in record["latency_ms"].items()) + "."]
    return lines


if __name__ == "__main__":
    main()
