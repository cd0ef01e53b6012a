"""Optuna samplers by name, all aware of the study's constraints.

TPE is the default: on a define-by-run space with conditional parameters (layouts, blocks,
text depth) its multivariate, grouped form models the joint choices from the first dozen trials,
where NSGA-II's generations of 50 stay close to random search for a small budget (see
`benchmarks/search_efficiency.py`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial

from archsearch.errors import UserError
from archsearch.search.config import SAMPLERS

ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]


def make_sampler(name: str, seed: int | None, constraints_func: ConstraintsFunc | None = None,
                 n_startup_trials: int = 10) -> optuna.samplers.BaseSampler:
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
