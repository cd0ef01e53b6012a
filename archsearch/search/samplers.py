"""Samplers by name, all aware of the study's constraints.

`ehvi` (`archsearch.search.ehvi`) is the default: it is the only one that uses that a trial's
latency is known before it trains. On `benchmarks/search_efficiency.py --latency predictor`
(hybrid space, the latency table, a documented accuracy stand-in, 5 seeds, presets first) it
reaches random search's 100-trial hypervolume in under 40 trials on every seed
(`results/search_efficiency_ehvi.md`). TPE, the best of Optuna's built-in samplers there, needs
70 or more, and NSGA-II and GP end level with random search. On real cpu-tiny proxies, at 24
trials and 2 seeds, ehvi and random search won one seed each (`results/sweep_real_ehvi_vs_random.md`):
its lead is the stand-in's, not yet shown on real scores. TPE starts modelling after 20
trials (the presets count among them); 10 was slower on the same benchmark (76.6 against 61.0).
"""

from __future__ import annotations

from typing import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial

from archsearch.errors import UserError
from archsearch.search.config import SAMPLERS
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
