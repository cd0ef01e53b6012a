"""Where a study lives: its run directory, its Optuna storage, and `study.json`.

A run directory is ``runs/<study>/``. With no ``--storage``, the study is an SQLite database
inside it (``study.db``), which also serves several local worker processes. Any SQLAlchemy URL
(``postgresql://…``) serves workers on many machines; ``journal:PATH`` selects Optuna's journal
file backend. Heartbeats (and so the recovery of trials whose worker was killed) need an RDB
storage: Optuna's journal storage does not implement them. Stale trials are queued again by
`RetryHeartbeatStaleTrialCallback` (Optuna 5's name for `RetryFailedTrialCallback`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from archsearch import workspace
from archsearch.errors import UserError
from archsearch.files import write_json_atomic

STUDY_FILE = "study.json"

MAX_RETRIES = 2


def heartbeat_interval_s() -> int:
    """Seconds between a running trial's heartbeats; a trial silent for 4 intervals is stale.
    ``ARCHSEARCH_HEARTBEAT_S`` overrides the default 10 (tests use 1 to recover in seconds)."""
    return int(os.environ.get("ARCHSEARCH_HEARTBEAT_S", "10"))


def run_dir(study: str, runs: str | Path | None = None) -> Path:
    """`<runs>/<study>/`; `runs` defaults to the workspace root (`archsearch.workspace`)."""
    return (workspace.root() if runs is None else Path(runs)) / study


def default_storage_url(study: str, runs: str | Path | None = None) -> str:
    return f"sqlite:///{(run_dir(study, runs) / 'study.db').resolve()}"


def supports_heartbeat(url: str) -> bool:
    return not url.startswith("journal:")


def open_storage(url: str) -> BaseStorage:
    """An Optuna storage for `url`, with heartbeats and retry of stale trials where supported."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise UserError(f"--storage: {url!r} is not a storage URL; allowed: sqlite:///PATH, "
                        "postgresql://USER@HOST:PORT/DB (any SQLAlchemy URL) or journal:PATH")
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval_s(),
                          grace_period=4 * heartbeat_interval_s(),
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))
    except Exception as exc:  # unreachable server, bad credentials, missing driver
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--storage: cannot open {redact(url)}: {reason}") from None


def redact(url: str) -> str:
    """`url` without its password, for messages and files."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else url
    return url


def load_study(url: str, study: str) -> optuna.Study:
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise UserError(f"--study: no study {study!r} in {redact(url)}; allowed: {', '.join(names) or '(none)'}") \
            from None


def write_study_file(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STUDY_FILE
    return write_json_atomic(path, data)  # a unique temporary name: two workers may write it at once


def read_study_file(directory: str | Path) -> dict:
    """The `study.json` of a run directory: at least ``study`` and ``storage`` (the latter
    resolved against the directory when the study is the run directory's own ``study.db``)."""
    path = Path(directory) / STUDY_FILE
    if not Path(directory).is_dir():
        raise UserError(f"{directory}: not a directory; a run directory is runs/<study>/ as `archsearch sweep` "
                        "leaves it")
    if not path.is_file():
        raise UserError(f"{directory}: not a study run directory (no {STUDY_FILE}); a run directory is "
                        "runs/<study>/ as `archsearch sweep` leaves it")
    try:
        data = json.loads(path.read_text())
        data["study"], data["storage"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a valid {STUDY_FILE} ({type(exc).__name__}: {exc}); "
                        "it needs the fields study and storage") from None
    if data.get("local_db"):  # the default SQLite file travels with its run directory
        data["storage"] = f"sqlite:///{(Path(directory) / data['local_db']).resolve()}"
    return data
