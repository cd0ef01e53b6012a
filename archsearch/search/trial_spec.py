"""A finished sweep trial as the currency of the next stage: its ArchSpec and where it came from."""

from __future__ import annotations

from pathlib import Path

from optuna.trial import TrialState

from archsearch.errors import UserError
from archsearch.search.latency_scale import settled_trials
from archsearch.search.storage import load_study, read_study_file, redact
from archsearch.spec.arch import ArchSpec


def trial_spec(trial_number: int, run_dir: str | Path | None = None, storage: str | None = None,
               study: str | None = None) -> tuple[ArchSpec, dict]:
    """The spec of a completed trial of a run directory, or of `study` in `storage`, with its
    provenance (study, trial, preset, scores). Failed, pruned, running and unknown trials are
    refused with what is allowed."""
    if run_dir is not None:
        meta = read_study_file(run_dir)
        storage, study = storage or meta["storage"], study or meta["study"]
    if storage is None or study is None:
        raise UserError("--trial needs a run directory (RUN_DIR --trial N) or --storage URL --study NAME")
    loaded = load_study(storage, study)
    trials = settled_trials(loaded.get_trials(deepcopy=False))  # the latency the plots show
    by_number = {t.number: t for t in trials}
    completed = [t.number for t in trials if t.state == TrialState.COMPLETE]
    trial = by_number.get(trial_number)
    if trial is None:
        raise UserError(f"--trial: study {study!r} has no trial {trial_number}; allowed: completed trials "
                        f"{_ranges(completed) or '(none)'}")
    if trial.state != TrialState.COMPLETE or "arch" not in trial.user_attrs:
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("pruned_reason") or ""
        raise UserError(f"--trial: trial {trial_number} of study {study!r} is {trial.state.name.lower()}"
                        f"{': ' + reason if reason else ''}; allowed: completed trials {_ranges(completed) or '(none)'}")
    attrs = trial.user_attrs
    provenance = {"study": study, "storage": redact(storage), "trial": trial_number}
    provenance |= {k: attrs[k] for k in ("preset", "zeroshot_top1", "latency_ms", "infeasible") if k in attrs}
    return ArchSpec.from_dict(attrs["arch"]), provenance


def _ranges(numbers: list[int]) -> str:
    """`[0, 1, 2, 5]` -> '0-2, 5'."""
    parts, start = [], None
    for i, n in enumerate(sorted(numbers)):
        if start is None:
            start = n
        if i + 1 == len(numbers) or sorted(numbers)[i + 1] != n + 1:
            parts.append(f"{start}-{n}" if n > start else str(start))
            start = None
    return ", ".join(parts)
