"""The search room: study settings, budgets, quiet latency, trials, and `archsearch sweep`/`worker`
run as a user runs them (subprocesses, a fresh directory, a real PostgreSQL for many workers)."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.errors import UserError
from archsearch.search.latency_scale import settled_trials
from archsearch.search.quiet import QuietLock
from archsearch.search.samplers import EHVI_STARTUP, make_sampler
from archsearch.search.storage import load_study, open_storage, read_study_file, redact
from archsearch.search.sweep import SweepOptions, build_config, enqueue_presets, prepare
from archsearch.search.trial import TrialRunner
from archsearch.search.worker import Tally, has_work, run_worker
from archsearch.spec import get_preset

DATA = Path(__file__).parent / "data"
ARCHSEARCH = shutil.which("archsearch") or str(Path(sys.executable).parent / "archsearch")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh directory with the tiny space and recipe, as a user's checkout would have files."""
    shutil.copy(DATA / "tiny_space.yaml", tmp_path / "space.yaml")
    shutil.copy(DATA / "tiny_recipe.yaml", tmp_path / "recipe.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", **extra}


def _sweep(*args, check=True, env=None, timeout=600, anchor="none"):
    """The CLI on the tiny space; latency without drift correction (timing full-size MobileCLIP-S0
    beside every tiny model would cost most of a test's time) except where a test asks for it."""
    done = subprocess.run([ARCHSEARCH, "sweep", "--space", "space.yaml", "--recipe", "recipe.yaml",
                           "--latency-threads", "1", "--latency-anchor", anchor, "--wandb", "disabled", *args],
                          capture_output=True, text=True, env=env or _env(), timeout=timeout)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _options(**kw):
    return SweepOptions(**{"space": "space.yaml", "recipe": "recipe.yaml", "latency_threads": 1,
                           "latency_anchor": None, "wandb": "disabled", **kw})


# --- settings, budget, storage ------------------------------------------------------------------

def test_objectives_must_include_accuracy_and_latency(workdir):
    with pytest.raises(UserError, match="--objective: area unknown; allowed: zeroshot_top1, latency_ms"):
        build_config(_options(objectives=("area",)))
    config = build_config(_options(objectives=("params_m",), sampler="tpe"))
    assert config.objectives == ("zeroshot_top1", "latency_ms", "params_m")
    assert config.directions == ["maximize", "minimize", "minimize"]
    with pytest.raises(UserError, match="--objective params_m: --sampler ehvi optimises exactly zeroshot_top1 and "
                                        "latency_ms; allowed samplers with more objectives: tpe, nsga2, gp, random"):
        build_config(_options(objectives=("params_m",)))
    with pytest.raises(UserError, match="--latency-anchor: unknown preset 'vit_s9'; allowed: .*, or none"):
        build_config(_options(latency_anchor="vit_s9"))
    assert build_config(_options(latency_anchor="MobileCLIP-S0")).latency.anchor == "mobileclip_s0"


def test_bad_sampler_trials_and_storage_name_the_option():
    with pytest.raises(UserError, match="--sampler: 'cmaes' unknown; allowed: ehvi, tpe, nsga2, gp, random"):
        make_sampler("cmaes", 0)
    with pytest.raises(UserError, match="--storage: 'runs/x.db' is not a storage URL"):
        open_storage("runs/x.db")
    with pytest.raises(UserError, match=r"--storage: cannot open postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/db"):
        open_storage("postgresql+psycopg://u:secret@127.0.0.1:9/db")
    assert redact("postgresql://me:pw@host/db") == "postgresql://me:***@host/db"


def test_the_default_sampler_beyond_its_start_up_needs_this_devices_latency_table(workdir):
    run = prepare(_options(trials=EHVI_STARTUP + 1))
    assert run.config.sampler == "ehvi"
    with pytest.raises(UserError, match="--sampler ehvi screens by this device's latency table.*build-table"):
        run_worker(run.storage_url, run.study.study_name, runs=workdir / "runs")
    assert not run.study.trials  # refused before any trial started


def test_a_directory_that_is_not_a_study_is_refused(tmp_path):
    with pytest.raises(UserError, match="not a study run directory"):
        read_study_file(tmp_path)


def test_presets_are_enqueued_first_and_reproduced_exactly():
    """Enqueued parameters must give back the preset itself, or the front's labels would lie."""
    config = build_config(SweepOptions(space="hybrid"))
    study = optuna.create_study(directions=config.directions)
    names = enqueue_presets(study, config)
    assert names[:4] == ["mobileclip_s0", "mobileclip_s1", "mobileclip_s2", "mobileclip_b"]
    space = config.space()
    for name in names:
        trial = study.ask()
        assert trial.user_attrs["preset"] == name
        assert space.sample(trial) == get_preset(name)
        study.tell(trial, [0.0, 1.0])


def _frozen(state, **attrs):
    values = [1.0, 1.0] if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)


def test_budget_counts_own_failures_but_not_interrupted_or_stale_trials():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for trial in (_frozen(TrialState.COMPLETE), _frozen(TrialState.PRUNED),
                  _frozen(TrialState.FAIL, fail_reason="non-finite loss: nan"),
                  _frozen(TrialState.FAIL, fail_reason="interrupted"), _frozen(TrialState.FAIL)):
        study.add_trial(trial)
    tally = Tally.of(study.get_trials())
    assert (tally.done, tally.failed, tally.lost, tally.waiting) == (3, 1, 2, 0)
    assert has_work(study, 4) and not has_work(study, 3)
    study.enqueue_trial({})
    assert has_work(study, 3)  # queued trials (presets, retries) always run


# --- quiet latency --------------------------------------------------------------------------------

def test_a_measurement_waits_for_running_steps_and_holds_new_ones(tmp_path):
    lock, events = QuietLock(tmp_path), []
    step_started, release_step = threading.Event(), threading.Event()

    def step(name, started=None, release=None):
        with lock.working():
            events.append(f"{name} start")
            if started:
                started.set()
                release.wait(5)
            events.append(f"{name} end")

    def measure():
        with lock.measuring():
            events.append("measure")
            threading.Thread(target=step, args=("second",)).start()  # must wait for the gate
            time.sleep(0.3)
            events.append("measure end")

    first = threading.Thread(target=step, args=("first", step_started, release_step))
    first.start()
    step_started.wait(5)
    measurer = threading.Thread(target=measure)
    measurer.start()
    time.sleep(0.3)
    assert "measure" not in events  # the first step is still running
    release_step.set()
    first.join(5), measurer.join(5)
    time.sleep(0.3)
    assert events == ["first start", "first end", "measure", "measure end", "second start", "second end"]


def _steps(log: Path) -> list[tuple[float, float | None]]:
    """(start, end) of each setup and training step a quiet_worker logged; end None for one still running."""
    events = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    steps: list[list] = []
    for kind, at in events:
        if kind in ("start", "setup"):
            steps.append([float(at), None])
        elif steps and steps[-1][1] is None:
            steps[-1][1] = float(at)
    return [tuple(step) for step in steps]


@pytest.mark.slow
def test_a_latency_measurement_runs_while_every_local_worker_process_is_idle(workdir):
    """Two real worker processes train the tiny space's proxy as trials do; a measurement taken
    meanwhile (the sweep's own `measured_latency`, in a fresh pinned process) starts only after
    each worker's running step or setup has ended, no step or setup of either runs inside it,
    and both go on training after it."""
    from archsearch.proxy.assets import ensure_store
    from archsearch.proxy.recipe import load_recipe
    from archsearch.search.config import LatencySettings
    from archsearch.search.latency import measured_latency
    from archsearch.space.sampling import sample_archs

    ensure_store(load_recipe("recipe.yaml"), progress=False)  # teachers and store once, before the race
    lock_dir, stop = workdir / "runs" / "quiet", workdir / "stop"
    logs = [workdir / f"steps{k}.log" for k in range(2)]
    workers = [subprocess.Popen([sys.executable, str(Path(__file__).parent / "quiet_worker.py"), str(lock_dir),
                                 str(log), str(stop), "space.yaml", "recipe.yaml"], env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for log in logs]
    window: list[float] = []

    class TimedLock(QuietLock):
        @contextlib.contextmanager
        def measuring(self):
            with super().measuring():
                window.append(time.monotonic())
                yield
                window.append(time.monotonic())

    try:
        assert _wait_for(lambda: all(len(_steps(log)) >= 3 for log in logs), 240), "the workers never trained"
        spec = sample_archs("space.yaml", 1, seed=0)[0]
        result, cached = measured_latency(spec, LatencySettings(threads=1, anchor=None), TimedLock(lock_dir),
                                          workdir / "runs" / "latency")
        assert not cached and result["total_ms"] > 0
        assert _wait_for(lambda: all(any(start > window[1] for start, _ in _steps(log)) for log in logs), 120), \
            "the workers did not train again after the measurement"
    finally:
        stop.touch()
        for worker in workers:
            try:
                worker.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert all(worker.returncode == 0 for worker in workers), [w.stderr.read()[-2000:] for w in workers]
    begin, end = window
    for log in logs:
        steps = _steps(log)
        assert all(e is not None and (e <= begin or s >= end) for s, e in steps if s < end), steps
        assert any(e <= begin for s, e in steps) and any(s >= end for s, _ in steps)


# --- one trial ----------------------------------------------------------------------------------

def test_a_trial_over_a_constraint_is_measured_recorded_and_not_trained(workdir):
    run = prepare(_options(max_params_m=0.001, trials=1))
    runner = TrialRunner(run.config, run.directory, wandb="disabled")
    run.study.optimize(runner, n_trials=1)
    trial = run.study.trials[0]
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["trained"] is False
    assert trial.values[0] == 0.0 and trial.values[1] == pytest.approx(trial.user_attrs["latency_ms"])
    assert trial.user_attrs["constraints"][0] > 0 and "--max-params 0.001" in trial.user_attrs["infeasible"]
    files = workdir / "runs" / "space-test-tiny" / "trials" / "0"
    assert json.loads((files / "metrics.json").read_text())["status"] == "infeasible"
    latency = json.loads((files / "latency.json").read_text())
    assert latency["image_ms"] > 0 and latency["method"] == "direct" and latency["taken"] == "measured in this trial"
    assert not (workdir / "runs" / "teachers").exists()  # nothing was trained, not even the teachers


# --- the CLI as a user runs it --------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_end_to_end_leaves_its_files_and_a_rerun_resumes(workdir):
    first = _sweep("--trials", "3", "--workers", "2", anchor="mobileclip_s0")  # the default drift correction
    assert "Pareto front of space-test-tiny" in first.stdout
    progress = [line for line in first.stdout.splitlines() if "trials done" in line]
    assert progress[-1].startswith("3/3 trials done") and "workers 0" in progress[-1]  # a line per change, in a log
    assert len(progress) >= 2 and progress[0] != progress[-1]
    directory = workdir / "runs" / "space-test-tiny"
    meta = json.loads((directory / "study.json").read_text())
    assert meta["study"] == "space-test-tiny" and meta["local_db"] == "study.db" and meta["trials"] == 3
    assert {"device", "versions", "latency", "seed", "sampler"} <= set(meta)
    study = load_study(read_study_file(directory)["storage"], "space-test-tiny")
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 3 and all(t.state != TrialState.RUNNING for t in study.trials)
    for t in finished:
        files = directory / "trials" / str(t.number)
        if t.state == TrialState.COMPLETE:
            assert {"arch.yaml", "metrics.json", "latency.json", "log.txt"} <= {p.name for p in files.iterdir()}
            assert json.loads((files / "metrics.json").read_text())["status"] == "ok"
            latency = json.loads((files / "latency.json").read_text())
            assert latency["method"] == "drift_corrected" and latency["correction"]["anchor"] == "mobileclip_s0"
            assert latency["taken"] in ("measured in this trial",
                                        "from this device's latency cache: measured by an earlier trial")
            assert latency["total_ms"] == pytest.approx(latency["correction"]["anchor_quiet_ms"]["image_ms"]
                                                        * latency["correction"]["image"]["ratio"] + latency["text_ms"])
            assert t.user_attrs["latency_correction"] == {**latency["correction"],
                                                          "device": latency["fingerprint"]["id"]}
    # what the plots show: every trial on the one scale settled from all the study's windows
    settled = [t for t in settled_trials(study.trials) if t.state == TrialState.COMPLETE]
    scales = {json.dumps(t.user_attrs["latency_scale"], sort_keys=True) for t in settled}
    assert len(scales) == 1 and json.loads(scales.pop())["windows"] == len(settled)
    assert all(t.user_attrs["latency_ms"] <= t.user_attrs["latency_ms_recorded"] * (1 + 1e-12) for t in settled)
    logs = {t.number: (directory / "trials" / str(t.number) / "log.txt").read_text() for t in finished}

    second = _sweep("--trials", str(len(finished) + 1), "--workers", "1", anchor="mobileclip_s0")
    assert "resuming study space-test-tiny" in second.stdout
    study = load_study(read_study_file(directory)["storage"], "space-test-tiny")
    assert len([t for t in study.trials if t.state.is_finished()]) == len(finished) + 1
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)  # no draw repeated
    for number, log in logs.items():  # completed trials were not run again
        assert (directory / "trials" / str(number) / "log.txt").read_text() == log

    changed = _sweep("--trials", "5", "--sampler", "random", check=False, anchor="mobileclip_s0")
    assert changed.returncode == 2 and "exists with different sampler" in changed.stderr

    # Another study on the same machine reads the proxies the first one trained.
    _sweep("--study", "again", "--trials", "1", "--workers", "1", anchor="mobileclip_s0")
    trained = {tuple(sorted(t.params.items())): t for t in reversed(study.trials) if t.state == TrialState.COMPLETE}
    again = load_study(read_study_file(workdir / "runs" / "again")["storage"], "again").trials[0]
    source = trained[tuple(sorted(again.params.items()))]  # worker 0's seed draws the same first architecture
    assert again.user_attrs["proxy_from"] == f"space-test-tiny/{source.number}"
    assert again.values == source.values
    log = (workdir / "runs" / "again" / "trials" / "0" / "log.txt").read_text()
    assert f"from the proxy cache: trained by study space-test-tiny, trial {source.number}" in log
    assert not (workdir / "runs" / "again" / "trials" / "0" / "logs").exists()  # nothing trained


@pytest.mark.slow
def test_a_sweep_past_ehvis_start_up_builds_the_latency_table_and_screens_its_trials(workdir):
    done = _sweep("--trials", str(EHVI_STARTUP + 2), "--workers", "2")
    assert "building this device's latency table for --sampler ehvi" in done.stderr
    assert list((workdir / "runs" / "latency_tables").glob("*-b1.json"))
    directory = workdir / "runs" / "space-test-tiny"
    study = load_study(read_study_file(directory)["storage"], "space-test-tiny")
    screened = [t for t in study.trials if "screening" in t.user_attrs]
    assert len(screened) >= 1 and all(t.number >= EHVI_STARTUP for t in screened)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)  # no architecture twice
    for t in screened:
        log = (directory / "trials" / str(t.number) / "log.txt").read_text()
        assert f"chosen by ehvi from {t.user_attrs['screening']['pool']} candidates" in log


@pytest.mark.slow
def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(workdir):
    recipe = (workdir / "recipe.yaml").read_text().replace("warmup_steps: 1", "warmup_steps: 1, lr: 1.0e+30")
    (workdir / "recipe.yaml").write_text(recipe)
    done = _sweep("--trials", "2", "--workers", "1")
    study = load_study(read_study_file(workdir / "runs" / "space-test-tiny")["storage"], "space-test-tiny")
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 2 and "failed 2" in done.stdout  # both ran: the first failure did not stop it
    assert all(t.user_attrs["fail_reason"].startswith("non-finite loss") for t in failed)
    metrics = json.loads((workdir / "runs" / "space-test-tiny" / "trials" / "0" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "non-finite" in metrics["reason"]


def _wait_for(predicate, timeout=120.0, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_nothing_running_and_the_trial_is_retried(workdir, monkeypatch):
    recipe = (workdir / "recipe.yaml").read_text().replace("steps: 3,", "steps: 150,")
    (workdir / "recipe.yaml").write_text(recipe)
    monkeypatch.setenv("ARCHSEARCH_HEARTBEAT_S", "1")  # stale after 4 s rather than 40 s
    from archsearch.search.sweep import prepare_data
    run = prepare(_options(trials=2))
    prepare_data(run, progress=False)
    url, name = run.storage_url, run.study.study_name
    worker = subprocess.Popen([ARCHSEARCH, "worker", "--storage", url, "--study", name, "--wandb", "disabled"],
                              env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = workdir / "runs" / name / "trials" / "0" / "log.txt"
    assert _wait_for(lambda: log.is_file() and "ms (" in log.read_text()), "the trial never got to training"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    study = load_study(url, name)
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    killed_params = study.trials[0].params
    time.sleep(5)  # past the grace period of 4 missed heartbeats

    done = _sweep("--trials", "2", "--workers", "1", env=_env())  # the same command resumes
    study = load_study(url, name)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states, done.stdout + done.stderr
    assert states[0] == TrialState.FAIL and "fail_reason" not in study.trials[0].user_attrs
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == killed_params
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 2


@pytest.mark.slow
def test_a_sweep_fails_a_killed_workers_trial_at_once_queues_it_again_and_replaces_the_worker(workdir):
    recipe = (workdir / "recipe.yaml").read_text().replace("steps: 3,", "steps: 150,")
    (workdir / "recipe.yaml").write_text(recipe)
    command = [ARCHSEARCH, "sweep", "--space", "space.yaml", "--recipe", "recipe.yaml", "--latency-threads", "1",
               "--latency-anchor", "none", "--wandb", "disabled", "--trials", "3", "--workers", "2"]
    sweep = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = workdir / "runs" / "space-test-tiny" / "trials" / "0" / "log.txt"
    assert _wait_for(lambda: log.is_file() and "ms (" in log.read_text(), timeout=300), "trial 0 never trained"
    url = read_study_file(workdir / "runs" / "space-test-tiny")["storage"]
    victim = int(load_study(url, "space-test-tiny").trials[0].user_attrs["worker"].rpartition(":")[2])
    os.kill(victim, signal.SIGKILL)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:] + err[-3000:]
    assert f"(pid {victim}) was killed by SIGKILL in trial 0; failed and queued again; started a replacement " \
           "(1 of at most 3)" in out
    trials = load_study(url, "space-test-tiny").trials
    killed = trials[0]
    assert killed.state == TrialState.FAIL and killed.user_attrs["fail_reason"].startswith("worker died: worker ")
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == killed.params
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3  # the budget, on two workers again
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert len({t.user_attrs["worker"] for t in trials}) == 3  # the survivor, the victim and its replacement


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_cleanly_and_the_rerun_runs_the_cut_trial_again(workdir):
    recipe = (workdir / "recipe.yaml").read_text().replace("steps: 3,", "steps: 150,")
    (workdir / "recipe.yaml").write_text(recipe)
    command = [ARCHSEARCH, "sweep", "--space", "space.yaml", "--recipe", "recipe.yaml", "--latency-threads", "1",
               "--latency-anchor", "none", "--wandb", "disabled", "--trials", "1", "--workers", "1"]
    # Ctrl-C as from a terminal, even when pytest itself runs as a background job (which ignores SIGINT)
    sweep = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = workdir / "runs" / "space-test-tiny" / "trials" / "0" / "log.txt"
    assert _wait_for(lambda: log.is_file() and "ms (" in log.read_text()), "the trial never got to training"
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130 and "the same command resumes study space-test-tiny" in err
    url = read_study_file(workdir / "runs" / "space-test-tiny")["storage"]
    cut = load_study(url, "space-test-tiny").trials[0]
    assert cut.state == TrialState.FAIL and cut.user_attrs["fail_reason"] == "interrupted"

    again = _sweep("--trials", "1", "--workers", "1")
    assert "queued again the interrupted trials 0" in again.stdout
    trials = load_study(url, "space-test-tiny").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].user_attrs["retry_of"] == 0 and trials[1].params == cut.params


@pytest.mark.slow
def test_two_workers_on_postgresql_run_every_trial_exactly_once(workdir, postgres_url):
    name = f"pg-{os.getpid()}-{time.monotonic_ns()}"
    run = prepare(_options(trials=6, storage=postgres_url, study=name))
    from archsearch.search.sweep import prepare_data
    prepare_data(run, progress=False)
    workers = [subprocess.Popen([ARCHSEARCH, "worker", "--storage", postgres_url, "--study", name,
                                 "--index", str(i), "--wandb", "disabled"], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    study = load_study(postgres_url, name)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    assert 6 <= len(study.trials) <= 7  # at most one trial past the budget: both may start the last one
    ran = sorted(int(o.split("ran ")[1].split()[0]) for o in outputs)
    assert sum(ran) == len(study.trials) and ran[0] >= 1  # both workers worked, no trial twice
    for t in study.trials:
        log = (workdir / "runs" / name / "trials" / str(t.number) / "log.txt").read_text()
        assert log.count("start (") == 1
    hosts = {t.user_attrs["worker"] for t in study.trials if "worker" in t.user_attrs}
    assert len(hosts) == 2


@pytest.mark.slow
def test_a_sweep_with_runs_elsewhere_leaves_nothing_in_the_working_directory(workdir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("workspace")
    env = {k: v for k, v in _env().items() if k != "ARCHSEARCH_RUNS"}
    done = _sweep("--trials", "1", "--workers", "1", "--sampler", "random", "--runs", str(elsewhere), env=env)
    assert sorted(p.name for p in workdir.iterdir()) == ["recipe.yaml", "space.yaml"], done.stdout
    made = {p.name for p in elsewhere.iterdir()}
    assert {"space-test-tiny", "teachers", "stores", "cache"} <= made, made
    assert (elsewhere / "space-test-tiny" / "study.db").is_file()
