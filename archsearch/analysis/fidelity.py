"""The proxy-fidelity benchmark's results, read and checked (`benchmarks/proxy_scores.py fidelity`).

The benchmark scores the same architectures with a short and a long proxy recipe, with and
without reinforcement, and records Kendall's tau between the two rankings. Its JSON is
``{"meta": {...}, "summary": {"architectures": [...], "reinforced": {"kendall_tau", "short",
"long"}, "plain": {...}}, "runs": [...]}``; the score lists follow the architectures' order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from archsearch.errors import UserError

DEFAULT_PATH = Path("benchmarks/results/proxy_fidelity.json")
VARIANTS = ("reinforced", "plain")
PRODUCER = "python benchmarks/proxy_scores.py fidelity"


@dataclass(frozen=True)
class FidelityVariant:
    label: str  # "reinforced" | "plain"
    kendall_tau: float
    short: list[float]
    long: list[float]


@dataclass(frozen=True)
class Fidelity:
    path: Path
    architectures: list[str]
    variants: list[FidelityVariant]
    short_recipe: str
    long_recipe: str
    date: str
    command: str


def _long_recipe(short: str, runs: list[dict]) -> str:
    """The long recipe's name, which the summary does not record: the one recipe of the runs
    that is neither the short one nor a plain copy of either."""
    names = {str(r.get("recipe", "")).removesuffix("-plain") for r in runs} - {short, ""}
    return names.pop() if len(names) == 1 else "long recipe"


def load_fidelity(path: str | Path = DEFAULT_PATH) -> Fidelity:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no proxy-fidelity results there; produce them with `{PRODUCER}` "
                        "(or point ARCHSEARCH_FIDELITY_JSON at the file)")
    try:
        data = json.loads(path.read_text())
        summary, meta = data["summary"], data.get("meta") or {}
        names = [str(n) for n in summary["architectures"]]
        variants = [FidelityVariant(label, float(summary[label]["kendall_tau"]),
                                    [float(v) for v in summary[label]["short"]],
                                    [float(v) for v in summary[label]["long"]])
                    for label in VARIANTS if label in summary]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a result of `{PRODUCER}` ({type(exc).__name__}: {exc}); it needs "
                        "summary.architectures, and summary.reinforced and/or summary.plain with kendall_tau, "
                        "short and long") from None
    if not variants:
        raise UserError(f"{path}: summary has neither of {', '.join(VARIANTS)}")
    for v in variants:
        if not len(v.short) == len(v.long) == len(names):
            raise UserError(f"{path}: summary.{v.label}: short and long need one score per architecture "
                            f"({len(names)}), got {len(v.short)} and {len(v.long)}")
    short = (meta.get("recipe") or {}).get("name", "short recipe")
    return Fidelity(path, names, variants, short, _long_recipe(short, data.get("runs") or []),
                    str(meta.get("date", "")), str(meta.get("command", "")))
