"""The notebooks' other figures: latency against size, mixers per stage, and proxy fidelity."""

from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from archsearch.analysis.colours import PALETTE, colouring
from archsearch.analysis.fidelity import Fidelity
from archsearch.analysis.labels import Label, marker_boxes, place_labels
from archsearch.analysis.mixers import MixerGroup
from archsearch.analysis.plots import is_wide, label_points, new_figure, scatter_by_colour, set_log
from archsearch.analysis.front_rows import preset_label
from archsearch.analysis.trial_sets import TrialSet
from archsearch.search.record import OBJECTIVES


def cost_figure(trials: TrialSet) -> Figure:
    """Latency against parameters and against GMACs: how well each predicts the measured time."""
    fig = new_figure((12.0, 5.2))
    axes = fig.subplots(1, 2, sharey=True)
    colours = colouring([p.trial for p in trials.scored])
    latency = lambda p: p.latency_ms  # noqa: E731
    for ax, key in zip(axes, ("params_m", "gmacs")):
        cost = lambda p, key=key: p.trial.user_attrs[key]  # noqa: E731
        scatter_by_colour(ax, trials.scored, colours, cost, latency)
        for axis, values in (("x", [cost(p) for p in trials.scored]), ("y", [latency(p) for p in trials.scored])):
            if is_wide(values):
                set_log(ax, axis)
        ax.set_xlabel(OBJECTIVES[key].label)
        ax.grid(True, color="0.9", linewidth=0.6)
    axes[0].set_ylabel(OBJECTIVES["latency_ms"].label)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, title=colours.title,
                   title_fontsize=8, frameon=False)
    fig.suptitle(f"{trials.name}: measured latency against parameters and GMACs", fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    for ax, key in zip(axes, ("params_m", "gmacs")):
        label_points(ax, trials.scored, [], lambda p, key=key: p.trial.user_attrs[key], latency)
    return fig


def mixer_figure(groups: Sequence[MixerGroup], title: str) -> Figure:
    """Per stage, how many scored trials use each mixer (darker: those on the front), and their
    mean zero-shot top-1."""
    fig = new_figure((12.0, 4.8))
    count_ax, top1_ax = fig.subplots(1, 2)
    parts = list(dict.fromkeys(g.part for g in groups))
    mixers = sorted({g.mixer for g in groups})
    width = 0.8 / max(len(mixers), 1)
    for i, mixer in enumerate(mixers):
        colour = PALETTE[i % len(PALETTE)]
        xs, mine = [], []
        for j, part in enumerate(parts):
            for g in groups:
                if g.part == part and g.mixer == mixer:
                    xs.append(j + (i - (len(mixers) - 1) / 2) * width)
                    mine.append(g)
        count_ax.bar(xs, [g.trials for g in mine], width, color=colour, alpha=0.45, label=mixer)
        count_ax.bar(xs, [g.on_front for g in mine], width, color=colour, alpha=1.0)
        top1_ax.bar(xs, [g.mean_top1 for g in mine], width, color=colour, alpha=0.8, label=mixer)
        top1_ax.scatter(xs, [g.best_top1 for g in mine], marker="_", s=120, color="black", zorder=3)
    for ax, ylabel in ((count_ax, "scored trials (darker: on the front)"),
                       (top1_ax, f"{OBJECTIVES['zeroshot_top1'].label}: mean (bars), best (dashes)")):
        ax.set_xticks(range(len(parts)), parts)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", color="0.9", linewidth=0.6)
    top1_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="token mixer", frameon=False)
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    return fig


def fidelity_figure(fidelity: Fidelity) -> Figure:
    """The short proxy against itself at another seed, and against the 10x reference (seed mean), each
    with Kendall's tau: how far the cheap proxy's ranking can be trusted."""
    fig = new_figure((12.0, 5.5))
    seeds_ax, ref_ax = fig.subplots(1, 2)
    rows, referenced = fidelity.table, fidelity.with_reference
    panels = [(seeds_ax, rows, [(r.short[0], r.short[1]) for r in rows],
               f"seed 0 vs seed 1: Kendall tau = {fidelity.tau_short_seeds:.2f}",
               f"{fidelity.short_recipe}, student seed 1 (%)"),
              (ref_ax, referenced, [(r.short[0], r.reference_mean) for r in referenced],
               "vs reference: " + (f"Kendall tau = {fidelity.tau_short_reference:.2f} "
                                   f"[{fidelity.tau_short_reference_ci[0]:.2f}, {fidelity.tau_short_reference_ci[1]:.2f}]"
                                   if fidelity.tau_short_reference is not None else "not measured yet")
               + f" ({len(referenced)} of {len(rows)})",
               f"{fidelity.reference_name}, mean of seeds 0 and 1 (%)")]
    for i, (ax, _, xy, title, ylabel) in enumerate(panels):
        if xy:
            ax.scatter(*zip(*xy), s=36, color=PALETTE[i % len(PALETTE)], edgecolors="white", linewidths=0.5,
                       zorder=3)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(f"zero-shot top-1, {fidelity.short_recipe}, student seed 0 (%)")
        ax.set_ylabel(f"zero-shot top-1, {ylabel}")
        ax.grid(True, color="0.9", linewidth=0.6)
        ax.margins(0.15)
    fig.suptitle(f"Proxy fidelity over {len(rows)} architectures" + (f" ({fidelity.date})" if fidelity.date else ""),
                 fontsize=12, x=0.01, ha="left")
    fig.tight_layout()
    for ax, members, xy, _, _ in panels:
        names = [preset_label(r.arch) for r in members]  # presets by their papers' names
        place_labels(ax, [Label(n, x, y) for n, (x, y) in zip(names, xy)], marker_boxes(ax, xy),
                     fontsize=7.5, color="0.1")
    return fig
