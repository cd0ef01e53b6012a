"""Which colour a trial gets: its family and token-mixer mix, or its family alone when the mixes
are too many to tell apart. Shared by the PNG and the HTML so both read the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from optuna.trial import FrozenTrial

# Tableau 10: distinct, colour-blind tolerable, and matplotlib's and plotly's common default.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
MIXER_ORDER = "RMA"
MIXER_LEGEND = "R RepMixer, M MBConv, A attention"


def mixer_set(letters: str) -> str:
    """'RRRA' -> 'RA': which mixers a tower uses, in a fixed order."""
    return "".join(m for m in MIXER_ORDER if m in letters) + "".join(sorted(set(letters) - set(MIXER_ORDER)))


def mix_key(trial: FrozenTrial) -> str:
    """'mci RA|RA': family, then the mixers of the image stages | of the text layers."""
    family = trial.user_attrs.get("family", "?")
    mixers = trial.user_attrs.get("mixers")
    if not mixers:
        return family
    image, _, text = mixers.partition("|")
    return f"{family} {mixer_set(image)}|{mixer_set(text)}"


@dataclass(frozen=True)
class Colouring:
    title: str               # legend title
    keys: dict[int, str]     # trial number -> key
    colours: dict[str, str]  # key -> colour

    def of(self, trial: FrozenTrial) -> str:
        return self.colours[self.keys[trial.number]]


def colouring(trials: Sequence[FrozenTrial]) -> Colouring:
    """Family and mixer mix while they fit the palette, else family alone."""
    keys = {t.number: mix_key(t) for t in trials}
    title = "family, mixers image|text"
    if len(set(keys.values())) > len(PALETTE):
        keys = {t.number: t.user_attrs.get("family", "?") for t in trials}
        title = "family"
    ordered = sorted(set(keys.values()))
    return Colouring(title, keys, {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(ordered)})
