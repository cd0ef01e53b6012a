"""Samplers by name, all aware of the study's constraints.

`ehvi` (`archsearch.search.ehvi`) is the default: it is the only one that uses that a trial's
latency is known before it trains. How it compares with random search, TPE, NSGA-II and GP on
the hybrid space is measured by `python -m benchmarks.search_efficiency` (a stand-in accuracy,
many seeds; `benchmarks/results/search_efficiency*.md`) and on real proxies by
`python -m benchmarks.sweep_compare` (`benchmarks/results/sweep_real_ehvi_vs_random.md`); the figures
live there, not here, so that they cannot go stale. `TPE_STARTUP` and `EHVI_STARTUP` were chosen
on the same benchmark.
"""

from __future__ import annotations

from typing import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial

from archsearch.errors import UserError
from archsearch.choices import SAMPLERS
from archsearch.search.ehvi import KnownLatencySampler, LatencyOf
from archsearch.space.space import SearchSpace

ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]
TPE_STARTUP = 20
EHVI_STARTUP = 10


def make_sampler(name: str, seed: int | None, constraints_func: ConstraintsFunc | None = None,
                 n_startup_trials: int | None = None, *, space: SearchSpace | None = None,
                 latency_of: LatencyOf | None = None, max_latency: float | None = None
                 ) -> optuna.samplers.BaseSampler:
    """`space` and `latency_of` (a cheap latency estimate, the latency table's) are what `ehvi`
    screens its candidates with; `max_latency` keeps it from proposing what is over the ceiling."""
    if name == "ehvi":
        if space is None or latency_of is None:
            raise UserError("--sampler ehvi: needs the space and this device's latency table")
        return KnownLatencySampler(space, latency_of, seed=seed, constraints_func=constraints_func,
                                   max_latency=max_latency,
                                   n_startup_trials=EHVI_STARTUP if n_startup_trials is None else n_startup_trials)
    n_startup_trials = TPE_STARTUP if n_startup_trials is None else n_startup_trials
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=n_startup_trials, constraints_func=constraints_func)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints_func)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints_func,
                                         n_startup_trials=n_startup_trials, warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"--sampler: {name!r} unknown; allowed: {', '.join(SAMPLERS)}")
