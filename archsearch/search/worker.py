"""A sweep worker: joins a study by storage URL and runs trials until the budget is spent.

Any number of workers, on one machine or many, can join the same study; each rebuilds the space,
recipe and objectives from the study's own `SweepConfig`. Trials run one `study.optimize` call
at a time, so every trial gets Optuna's heartbeat and every new trial first fails stale ones
(whose worker died) and queues them again through the storage's heartbeat callback
(`search/storage.py`). Local workers have a faster path: the sweep's parent sees a worker die.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsearch import workspace
from archsearch.errors import UserError
from archsearch.search.config import SweepConfig
from archsearch.search.latency import ScreeningLatency, has_table, table_build_command
from archsearch.search.record import STUDY_CONFIG
from archsearch.search.samplers import EHVI_STARTUP, make_sampler
from archsearch.search.storage import open_storage, run_dir
from archsearch.search.trial import INTERRUPTED, WORKER_DIED, TrialRunner

STUDY_BUDGET = "trials"


@dataclass(frozen=True)
class Tally:
    """Trials by what they mean for the budget."""

    done: int      # complete, pruned, or failed for a reason of their own
    running: int
    waiting: int   # enqueued presets and retries of trials whose worker died
    failed: int    # failed for a reason of their own (exception, non-finite loss)
    lost: int      # failed because their worker died or was interrupted (queued again)

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> "Tally":
        by_state = {state: [t for t in trials if t.state == state] for state in TrialState}
        own_failures = [t for t in by_state[TrialState.FAIL] if not lost_to_its_worker(t)]
        return cls(done=len(by_state[TrialState.COMPLETE]) + len(by_state[TrialState.PRUNED]) + len(own_failures),
                   running=len(by_state[TrialState.RUNNING]), waiting=len(by_state[TrialState.WAITING]),
                   failed=len(own_failures), lost=len(by_state[TrialState.FAIL]) - len(own_failures))


def lost_to_its_worker(trial: FrozenTrial) -> bool:
    """A failure that says nothing of the architecture: the worker was interrupted, killed (its
    parent says so), or went silent (a stale heartbeat, which leaves no reason). Queued again."""
    reason = trial.user_attrs.get("fail_reason")
    return reason is None or reason == INTERRUPTED or reason.startswith(WORKER_DIED)


def has_work(study: optuna.Study, budget: int) -> bool:
    """Whether a worker should start another trial: queued trials always run (presets, retries);
    new ones only while finished plus running trials are below the budget. Stale trials (their
    worker died) are failed and queued again first, so they count as queued, not running."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    tally = Tally.of(study.get_trials(deepcopy=False))
    return tally.waiting > 0 or tally.done + tally.running < budget


def worker_seed(seed: int, index: int, finished: int) -> int:
    """The sampler seed of worker `index` joining a study with `finished` trials done. Workers of
    a fresh study draw as `seed + 1000 * index` always did; a worker joining later (a resumed
    sweep) gets a seed of its own, so its random draws do not repeat the architectures the first
    worker with that index already drew."""
    return seed + 1000 * index + 1_000_000 * finished


def study_config(study: optuna.Study) -> SweepConfig:
    data = study.user_attrs.get(STUDY_CONFIG)
    if data is None:
        raise UserError(f"--study: {study.study_name!r} was not created by `archsearch sweep` (it has no "
                        f"{STUDY_CONFIG!r} user attribute); create it with archsearch sweep --study NAME --storage URL")
    return SweepConfig.from_dict(data)


def quiet_libraries() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def run_worker(storage_url: str, study_name: str, *, index: int = 0, budget: int | None = None,
               runs: str | Path | None = None, wandb: str = "offline") -> int:
    """Run trials of `study_name` until its budget is spent; returns how many this worker ran."""
    quiet_libraries()
    runs = workspace.root() if runs is None else Path(runs)  # the CLI's --runs has set the root for the rooms
    storage = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise UserError(f"--study: no study {study_name!r} in the storage; start it with archsearch sweep") from None
    config = study_config(study)
    budget = budget if budget is not None else int(study.user_attrs.get(STUDY_BUDGET, 0))
    constraints = len([c for c in (config.max_latency_ms, config.max_params_m) if c is not None])

    def constraints_func(trial: FrozenTrial) -> list[float]:
        return list(trial.user_attrs.get("constraints") or [0.0] * constraints)

    runner = TrialRunner(config, run_dir(study_name, runs), wandb=wandb)
    screening = {}
    if config.sampler == "ehvi":
        if budget > EHVI_STARTUP and not has_table(config.latency, runs):
            raise UserError(f"--sampler ehvi screens by this device's latency table, and there is none; build it "
                            f"with `{table_build_command(config.latency, runs)}`")
        screening = dict(space=runner.space, latency_of=ScreeningLatency(config.latency, runner.lock, runs),
                         max_latency=config.max_latency_ms)
    finished = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    study.sampler = make_sampler(config.sampler, worker_seed(config.seed, index, finished),
                                 constraints_func if constraints else None, **screening)
    ran = 0
    while has_work(study, budget):
        study.optimize(runner, n_trials=1, catch=(Exception,), gc_after_trial=True)
        ran += 1
    return ran
