"""`SweepConfig`: everything that defines a study, stored in the study itself.

It lives in the study's user attributes, so a worker joining from another machine
(`archsearch worker --storage URL --study NAME`) rebuilds exactly the same space, recipe,
objectives and constraints without any file of the creator's. The space travels as its file's
text, the recipe as its validated dict.
"""

from __future__ import annotations

from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from archsearch.choices import SAMPLERS, SamplerName
from archsearch.errors import SpecError, UserError
from archsearch.proxy.recipe import Recipe
from archsearch.search.record import CORE_OBJECTIVES, OBJECTIVES
from archsearch.space.schema import SpaceFile
from archsearch.space.space import SearchSpace

DEFAULT_SAMPLER = "ehvi"  # see archsearch.search.samplers for why


class LatencySettings(BaseModel):
    """How every trial's latency is measured (fixed per study, so figures compare).

    One thread by default: a multi-threaded measurement waits at every barrier for its slowest
    thread, so any other load on the machine (another user, a worker's data loading) inflates it
    several-fold, while one thread's figure moves only by the time it is preempted.

    `anchor`: the preset every measurement is timed against in the same window, so the host's
    slow phases cancel (`archsearch.latency.drift`); None measures each model on its own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: str = "torch-cpu"
    batch: PositiveInt = 1
    threads: PositiveInt = 2
    anchor: Optional[str] = "mobileclip_s0"

    @property
    def method(self) -> str:
        return f"anchor-{self.anchor}" if self.anchor else "direct"


class SweepConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    space_name: str
    space_text: str = Field(repr=False)
    recipe: dict = Field(repr=False)
    objectives: tuple[str, ...] = CORE_OBJECTIVES
    max_latency_ms: Optional[PositiveFloat] = None
    max_params_m: Optional[PositiveFloat] = None
    sampler: SamplerName = DEFAULT_SAMPLER
    seed: int = 0
    latency: LatencySettings = LatencySettings()

    def check(self) -> "SweepConfig":
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise UserError(f"--objective: {', '.join(unknown)} unknown; allowed: {', '.join(OBJECTIVES)}")
        missing = [o for o in CORE_OBJECTIVES if o not in self.objectives]
        if missing or len(set(self.objectives)) != len(self.objectives):
            raise UserError(f"--objective: the objectives must include {', '.join(CORE_OBJECTIVES)} once each; "
                            f"got {', '.join(self.objectives)}")
        if self.sampler == "ehvi" and tuple(self.objectives) != CORE_OBJECTIVES:
            extra = [o for o in self.objectives if o not in CORE_OBJECTIVES]
            raise UserError(f"--objective {' '.join(extra)}: --sampler ehvi optimises exactly "
                            f"{' and '.join(CORE_OBJECTIVES)}; allowed samplers with more objectives: "
                            f"{', '.join(s for s in SAMPLERS if s != 'ehvi')}")
        return self

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[o].direction for o in self.objectives]

    def space(self) -> SearchSpace:
        try:
            file = SpaceFile.model_validate(yaml.safe_load(self.space_text))
        except ValidationError as exc:
            raise SpecError(f"the study's space {self.space_name!r} no longer validates: {exc}") from None
        return SearchSpace(self.space_name, f"<study space {self.space_name}>", file)

    def proxy_recipe(self) -> Recipe:
        return Recipe.model_validate(self.recipe)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict) -> "SweepConfig":
        return cls.model_validate(data)

    def differences(self, other: "SweepConfig") -> list[str]:
        """Fields in which `other` differs, for refusing to resume a study under new settings."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if mine[k] != theirs.get(k)]
