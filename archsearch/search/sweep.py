"""`archsearch sweep`: create or resume a study, prepare its data once, run local workers.

The study is created with the space's presets enqueued first as named trials, so MobileCLIP and
ViTamin variants are always points of the front. A rerun of the same command finds the study by
name, refuses it if its settings changed, queues again the trials an interrupt cut short, and
continues until the budget is spent; completed trials are never redone. Workers are separate
processes (`archsearch worker`), so a killed worker loses only its current trial: the parent fails
and queues it again at once and starts a replacement (`LocalWorkers`); for workers on other
machines, their heartbeat lets the next trial of any worker queue it again.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import optuna
from optuna.trial import TrialState

from archsearch import workspace
from archsearch.errors import UserError
from archsearch.environment import available_cpus, device_fingerprint, library_versions
from archsearch.latency.drift import ANCHOR
from archsearch.proxy.recipe import load_recipe
from archsearch.search.config import DEFAULT_SAMPLER, LatencySettings, SweepConfig
from archsearch.search.latency import has_table, latency_table_dir
from archsearch.search.optuna_private import fail_running_trial
from archsearch.search.record import STUDY_CONFIG, STUDY_OBJECTIVES
from archsearch.search.samplers import EHVI_STARTUP
from archsearch.search.storage import (default_storage_url, open_storage, redact, run_dir,
                                       supports_heartbeat, write_study_file)
from archsearch.search.trial import INTERRUPTED, WORKER_DIED, worker_label
from archsearch.search.worker import STUDY_BUDGET, quiet_libraries
from archsearch.space.registry import load_space
from archsearch.spec.presets import get_preset, resolve_preset_name

DEFAULT_TRIALS = 10


@dataclass(frozen=True)
class SweepOptions:
    space: str = "hybrid"
    recipe: str = "cpu-tiny"
    trials: int = DEFAULT_TRIALS
    study: Optional[str] = None
    storage: Optional[str] = None
    sampler: str = DEFAULT_SAMPLER
    objectives: tuple[str, ...] = ()
    max_latency_ms: Optional[float] = None
    max_params_m: Optional[float] = None
    workers: Optional[int] = None
    seed: int = 0
    latency_threads: Optional[int] = None
    latency_anchor: Optional[str] = ANCHOR  # None: each model timed on its own, no drift correction
    runs: Optional[str] = None  # the workspace root (archsearch.workspace) when None
    wandb: str = "offline"


@dataclass
class SweepRun:
    study: optuna.Study
    config: SweepConfig
    storage_url: str
    directory: Path
    resumed: bool
    workers: int
    requeued: list[int] = field(default_factory=list)


def _check(options: SweepOptions) -> None:
    if options.trials < 1:
        raise UserError(f"--trials: {options.trials} is not a positive integer")
    if options.workers is not None and options.workers < 1:
        raise UserError(f"--workers: {options.workers} is not a positive integer")
    if options.wandb not in ("online", "offline", "disabled"):
        raise UserError(f"--wandb: {options.wandb!r} is not a wandb mode; allowed: online, offline, disabled")


def build_config(options: SweepOptions) -> SweepConfig:
    _check(options)
    space = load_space(options.space)
    recipe = load_recipe(options.recipe)
    threads = options.latency_threads or 1
    anchor = None
    if options.latency_anchor is not None:
        try:
            anchor = resolve_preset_name(options.latency_anchor)
        except UserError as exc:
            raise UserError(f"--latency-anchor: {exc}, or none") from None
    return SweepConfig(
        space_name=space.name, space_text=Path(space.source).read_text(), recipe=recipe.to_dict(),
        objectives=("zeroshot_top1", "latency_ms", *options.objectives),
        max_latency_ms=options.max_latency_ms, max_params_m=options.max_params_m, sampler=options.sampler,
        seed=options.seed, latency=LatencySettings(threads=threads, anchor=anchor),
    ).check()


def enqueue_presets(study: optuna.Study, config: SweepConfig) -> list[str]:
    space = config.space()
    for name in space.presets:
        study.enqueue_trial(space.params_of(get_preset(name)), user_attrs={"preset": name})
    return list(space.presets)


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Queue again the trials an interrupt (Ctrl-C, SIGTERM) cut short, once each."""
    trials = study.get_trials(deepcopy=False)
    already = {t.user_attrs.get("retry_of") for t in trials}
    requeued = []
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == INTERRUPTED and t.number not in already:
            attrs = {"retry_of": t.number, **({"preset": t.user_attrs["preset"]} if "preset" in t.user_attrs else {})}
            study.enqueue_trial(t.params, user_attrs=attrs)
            requeued.append(t.number)
    return requeued


def prepare(options: SweepOptions) -> SweepRun:
    """Create or resume the study and write its `study.json`; no training yet."""
    quiet_libraries()
    config = build_config(options)
    name = options.study or f"{config.space_name}-{config.recipe['name']}"
    runs = workspace.use(options.runs)  # set for this process and the workers it starts
    directory = run_dir(name, runs)
    url = options.storage or default_storage_url(name, runs)
    study = optuna.create_study(study_name=name, storage=open_storage(url), directions=config.directions,
                                load_if_exists=True)
    existing = study.user_attrs.get(STUDY_CONFIG)
    resumed = existing is not None
    if resumed:
        changed = SweepConfig.from_dict(existing).differences(config)
        if changed:
            raise UserError(f"--study: study {name!r} exists with different {', '.join(changed)}; rerun with its "
                            f"original options to resume it, or name a new study with --study")
    elif study.get_trials(deepcopy=False):
        raise UserError(f"--study: study {name!r} exists in {redact(url)} but was not created by archsearch sweep")
    else:
        study.set_user_attr(STUDY_CONFIG, config.to_dict())
        study.set_user_attr(STUDY_OBJECTIVES, list(config.objectives))
        study.set_user_attr("created", datetime.datetime.now().isoformat(timespec="seconds"))
        enqueue_presets(study, config)
    study.set_user_attr(STUDY_BUDGET, options.trials)
    requeued = requeue_interrupted(study) if resumed else []
    cpus = len(available_cpus())
    recipe_threads = config.proxy_recipe().train.threads or cpus
    workers = options.workers or max(1, cpus // recipe_threads)
    local_db = "study.db" if options.storage is None else None
    write_study_file(directory, {
        "study": name, "storage": redact(url), "local_db": local_db, "space": config.space_name,
        "recipe": config.recipe["name"], "objectives": list(config.objectives), "directions": config.directions,
        "sampler": config.sampler, "seed": config.seed, "trials": options.trials,
        "constraints": {"max_latency_ms": config.max_latency_ms, "max_params_m": config.max_params_m},
        "latency": config.latency.model_dump(), "heartbeat": supports_heartbeat(url),
        "versions": library_versions(), "device": device_fingerprint(config.latency.backend, config.latency.threads),
        "created": study.user_attrs.get("created"),
    })
    return SweepRun(study, config, url, directory, resumed, workers, requeued)


def prepare_data(run: SweepRun, progress: bool = True) -> None:
    """Teachers, reinforced store and pixel cache, built once here rather than raced by workers;
    and this device's latency table when the sampler screens with it and the budget goes beyond
    its random start-up."""
    from archsearch.latency.table import build_table
    from archsearch.proxy.assets import ensure_store, training_source
    from archsearch.proxy.run import needs_store
    from archsearch.space.sampling import table_architectures

    config, runs = run.config, run.directory.parent
    budget = int(run.study.user_attrs.get(STUDY_BUDGET, 0))
    if config.sampler == "ehvi" and budget > EHVI_STARTUP and not has_table(config.latency, runs):
        say = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else None
        if say:
            say(f"building this device's latency table for --sampler ehvi ({latency_table_dir(runs)})")
        build_table(*table_architectures(config.space(), 30, seed=0), backend=config.latency.backend,
                    batch=config.latency.batch, threads=config.latency.threads, cache_dir=latency_table_dir(runs),
                    progress=say)
    recipe = run.config.proxy_recipe()
    if needs_store(recipe):
        ensure_store(recipe, progress)
    training_source(recipe)  # renders the source's pixel cache once


MAX_RESTARTS = 3


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class LocalWorkers:
    """The sweep's worker processes, watched by the parent.

    A worker that dies of a signal (SIGKILL, the OOM killer) cannot mark its own trial. The parent
    sees the exit at once: it fails the trial that worker was running, with the reason, queues it
    again, and starts a replacement worker with the same index while the budget has work left, at
    most `max_restarts` times per sweep. Heartbeats remain the safety net for workers on other
    machines, which no parent watches."""

    def __init__(self, run: SweepRun, wandb: str, max_restarts: int = MAX_RESTARTS):
        self.run, self.wandb, self.max_restarts = run, wandb, max_restarts
        self.runs = str(run.directory.parent)  # the workspace root the study lives in
        self.logs = run.directory / "workers"
        self.restarts = 0
        self.procs: list[subprocess.Popen] = []
        self._seen: set[int] = set()  # pids whose exit was handled

    def start(self) -> "LocalWorkers":
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs = [self._spawn(index) for index in range(self.run.workers)]
        return self

    def _spawn(self, index: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "archsearch.cli.main", "worker", "--storage", self.run.storage_url,
                   "--study", self.run.study.study_name, "--index", str(index), "--runs", self.runs,
                   "--wandb", self.wandb]
        with (self.logs / f"worker-{index}.log").open("a") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> int:
        return sum(proc.poll() is None for proc in self.procs)

    def check(self) -> list[str]:
        """Handle workers that died since the last call; returns one line per event for the user."""
        events = []
        for index, proc in enumerate(self.procs):
            code = proc.poll()
            if code is None or code >= 0 or proc.pid in self._seen:
                continue  # running, or exited by itself (its trial is marked by the worker)
            self._seen.add(proc.pid)
            reason = f"{WORKER_DIED}: worker {index} (pid {proc.pid}) was killed by {_signal_name(code)}"
            lost = fail_trials_of(self.run.study, proc.pid, reason)
            line = reason + (f" in trial {', '.join(map(str, lost))}; failed and queued again" if lost else "")
            from archsearch.search.worker import has_work

            budget = int(self.run.study.user_attrs.get(STUDY_BUDGET, 0))
            if self.restarts < self.max_restarts and has_work(self.run.study, budget):
                self.restarts += 1
                self.procs[index] = self._spawn(index)
                line += f"; started a replacement ({self.restarts} of at most {self.max_restarts})"
            events.append(line)
        return events

    def poll(self) -> tuple[list[str], int]:
        """`check`, then how many workers run; a worker that died just before the count is handled
        (and replaced) before the count can read zero."""
        events = self.check()
        if not self.alive:
            events += self.check()
        return events, self.alive

    def wait(self) -> list[int]:
        """Exit codes of the workers now in place (a replaced worker's death was reported by `check`)."""
        return [proc.wait() for proc in self.procs]

    def stop(self, grace_s: float = 30.0) -> None:
        stop_workers(self.procs, grace_s)


def stop_workers(procs: list[subprocess.Popen], grace_s: float = 30.0) -> None:
    """Interrupt workers (their running trial is marked interrupted and queued again on resume)."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def fail_trials_of(study: optuna.Study, pid: int, reason: str) -> list[int]:
    """Fail the RUNNING trials of the local worker process `pid` with `reason`, and queue each again."""
    lost = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker") != worker_label(pid):
            continue
        if fail_running_trial(study, t, reason):
            attrs = {"retry_of": t.number, **({"preset": t.user_attrs["preset"]} if "preset" in t.user_attrs else {})}
            study.enqueue_trial(t.params, user_attrs=attrs)
            lost.append(t.number)
    return lost


def run_sweep(run: SweepRun, options: SweepOptions, watch: Callable[[LocalWorkers], None]) -> list[int]:
    """Run the workers to completion while `watch` shows progress (and calls their `check` as it
    polls); returns their exit codes."""
    workers = LocalWorkers(run, options.wandb).start()
    try:
        watch(workers)
        return workers.wait()
    finally:
        workers.stop()
