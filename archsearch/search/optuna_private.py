"""What archsearch needs of Optuna beyond its public API, kept in one place.

Two things have no public spelling: writing a user attribute on a trial from outside its
`Trial` object (a sampler's `before_trial` holds a `FrozenTrial`), and failing another process's
running trial (a sweep's parent, when a worker dies). Both go through the study's storage, as
`optuna.storages.fail_stale_trials` does; an Optuna upgrade that moves them breaks here alone.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def set_user_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """`trial.set_user_attr` for a trial known only as a FrozenTrial."""
    study._storage.set_trial_user_attr(trial._trial_id, key, value)  # noqa: SLF001


def fail_running_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Mark a RUNNING trial FAIL with `fail_reason`; False if it had already finished."""
    set_user_attr(study, trial, "fail_reason", reason)
    return study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001
