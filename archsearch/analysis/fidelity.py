"""The proxy-fidelity protocol's results, read and checked (`python -m benchmarks.proxy_scores fidelity`).

The protocol scores 20 architectures of spaces/hybrid.yaml with the short proxy at student seeds 0
and 1 and with a >= 10x reference at seeds 0 and 1, and records Kendall's tau between the rankings.
Its JSON holds the figures at the top level (``tau_short_seeds``, ``tau_short_reference`` and its
``_ci``, ``tau_params``, ...) and one row per architecture in ``table``; a reference not run yet
is ``null``. pydantic checks the file, so a malformed one is named with its field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from archsearch.errors import UserError

DEFAULT_PATH = Path("benchmarks/results/proxy_fidelity.json")
PRODUCER = "python -m benchmarks.proxy_scores fidelity"


class FidelityRow(BaseModel):
    """One architecture: its short scores and reference scores per seed (None: not run yet)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    arch: str
    kind: str  # "preset" or the draw's layout
    layout: str
    params_m: float
    gmacs: float
    short: tuple[float, float]
    reference: tuple[Optional[float], Optional[float]]
    reference_mean: Optional[float]
    multiple_of_chance: float


class Fidelity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    path: Path = DEFAULT_PATH
    meta: dict
    architectures: list[str]
    table: list[FidelityRow]
    tau_short_seeds: float
    tau_reference_seeds: Optional[float]
    tau_short_reference: Optional[float]
    tau_short_reference_ci: Optional[tuple[float, float]]
    tau_params: Optional[float]
    tau_gmacs: Optional[float]
    reference_complete: int
    min_multiple_of_chance: float
    preset_order_swaps_total: dict[str, float]
    median_trial_seconds: float
    teachers_top1: list[float]
    recipe: dict
    reference_recipe: dict
    targets: dict[str, dict]

    @model_validator(mode="after")
    def _one_row_per_architecture(self) -> "Fidelity":
        if [row.arch for row in self.table] != self.architectures:
            raise ValueError("table must hold one row per architecture, in the order of `architectures`")
        return self

    @property
    def short_recipe(self) -> str:
        return str(self.recipe.get("name", "short recipe"))

    @property
    def reference_name(self) -> str:
        return str(self.reference_recipe.get("name", "reference recipe"))

    @property
    def date(self) -> str:
        return str(self.meta.get("date", ""))

    @property
    def command(self) -> str:
        return str(self.meta.get("command", ""))

    @property
    def with_reference(self) -> list[FidelityRow]:
        """The architectures whose reference ran at both seeds: what tau(short, reference) rests on."""
        return [row for row in self.table if row.reference_mean is not None]


def load_fidelity(path: str | Path = DEFAULT_PATH) -> Fidelity:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no proxy-fidelity results there; produce them with `{PRODUCER}` "
                        "(or point ARCHSEARCH_FIDELITY_JSON at the file)")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise UserError(f"{path}: not a result of `{PRODUCER}`: a JSON object is expected")
        return Fidelity.model_validate({**data, "path": path})
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not JSON ({exc}); produce it with `{PRODUCER}`") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()[:5])
        raise UserError(f"{path}: not a result of `{PRODUCER}`: {problems}") from None
