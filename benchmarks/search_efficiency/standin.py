"""The stand-in objectives of the search-efficiency benchmark (see the package docstring): the accuracy
stand-in, the latency objective (GMACs or this machine's latency table) and their scales, and the
evaluation cache keyed by ArchSpec.digest."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Optional

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


# --- evaluations (cached by ArchSpec.digest) ----------------------------------------------------------

DEFAULT_CACHE = Path("runs/search_efficiency/costs.jsonl")
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
