"""Which token mixers the scored trials use, stage by stage, and how those trials fared.

An image stage position counts each trial under that stage's mixer. The text tower counts each
trial once, under the set of mixers its layers use (``RepMixer+attention``), since text depths
differ between trials and a per-layer position would compare unlike layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import mean

from archsearch.analysis.colours import mixer_set
from archsearch.analysis.trial_sets import TrialSet

LETTER_NAMES = {"R": "RepMixer", "M": "MBConv", "A": "attention"}


@dataclass(frozen=True)
class MixerGroup:
    part: str        # "stage 1", "stage 2", ..., "text"
    mixer: str       # "RepMixer", "attention", "RepMixer+attention", ...
    trials: int
    on_front: int
    mean_top1: float
    best_top1: float
    mean_latency_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def mixer_name(letters: str) -> str:
    return "+".join(LETTER_NAMES.get(letter, letter) for letter in mixer_set(letters))


def _parts(mixers: str) -> list[tuple[str, str]]:
    image, _, text = mixers.partition("|")
    return [(f"stage {i + 1}", mixer_name(letter)) for i, letter in enumerate(image)] + [("text", mixer_name(text))]


def _order(key: tuple[str, str]) -> tuple:
    part, mixer = key
    return (part == "text", int(part.split()[1]) if part != "text" else 0, mixer)


def mixer_breakdown(trials: TrialSet) -> list[MixerGroup]:
    """One group per (stage, mixer) seen among the scored trials, stages in order, text last."""
    front = {p.number for p in trials.front}
    groups: dict[tuple[str, str], list] = {}
    for p in trials.scored:
        for part, mixer in _parts(p.trial.user_attrs.get("mixers") or "|"):
            if mixer:
                groups.setdefault((part, mixer), []).append(p)
    return [MixerGroup(part, mixer, len(ps), sum(p.number in front for p in ps),
                       mean(p.zeroshot_top1 for p in ps), max(p.zeroshot_top1 for p in ps),
                       mean(p.latency_ms for p in ps))
            for (part, mixer), ps in sorted(groups.items(), key=lambda kv: _order(kv[0]))]
