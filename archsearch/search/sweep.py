"""`archsearch sweep`: create or resume a study, prepare its data once, run local workers.

The study is created with the space's presets enqueued first as named trials, so MobileCLIP and
ViTamin variants are always points of the front. A rerun of the same command finds the study by
name, refuses it if its settings changed, queues again the trials an interrupt cut short, and
continues until the budget is spent; completed trials are never redone. Workers are separate
processes (`archsearch worker`), so a killed worker loses only its current trial, which its
heartbeat lets the next trial of any worker queue again.
"""

from __future__ import annotations

import datetime
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Optional

import optuna
from optuna.trial import TrialState

from archsearch.errors import UserError
from archsearch.latency.fingerprint import device_fingerprint
from archsearch.latency.measure import available_cpus
from archsearch.proxy.recipe import load_recipe
from archsearch.search.config import DEFAULT_SAMPLER, LatencySettings, SweepConfig
from archsearch.search.latency import has_table, latency_table_dir
from archsearch.search.record import STUDY_CONFIG, STUDY_OBJECTIVES
from archsearch.search.samplers import EHVI_STARTUP
from archsearch.search.storage import (RUNS_DIR, default_storage_url, open_storage, redact, run_dir,
                                       supports_heartbeat, write_study_file)
from archsearch.search.trial import INTERRUPTED
from archsearch.search.worker import STUDY_BUDGET, quiet_libraries
from archsearch.space.registry import load_space
from archsearch.spec.presets import get_preset

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
    runs: str = str(RUNS_DIR)
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
    return SweepConfig(
        space_name=space.name, space_text=Path(space.source).read_text(), recipe=recipe.to_dict(),
        objectives=("zeroshot_top1", "latency_ms", *options.objectives),
        max_latency_ms=options.max_latency_ms, max_params_m=options.max_params_m, sampler=options.sampler,
        seed=options.seed, latency=LatencySettings(threads=threads),
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


def _versions() -> dict:
    names = ("archsearch", "torch", "timm", "open_clip_torch", "optuna", "lightning")
    return {name: version(name) for name in names} | {"python": platform.python_version()}


def prepare(options: SweepOptions) -> SweepRun:
    """Create or resume the study and write its `study.json`; no training yet."""
    quiet_libraries()
    config = build_config(options)
    name = options.study or f"{config.space_name}-{config.recipe['name']}"
    directory = run_dir(name, options.runs)
    url = options.storage or default_storage_url(name, options.runs)
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
        "versions": _versions(), "device": device_fingerprint(config.latency.backend, config.latency.threads),
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

    config, runs = run.config, run.directory.parent
    budget = int(run.study.user_attrs.get(STUDY_BUDGET, 0))
    if config.sampler == "ehvi" and budget > EHVI_STARTUP and not has_table(config.latency, runs):
        say = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else None
        if say:
            say(f"building this device's latency table for --sampler ehvi ({latency_table_dir(runs)})")
        build_table(config.space(), backend=config.latency.backend, batch=config.latency.batch,
                    threads=config.latency.threads, cache_dir=latency_table_dir(runs), progress=say)
    recipe = run.config.proxy_recipe()
    if needs_store(recipe):
        ensure_store(recipe, progress)
    training_source(recipe)  # renders the source's pixel cache once


def start_workers(run: SweepRun, runs: str, wandb: str) -> list[subprocess.Popen]:
    logs = run.directory / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for index in range(run.workers):
        command = [sys.executable, "-m", "archsearch.cli.main", "worker", "--storage", run.storage_url,
                   "--study", run.study.study_name, "--index", str(index), "--runs", runs, "--wandb", wandb]
        with (logs / f"worker-{index}.log").open("a") as log:
            procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


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


def run_sweep(run: SweepRun, options: SweepOptions, watch: Callable[[list[subprocess.Popen]], None]) -> list[int]:
    """Run the workers to completion while `watch` shows progress; returns their exit codes."""
    procs = start_workers(run, options.runs, options.wandb)
    try:
        watch(procs)
        return [proc.wait() for proc in procs]
    finally:
        stop_workers(procs)
