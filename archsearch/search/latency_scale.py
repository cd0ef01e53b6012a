"""A study's latencies on its settled scale: what every plot, table and export shows.

A trial records its latency as its ratio to the anchor times the anchor's quiet ms cached at the
sweep's first measurement; one slow phase there moves the whole study (`archsearch.latency.scale`).
Here the scale is settled from every drift-corrected trial of the study on the same device (the
lowest anchor median of all their windows), and each such trial's ``image_ms``, ``text_ms`` and
``latency_ms`` become its ratios times that scale. The figure the sampler saw stays as
``latency_ms_recorded``. Trials measured without an anchor, or recorded before trials carried
their ratios, keep their figures.
"""

from __future__ import annotations

from collections import defaultdict

from optuna.trial import FrozenTrial

from archsearch.latency.scale import AnchorScale, rescaled_ms, settled_scale
from archsearch.search.optuna_private import replaced
from archsearch.search.record import CORE_OBJECTIVES

CORRECTION = "latency_correction"
LATENCY_INDEX = CORE_OBJECTIVES.index("latency_ms")  # every sweep's second objective


def study_scales(trials: list[FrozenTrial]) -> dict[tuple[str, str], AnchorScale]:
    """{(device fingerprint id, anchor): its settled scale} over the trials that carry ratios."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for t in trials:
        correction = t.user_attrs.get(CORRECTION)
        if correction:
            groups[(correction["device"], correction["anchor"])].append(correction)
    return {key: settled_scale(corrections) for key, corrections in groups.items()}


def settled_trials(trials: list[FrozenTrial],
                   scales: dict[tuple[str, str], AnchorScale] | None = None) -> list[FrozenTrial]:
    """`trials` with every drift-corrected latency on its study's settled scale (copies; the
    others as they are); `scales` when the caller has already settled them (`study_scales`)."""
    scales = study_scales(trials) if scales is None else scales
    return [_on_scale(t, scales) for t in trials]


def _on_scale(trial: FrozenTrial, scales: dict[tuple[str, str], AnchorScale]) -> FrozenTrial:
    correction = trial.user_attrs.get(CORRECTION)
    if not correction:
        return trial
    scale = scales[(correction["device"], correction["anchor"])]
    ms = rescaled_ms(correction, scale)
    attrs = {**trial.user_attrs, "image_ms": ms["image_ms"], "text_ms": ms["text_ms"], "latency_ms": ms["total_ms"],
             "latency_ms_recorded": trial.user_attrs["latency_ms"], "latency_scale": scale.to_dict()}
    values = trial.values
    if values is not None and len(values) > LATENCY_INDEX:
        values = [*values[:LATENCY_INDEX], ms["total_ms"], *values[LATENCY_INDEX + 1:]]
    return replaced(trial, values, attrs)
