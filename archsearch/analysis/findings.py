"""The papers' findings reproduced at proxy scale (`benchmarks/finding_*.py`), read and plotted.

Each benchmark writes ``benchmarks/results/finding_<key>.json``: ``{"finding", "title", "meta",
"paper", "seeds", "reproduced", "verdict", "tried", "summary", "runs"}``; `summary` holds what
its figure needs. `load_findings` reads all five and says which are missing and how to make them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from archsearch.analysis.colours import PALETTE
from archsearch.analysis.plots import new_figure
from archsearch.errors import UserError

DEFAULT_DIR = Path("benchmarks/results")
FINDINGS = {  # key -> the benchmark module that writes it
    "reinforcement": "finding_reinforcement",
    "mlp_ratio": "finding_mlp_ratio",
    "text_encoder": "finding_text_encoder",
    "vitamin_hybrid": "finding_vitamin_hybrid",
    "latency_order": "finding_latency_order",
}


@dataclass(frozen=True)
class Finding:
    key: str
    title: str
    reproduced: bool
    seeds: int
    paper: str
    verdict: str
    summary: dict
    date: str
    command: str


def load_findings(directory: str | Path = DEFAULT_DIR) -> list[Finding]:
    directory = Path(directory)
    missing = [key for key in FINDINGS if not (directory / f"finding_{key}.json").is_file()]
    if missing:
        raise UserError(f"{directory}: no results for {', '.join(missing)}; make them with "
                        + "; ".join(f"python -m benchmarks.{FINDINGS[k]}" for k in missing))
    findings = []
    for key in FINDINGS:
        data = json.loads((directory / f"finding_{key}.json").read_text())
        findings.append(Finding(key=key, title=data["title"], reproduced=data["reproduced"], seeds=data["seeds"],
                                paper=data["paper"], verdict=data["verdict"], summary=data["summary"],
                                date=data["meta"]["date"], command=data["meta"]["command"]))
    return findings


def overview(findings: list[Finding]) -> str:
    """One line per finding: reproduced or not, with how many seeds."""
    width = max(len(f.title) for f in findings)
    return "\n".join(f"{f.title:<{width}}  {'reproduced' if f.reproduced else 'NOT reproduced':<14}  "
                     f"seeds: {f.seeds}  ({f.date})" for f in findings)


def _finish(fig: Figure, *axes) -> Figure:
    for ax in axes:
        ax.grid(True, color="0.9", linewidth=0.6)
    fig.tight_layout()
    return fig


def reinforcement_figure(finding: Finding) -> Figure:
    """Top-1 against steps: reinforced (solid) and plain (dashed), one colour per architecture."""
    fig = new_figure((7.5, 4.8))
    ax = fig.subplots()
    budget = finding.summary["budget_steps"]
    for i, (name, arch) in enumerate(finding.summary["archs"].items()):
        colour = PALETTE[i % len(PALETTE)]
        for mode, style in (("reinforced", "-o"), ("plain", "--s")):
            steps, top1 = zip(*arch["curves"][mode])
            ax.plot(steps, top1, style, color=colour, label=f"{name} {mode}", markersize=4)
        ax.axhline(arch["reinforced_at_budget"], color=colour, linestyle=":", linewidth=0.8)
    ax.axvline(budget, color="0.5", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training steps (log scale)")
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.set_title(f"Reinforced vs plain CLIP training (dotted: reinforced at the {budget}-step budget)", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    return _finish(fig, ax)


def seeds_figure(finding: Finding) -> Figure:
    """Mean top-1 per variant with its seed spread and every seed's score (finding 2 and 4)."""
    fig = new_figure((6.5, 4.5))
    ax = fig.subplots()
    scores = finding.summary["scores"]
    for i, (label, s) in enumerate(scores.items()):
        colour = PALETTE[i % len(PALETTE)]
        ax.bar(i, s["mean"], 0.6, color=colour, alpha=0.35, yerr=s["sd"], capsize=6)
        ax.plot([i] * len(s["values"]), s["values"], "o", color=colour)
    ax.set_xticks(range(len(scores)), list(scores), fontsize=8)
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.set_title(f"{finding.title} ({finding.seeds} seeds)", fontsize=10)
    return _finish(fig, ax)


def text_encoder_figure(finding: Finding) -> Figure:
    """Accuracy (mean +- seed spread) against measured full-size text latency, per text tower."""
    fig = new_figure((6.5, 4.5))
    ax = fig.subplots()
    for i, (label, s) in enumerate(finding.summary["scores"].items()):
        ms = finding.summary["costs"][label]["text_ms"]
        ax.errorbar(ms, s["mean"], yerr=s["sd"], fmt="o", color=PALETTE[i % len(PALETTE)], capsize=5, label=label)
        ax.annotate(label, (ms, s["mean"]), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("text tower latency, full size, 1 thread (ms)")
    ax.set_ylabel("zero-shot top-1 (%)")
    ax.set_title("Text encoders of equal width and depth", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return _finish(fig, ax)


def latency_order_figure(finding: Finding) -> Figure:
    """Our measured latency against the paper's figure, one panel per family, log-log."""
    fig = new_figure((11.0, 4.5))
    ours = finding.summary["ours"]
    for ax, family in zip(fig.subplots(1, 2), ("MobileCLIP", "ViTamin")):
        part = finding.summary[family]
        names = list(part["paper"])
        xs = [part["paper"][n] for n in names]
        ys = [ours[n]["image_ms"] + ours[n]["text_ms"] for n in names]
        ax.plot(xs, ys, "o-", color=PALETTE[0 if family == "MobileCLIP" else 1])
        for name, x, y in zip(names, xs, ys):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(part["paper_unit"])
        ax.set_ylabel("ours: image + text latency, 1 thread (ms)")
        rho = part["spearman"]
        ax.set_title(f"{family}: Spearman {rho:.2f}" if not math.isnan(rho) else family, fontsize=10)
    return _finish(fig, *fig.axes)


FIGURES = {"reinforcement": reinforcement_figure, "mlp_ratio": seeds_figure, "text_encoder": text_encoder_figure,
           "vitamin_hybrid": seeds_figure, "latency_order": latency_order_figure}


def finding_figure(finding: Finding) -> Figure:
    return FIGURES[finding.key](finding)
