"""What archsearch needs of Optuna beyond its public API, kept in one place.

Three things have no public spelling: writing a user attribute on a trial from outside its
`Trial` object (a sampler's `before_trial` holds a `FrozenTrial`), failing another process's
running trial (a sweep's parent, when a worker dies), and recording a finished trial's
constraint values as Optuna's own samplers do (so `ehvi`'s trials count as feasible or not in
Optuna's Pareto views). The first two go through the study's storage, as
`optuna.storages.fail_stale_trials` does; an Optuna upgrade that moves any of them breaks here alone.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState


def set_user_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """`trial.set_user_attr` for a trial known only as a FrozenTrial."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)  # noqa: SLF001


def fail_running_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `fail_reason`; False if it had already finished."""
    set_user_attr(study, trial, "fail_reason", reason)
    return study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001


def record_constraints(constraints_func: Callable[[FrozenTrial], Sequence[float]], study: optuna.Study,
                       trial: FrozenTrial, state: TrialState) -> None:
    """What a built-in sampler's `after_trial` does with `constraints_func`."""
    optuna.samplers._base._process_constraints_after_trial(constraints_func, study, trial, state)  # noqa: SLF001
