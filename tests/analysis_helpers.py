"""Hand-built studies for the analysis tests: the trial attributes a sweep records
(archsearch/search/record.py), without training anything."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from archsearch.analysis.trial_sets import TrialSet
from archsearch.search.storage import write_study_file
from archsearch.spec.presets import preset_names

DISTRIBUTIONS = {"depth": IntDistribution(1, 8), "mixer": CategoricalDistribution(["repmixer", "attention"]),
                 "width": CategoricalDistribution([32, 64, 128])}

# number: (preset, latency ms, zero-shot top-1, family, mixers, state / kind); front: 0, 3, 1, 7
KNOWN = [
    ("mobileclip_s0", 2.0, 30.0, "mci", "RRRA|RAR", "ok"),
    ("vitamin_s", 10.0, 45.0, "vitamin", "MMA|AAAA", "ok"),
    (None, 5.0, 25.0, "mci", "RRRR|RRR", "ok"),          # dominated by #0
    (None, 6.0, 40.0, "mci", "RRAA|RAR", "ok"),
    (None, 1.0, 0.0, "mci", "RRRR|R", "infeasible"),      # fastest, but broke a constraint
    (None, 3.0, None, "vitamin", "MMA|A", "failed"),      # measured, then failed in training
    (None, 12.0, 44.0, "vitamin", "MMA|AAAA", "ok"),     # dominated by #1
    (None, 20.0, 50.0, "vitamin", "MAA|AAAA", "ok"),
    (None, None, None, "mci", None, "pruned"),
]
KNOWN_FRONT = [0, 3, 1, 7]
KNOWN_REFERENCE = 1.1 * 20.0
# (22-2)*30 + (22-6)*(40-30) + (22-10)*(45-40) + (22-20)*(50-45)
KNOWN_HYPERVOLUME = 600.0 + 160.0 + 60.0 + 10.0


def attrs(number: int, preset, latency, accuracy, family, mixers, kind) -> dict:
    out = {"family": family, "dir": f"trials/{number}"}
    if preset:
        out["preset"] = preset
    if mixers:
        image, text = mixers.split("|")
        out |= {"mixers": mixers, "layout": f"{'-'.join(m + '2' for m in image)} @256 | text {text} x512"}
    if latency is not None:
        image_params, text_params = 1e6 * (2 + latency), 1e6 * (20 + latency / 2)
        out |= {"image_params": image_params, "text_params": text_params,
                "params_m": (image_params + text_params) / 1e6, "image_gmacs": 0.3 * latency,
                "text_gmacs": 0.1 * latency, "gmacs": 0.4 * latency, "image_ms": 0.7 * latency,
                "text_ms": 0.3 * latency, "latency_ms": latency, "latency_cv": 0.01, "constraints": []}
    if kind == "ok":
        out |= {"trained": True, "zeroshot_top1": accuracy, "i2t_r1": accuracy / 2, "t2i_r1": accuracy / 3}
    elif kind == "infeasible":
        out |= {"trained": False, "zeroshot_top1": 0.0, "constraints": [0.5],
                "infeasible": "latency 1.0 ms > --max-latency-ms 0.5"}
    elif kind == "failed":
        out["fail_reason"] = "non-finite loss: nan at step 3"
    elif kind == "pruned":
        out["pruned_reason"] = "text width must divide the heads"
    return out


def trial_of(number: int, row: tuple, rng: random.Random) -> optuna.trial.FrozenTrial:
    preset, latency, accuracy, family, mixers, kind = row
    params = {"depth": rng.randint(1, 8), "mixer": rng.choice(["repmixer", "attention"]),
              "width": rng.choice([32, 64, 128])}
    state = {"ok": TrialState.COMPLETE, "infeasible": TrialState.COMPLETE, "failed": TrialState.FAIL,
             "pruned": TrialState.PRUNED}[kind]
    values = [accuracy if kind == "ok" else 0.0, latency] if state == TrialState.COMPLETE else None
    trial = optuna.trial.create_trial(state=state, values=values, params=params, distributions=DISTRIBUTIONS,
                                      user_attrs=attrs(number, *row))
    trial.number = number  # as a study would number it
    return trial


def trial_set(name: str, rows: list[tuple], seed: int = 0) -> TrialSet:
    """The trials of `rows` without a storage, for tests that need no study (fast)."""
    rng = random.Random(seed)
    return TrialSet.of(name, [trial_of(i, row, rng) for i, row in enumerate(rows)])


def build_study(directory: Path, name: str, rows: list[tuple] = KNOWN, seed: int = 0) -> Path:
    """A run directory as `archsearch sweep` leaves it (study.db and study.json), from `rows`."""
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(directory / 'study.db').resolve()}"
    study = optuna.create_study(directions=["maximize", "minimize"], storage=url, study_name=name)
    study.set_user_attr("objectives", ["zeroshot_top1", "latency_ms"])
    study.set_user_attr("archsearch", {"space_name": "tiny", "recipe": {"name": "cpu-tiny"},
                                       "latency": {"backend": "torch-cpu", "batch": 1, "threads": 2}})
    rng = random.Random(seed)
    study.add_trials([trial_of(i, row, rng) for i, row in enumerate(rows)])
    write_study_file(directory, {"study": name, "storage": url, "local_db": "study.db"})
    return directory


def crowded_rows(count: int = 60, seed: int = 0) -> list[tuple]:
    """Every preset plus `count` sampled trials, crowded the way real fronts are (the small
    presets within a few ms and points of each other), to stress the label placement."""
    rng = random.Random(seed)
    rows = []
    for i, name in enumerate(preset_names()):
        latency = 3.0 * 1.45 ** i
        family = "vitamin" if name.startswith("vitamin") else "mci"
        rows.append((name, latency, 30 + 4 * i ** 0.8 + rng.uniform(-1, 1), family, "RRRA|RAR", "ok"))
    for _ in range(count):
        latency = rng.uniform(2.5, 120.0)
        kind = rng.choices(["ok", "infeasible", "failed"], [8, 1, 1])[0]
        accuracy = 25 + 12 * (latency / 120) ** 0.5 + rng.uniform(-6, 6)
        family = rng.choice(["mci", "vitamin"])
        mixers = rng.choice(["RRRA|RAR", "RRAA|AAA", "MMA|AAAA", "RRRR|RRR"])
        rows.append((None, latency, accuracy if kind == "ok" else None, family, mixers, kind))
    return rows
