"""The Pareto plot as interactive HTML (plotly), and Optuna's parameter importances.

The HTML draws what the PNG draws, with every trial's details on hover; its preset and front
labels reuse the PNG's placement (offsets in points), so both read alike and neither piles names
on top of each other. The page embeds plotly.js, so it opens offline.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Optional

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial

from archsearch.analysis.colours import MIXER_LEGEND, colouring
from archsearch.analysis.hypervolume import UNITS, ReferencePoint
from archsearch.analysis.labels import Placement
from archsearch.analysis.plots import FIGSIZE, VS_COLOUR, Comparison, front_steps, pareto_limits
from archsearch.analysis.front_rows import count, preset_label
from archsearch.analysis.trial_sets import TrialSet
from archsearch.errors import UserError
from archsearch.search.record import OBJECTIVES

PX_PER_INCH = 100
PX_PER_PT = PX_PER_INCH / 72
FAINT_RGB = "rgb(140,140,140)"


def hover(trial: FrozenTrial) -> str:
    """A trial's details, one per line."""
    a = trial.user_attrs
    name = f"trial #{trial.number}" + (f" ({preset_label(a['preset'])})" if a.get("preset") else "")
    lines = [f"<b>{name}</b>", a.get("layout", ""), f"{a.get('family', '?')}, mixers {a.get('mixers', '?')}"]
    if "params_m" in a:
        lines.append(f"params {a['image_params'] / 1e6:.1f} M image + {a['text_params'] / 1e6:.1f} M text, "
                     f"{a['gmacs']:.3g} GMACs")
    if "latency_ms" in a:
        lines.append(f"latency {a['latency_ms']:.2f} ms ({a.get('image_ms', math.nan):.2f} image + "
                     f"{a.get('text_ms', math.nan):.2f} text)")
    if a.get("trained"):
        lines.append(f"zero-shot top-1 {a['zeroshot_top1']:.1f} %, R@1 I->T {a.get('i2t_r1', math.nan):.1f} "
                     f"T->I {a.get('t2i_r1', math.nan):.1f}")
    for key in ("infeasible", "fail_reason"):
        if a.get(key):
            lines.append(f"{key.replace('_', ' ')}: {a[key]}")
    return "<br>".join(line for line in lines if line)


def _label_annotations(placement: Optional[Placement], x_log: bool) -> list[dict]:
    out = []
    for ann in placement.annotations if placement else []:
        (x, y), (ox, oy) = ann.xy, ann.xyann
        out.append(dict(x=math.log10(x) if x_log else x, y=y, text=ann.get_text(), showarrow=True,
                        ax=ox * PX_PER_PT, ay=-oy * PX_PER_PT, xanchor=ann.get_ha(),
                        yanchor={"center": "middle"}.get(ann.get_va(), ann.get_va()),
                        arrowwidth=0.6, arrowhead=0, standoff=4,
                        arrowcolor="gray" if ann.arrow_patch is not None else "rgba(0,0,0,0)",
                        font=dict(size=10)))
    return out


def pareto_html(trials: TrialSet, reference: ReferencePoint, hypervolume: float, subtitle: str = "",
                vs: Optional[Comparison] = None, placement: Optional[Placement] = None) -> go.Figure:
    fig = go.Figure()
    colours = colouring([p.trial for p in trials.scored])
    limits = pareto_limits(trials, reference, vs)
    xs, ys = front_steps(trials.front, reference.latency_ms)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="black", width=2, shape="hv"),
                             fill="tozeroy", fillcolor="rgba(150,150,150,0.15)", hoverinfo="skip",
                             name=f"Pareto front of {trials.name} ({count(len(trials.front), 'trial')}), "
                                  f"hypervolume {hypervolume:.4g} {UNITS}"))
    if vs is not None and vs.trials.front:
        vx, vy = front_steps(vs.trials.front, reference.latency_ms)
        fig.add_trace(go.Scatter(x=vx, y=vy, mode="lines", hoverinfo="skip",
                                 line=dict(color=VS_COLOUR, width=2, dash="dash", shape="hv"),
                                 name=f"front of {vs.trials.name} ({count(len(vs.trials.front), 'trial')}), "
                                      f"hypervolume {vs.hypervolume:.4g} {UNITS}"))
        fig.add_trace(go.Scatter(x=vx[:-1], y=vy[:-1], mode="markers", showlegend=False,
                                 marker=dict(size=9, color="rgba(0,0,0,0)", line=dict(color=VS_COLOUR, width=1.5)),
                                 hovertext=[hover(p.trial) for p in vs.trials.front], hoverinfo="text"))
    for key, colour in colours.colours.items():
        group = [p for p in trials.scored if colours.keys[p.number] == key]
        fig.add_trace(go.Scatter(
            x=[p.latency_ms for p in group], y=[p.zeroshot_top1 for p in group], mode="markers", name=key,
            marker=dict(color=colour, size=[12 if p.preset else 8 for p in group],
                        symbol=["diamond" if p.preset else "circle" for p in group],
                        line=dict(color=["black" if p.preset else "white" for p in group], width=1)),
            hovertext=[hover(p.trial) for p in group], hoverinfo="text"))
    faint = ((trials.infeasible, "x", "broke a constraint"), (trials.failed, "triangle-down", "failed"))
    for group, symbol, what in faint:
        if group:
            fig.add_trace(go.Scatter(
                x=[t.user_attrs["latency_ms"] for t in group], y=[limits.rug_y] * len(group), mode="markers",
                marker=dict(symbol=symbol, size=7, color=FAINT_RGB), opacity=0.5,
                name=f"{what}, not trained ({len(group)}; latency only)",
                hovertext=[hover(t) for t in group], hoverinfo="text"))
    title = f"Pareto front of {trials.name}: zero-shot top-1 vs latency"
    width, height = (int(v * PX_PER_INCH) for v in FIGSIZE)
    fig.update_layout(
        title=dict(text=f"{title}<br><sup>{subtitle}; reference point {reference}</sup>" if subtitle else title),
        template="plotly_white", width=width, height=height, legend=dict(title=colours.title, font=dict(size=11)),
        annotations=_label_annotations(placement, limits.x_log) + (
            [dict(text=f"mixers: {MIXER_LEGEND}", xref="paper", yref="paper", x=1, y=-0.12, showarrow=False,
                  font=dict(size=10, color="gray"), xanchor="right")] if "mixers" in colours.title else []))
    fig.update_xaxes(title=OBJECTIVES["latency_ms"].label, type="log" if limits.x_log else "linear",
                     range=[math.log10(v) for v in limits.x] if limits.x_log else list(limits.x))
    fig.update_yaxes(title=f"proxy {OBJECTIVES['zeroshot_top1'].label}", range=list(limits.y))
    return fig


def write_html(fig: go.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def importance_figure(study: optuna.Study, trials: TrialSet) -> go.Figure:
    """Optuna's parameter-importance plot for zero-shot top-1 over the scored trials only.

    PED-ANOVA, because Optuna's default (fANOVA) needs scikit-learn; it ranks the parameters by how
    much they matter for the best trials, and it looks for low values, hence the negated accuracy.
    Its warning that some parameter values were seen in fewer than 2 trials is true of every small
    study (a 10-trial sweep has 4 sampled architectures) and says nothing the plot's reader needs.
    """
    if len(trials.scored) < 3:
        raise UserError(f"study {trials.name!r}: parameter importances need at least 3 scored trials, "
                        f"it has {len(trials.scored)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
        warnings.filterwarnings("ignore", message="Some regimes for parameter")
        return optuna.visualization.plot_param_importances(
            trials.scored_study(study), evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
            target=lambda t: -t.user_attrs["zeroshot_top1"], target_name="zero-shot top-1")
