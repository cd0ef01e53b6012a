"""What archsearch needs of Optuna beyond its public API, kept in one place.

Four things have no public spelling: writing a user attribute on a trial from outside its
`Trial` object (a sampler's `before_trial` holds a `FrozenTrial`), failing another process's
running trial (a sweep's parent, when a worker dies), recording a finished trial's
constraint values as Optuna's own samplers do (so `ehvi`'s trials count as feasible or not in
Optuna's Pareto views), and copying a finished trial with other values and attributes (analysis
shows latencies on a study's settled scale). The first two go through the study's storage, as
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


def replaced(trial: FrozenTrial, values: list[float] | None, user_attrs: dict[str, Any]) -> FrozenTrial:
    """A copy of `trial` with other objective values and user attributes, its id kept (FrozenTrial
    has no setter for `values`, and its constructor needs the private id)."""
    return FrozenTrial(number=trial.number, state=trial.state, value=None, values=values,
                       datetime_start=trial.datetime_start, datetime_complete=trial.datetime_complete,
                       params=trial.params, distributions=trial.distributions, user_attrs=user_attrs,
                       system_attrs=trial.system_attrs, intermediate_values=trial.intermediate_values,
                       trial_id=trial._trial_id)  # noqa: SLF001
