"""Search efficiency on a space: hypervolume after N trials for each sampler, over several seeds.

Each (sampler, seed) runs one Optuna study the way `archsearch sweep` runs one: the samplers come
from `archsearch.search.samplers.make_sampler` (exactly what the sweep uses), the two objectives
are (accuracy: maximise, latency: minimise), the space's presets are enqueued first as named
trials (``--no-presets`` leaves them out), a sampled combination the space does not build is
told PRUNED and counts against the budget as in the sweep's tally, and there are no constraints.
One worker, trials one after another.

With ``--latency predictor`` the latency objective is this machine's latency lookup table
(``runs/latency_tables/benchmark``, built and validated by benchmarks/latency_predictor.py)
instead of GMACs; units it lacks are timed as they come, so that mode runs one study at a time.

What is *not* real, and why (the proxy trains for minutes and the latency table measures units
on demand; 1500+ evaluations of either cost hours on a shared 2-core machine):

- latency stand-in: the architecture's total fvcore GMACs (image + text, folded model, one
  image at its resolution and one 77-token sequence), from `archsearch.latency.cost.measure_cost`
  (the same count the sweep stores as ``gmacs``). Monotone in work, blind to how efficiently a
  kernel runs (attention vs. convolution, memory-bound ops).
- accuracy stand-in: `accuracy_stand_in`, a fixed, documented function of the architecture alone
  (never of the sampler), saturating in capacity, plus a per-architecture pseudo-random term
  from the spec hash. Its constants were set from the presets before any sampler ran.

Evaluations are cached by `ArchSpec.digest` in ``runs/search_efficiency/costs.jsonl`` (MAC counts do
not depend on the machine), so a rerun only pays for the samplers. Results dated before 2026-12-06
keyed the cache and the stand-in's noise term by a hash of the full spec dump instead; a rerun
differs from them by that noise draw alone.

Hypervolume: `archsearch.pareto.hypervolume` (the area Optuna's WFG computes in two objectives),
over the completed trials among the first n, on the minimised pair (-accuracy / 100, GMACs / GMACS_REF)
with the reference point (-ACC_REF / 100, 1): the area dominated by the front in (accuracy fraction,
fraction of GMACS_REF), below ACC_REF% accuracy or above GMACS_REF counting nothing (points
outside the reference box are dropped, as Optuna's hypervolume-history plot does).

    python -m benchmarks.search_efficiency --latency predictor [--trials 100] [--seeds 5] [--samplers ehvi tpe nsga2 random]
    python -m benchmarks.search_efficiency --samplers tpe gp tpe:n_startup_trials=20 nsga2:population_size=20

`ehvi` (the sweep's default) screens its candidates by the latency objective itself, so it runs
only with ``--latency predictor``, where that objective is the table's prediction: what the
sampler knows before a trial is then exactly the trial's latency value, as in a sweep it is the
table's prediction of the measured one (within ±10 %).

A sampler argument is a `make_sampler` name, optionally with ``:key=value,...``: for tpe and gp,
``n_startup_trials`` goes through `make_sampler`; anything else (e.g. nsga2's
``population_size``) builds the Optuna sampler directly with make_sampler's other settings and
is marked as not the sweep's configuration. Writes benchmarks/results/search_efficiency.{json,md}
(or --out PREFIX).
"""
