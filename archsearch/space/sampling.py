"""Architectures drawn at random from a space: the sets a latency table is built and validated on.

The latency room times whatever specs it is given; which specs those are is a question about
the space, answered here (distinct draws of Optuna's RandomSampler at a seed, plus the presets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import optuna

from archsearch.errors import UserError
from archsearch.space.registry import load_space
from archsearch.space.space import PrunedArchitecture, SearchSpace
from archsearch.spec.arch import ArchSpec, layout_summary
from archsearch.spec.presets import get_preset


def sample_archs(space: SearchSpace | str | Path, n: int, seed: int, exclude: Iterable[str] = (),
                 max_tries: int | None = None) -> list[ArchSpec]:
    """`n` distinct architectures sampled at random from `space` (a SearchSpace or its name/path),
    skipping pruned samples and any whose `ArchSpec.digest` is in `exclude`."""
    if n < 0:
        raise UserError(f"--archs: {n} is negative; allowed: 0, 1, 2, ...")
    space = load_space(space) if isinstance(space, (str, Path)) else space
    seen, specs = set(exclude), []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(max_tries or 200 * max(n, 1)):
            if len(specs) >= n:
                break
            trial = study.ask()
            try:
                spec = space.sample(trial)
            except PrunedArchitecture:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            study.tell(trial, 0.0)
            if spec.digest() not in seen:
                seen.add(spec.digest())
                specs.append(spec)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if len(specs) < n:
        raise UserError(f"space {getattr(space, 'name', space)!r}: found only {len(specs)} distinct valid "
                        f"architectures of the {n} asked for")
    return specs


def table_architectures(space: SearchSpace | str | Path, n_archs: int, seed: int, include_presets: bool = True
                        ) -> tuple[list[tuple[str, ArchSpec]], dict]:
    """What a latency table is built on: the space's presets (by name) when `include_presets`, then
    `n_archs` distinct draws (named by their layout); with the provenance the table records."""
    space = load_space(space) if isinstance(space, (str, Path)) else space
    archs = [(name, get_preset(name)) for name in space.presets] if include_presets else []
    drawn = sample_archs(space, n_archs, seed, exclude={spec.digest() for _, spec in archs})
    archs += [(layout_summary(spec), spec) for spec in drawn]
    source = {"space": space.name, "space_source": str(space.source), "n_archs": n_archs, "seed": seed,
              "include_presets": include_presets}
    return archs, source
