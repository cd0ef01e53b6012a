"""Open a study for analysis, from its run directory or from a storage URL, read-only.

Analysis must never create what it reads: `open_storage` makes an SQLite file (and its folder)
for a sweep, so a missing SQLite or journal file is refused here before the storage is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import optuna
from optuna.trial import TrialState

from archsearch.errors import UserError
from archsearch.search.storage import load_study, read_study_file, redact, run_dir

PLOTS_DIR = "pareto"


@dataclass(frozen=True)
class StudySource:
    study: optuna.Study
    storage: str             # without its password, for messages and reports
    run_dir: Optional[Path]  # None when opened by --storage and the run directory is not here

    @property
    def name(self) -> str:
        return self.study.study_name

    def out_dir(self, runs: str | Path | None = None) -> Path:
        """Where plots go by default: ``<run dir>/pareto/``, or ``runs/<study>/pareto/``."""
        return (self.run_dir or run_dir(self.name, runs)) / PLOTS_DIR


def _check_file_backed(url: str, option: str) -> None:
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).is_file():
            raise UserError(f"{option}: {url} names no file ({url.removeprefix(prefix)} does not exist); "
                            "give the storage of an existing study")


def open_run_dir(directory: str | Path) -> StudySource:
    """The study of a run directory (``runs/<study>/``, as `archsearch sweep` leaves it)."""
    info = read_study_file(directory)
    url = info["storage"]
    if ":***@" in url:
        raise UserError(f"{Path(directory) / 'study.json'}: its storage {url} is stored without the password; "
                        f"use --storage URL --study {info['study']} instead of the run directory")
    _check_file_backed(url, f"{Path(directory) / 'study.json'}: storage")
    return StudySource(load_study(url, info["study"]), redact(url), Path(directory))


def open_storage_study(url: str, study: str, runs: str | Path | None = None) -> StudySource:
    """A study by storage URL and name; its run directory is used when this machine has it."""
    _check_file_backed(url, "--storage")
    local = run_dir(study, runs)
    return StudySource(load_study(url, study), redact(url), local if local.is_dir() else None)


def open_source(directory: Optional[str | Path] = None, storage: Optional[str] = None,
                study: Optional[str] = None, runs: str | Path | None = None) -> StudySource:
    """RUN_DIR, or --storage URL with --study NAME: exactly one of the two ways."""
    if directory is not None and (storage is not None or study is not None):
        raise UserError("give either RUN_DIR or --storage URL --study NAME, not both")
    if directory is not None:
        return open_run_dir(directory)
    if storage is None or study is None:
        raise UserError("name the study: RUN_DIR (runs/<study>/), or --storage URL together with --study NAME")
    return open_storage_study(storage, study, runs)


def require_completed(source: StudySource) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, refusing a study in which no trial has completed yet."""
    trials = source.study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        states = ", ".join(f"{n} {s.name.lower()}" for s, n in _count_states(trials).items()) or "no trials"
        raise UserError(f"study {source.name!r} in {source.storage} has no completed trial yet ({states}); "
                        "run `archsearch sweep` (or wait for its workers) first")
    return trials


def _count_states(trials: list[optuna.trial.FrozenTrial]) -> dict[TrialState, int]:
    counts: dict[TrialState, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return counts
