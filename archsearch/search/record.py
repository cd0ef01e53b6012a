"""What a sweep writes into Optuna, by name: the contract between the search and analysis rooms.

Trial user attributes (all JSON values):

- ``preset``: the preset's name, for the presets enqueued first (absent for sampled trials)
- ``arch``: the full-size ArchSpec as a dict; ``layout``: its `layout_summary`
- ``family``: the space layout it was sampled from (e.g. ``mci``, ``vitamin``);
  ``mixers``: the token-mixer mix, image stage letters then text layer letters (``RRRA|RAR``)
- cost: ``image_params``, ``text_params``, ``params_m``, ``image_gmacs``, ``text_gmacs``, ``gmacs``
- latency (full size, reparameterized): ``image_ms``, ``text_ms``, ``latency_ms``, ``latency_cv``,
  on the anchor's cached quiet scale (what the sampler saw); ``latency_correction``: for a
  drift-corrected figure, its ratios to the anchor, the anchor's in-window medians and the device's
  fingerprint id, from which analysis settles the study's scale (`archsearch.latency.scale`)
- proxy: ``zeroshot_top1``, ``i2t_r1``, ``t2i_r1``, ``i2t_r5``, ``t2i_r5``, ``train_seconds``,
  ``images_per_second``, ``train_loss_tail`` (mean training loss over the last quarter of the
  steps, `training.fit.TrainLossTail`); ``proxy_from``: ``study/trial`` that trained this proxy, when the score
  was read from the proxy cache (`archsearch.proxy.score_cache`) instead of trained again
- ``trained``: false for a trial that broke a constraint (its objective values are then the
  measured latency and an accuracy of 0, so that samplers learn the infeasible region)
- ``constraints``: the values Optuna's ``constraints_func`` returns (feasible when all ≤ 0);
  ``infeasible``: the broken constraints in words
- ``fail_reason``: why a FAIL trial failed (exception type and message, or the non-finite loss)
- ``pruned_reason``: why a sampled combination was not built (the broken tie rule)
- ``screening``: for a trial the ``ehvi`` sampler chose, what it saw: candidates scored (``pool``),
  left out for units the latency table lacks (``unknown_latency``), and the chosen one's ``ehvi``,
  predicted accuracy (``mean``, ``std``) and table ``latency`` (ms)
- ``worker``: ``host:pid`` of the process that ran it; ``dir``: its artifacts, relative to the run dir

Study user attributes: ``archsearch`` (the `SweepConfig` as a dict), ``objectives`` (names, in
the order of the trial values) and ``created``.
"""

from __future__ import annotations

from dataclasses import dataclass

STUDY_CONFIG = "archsearch"
STUDY_OBJECTIVES = "objectives"


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "maximize" | "minimize"
    label: str      # axis label, with units


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("zeroshot_top1", "maximize", "zero-shot top-1 (%)"),
    Objective("latency_ms", "minimize", "latency, image + text (ms)"),
    Objective("params_m", "minimize", "parameters, image + text (M)"),
    Objective("gmacs", "minimize", "GMACs, image + text"),
)}
CORE_OBJECTIVES = ("zeroshot_top1", "latency_ms")
EXTRA_OBJECTIVES = ("params_m", "gmacs")
