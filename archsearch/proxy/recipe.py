"""Proxy recipes: everything a short training needs, in one validated file under `proxies/`.

A recipe fixes the data (a source, and the reinforced store built from it with its teachers), the
scale-down rule from a full-size ArchSpec to the trained model, the optimiser, the MobileCLIP
loss mix and the evaluation. Unknown keys are errors, so a typo never silently trains defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import Field, PositiveInt, ValidationError

from archsearch.errors import SpecError
from archsearch.training.config import LossConfig, StrictModel, TrainConfig
from archsearch.spec.io import format_validation_error, read_mapping

PROXIES_DIR = Path(__file__).resolve().parents[2] / "proxies"




class ScaleDown(StrictModel):
    """The deterministic map from a full-size spec to its proxy model (see `proxy.scale`)."""

    resolution: Optional[PositiveInt] = Field(64, description="null keeps the spec's own")
    width_mult: float = Field(0.25, gt=0, le=1)
    depth_mult: float = Field(0.5, gt=0, le=1)
    text_width_mult: float = Field(0.25, gt=0, le=1)
    text_depth_mult: float = Field(0.5, gt=0, le=1)
    context_length: Optional[PositiveInt] = Field(32, description="null keeps the spec's own")
    width_multiple: PositiveInt = Field(4, description="scaled widths round up to a multiple of this")
    layer_scale_init: Optional[float] = Field(
        None, gt=0, le=1, description="the proxy's starting gain on every residual branch (LayerScale, added to "
                                      "transformer blocks without one); null keeps the papers' blocks "
                                      "(see archsearch.models.init)")


class TeacherTraining(StrictModel):
    """Teachers archsearch trains itself when the recipe names no external ones."""

    arch: str = "vitamin_s"
    count: PositiveInt = Field(2, description="K teachers, different seeds")
    scale: ScaleDown = ScaleDown(width_mult=0.5, depth_mult=0.5, text_width_mult=0.5)
    steps: PositiveInt = 1500
    batch_size: PositiveInt = 128
    lr: float = Field(2e-3, gt=0)
    eval_every: int = Field(0, ge=0, description="steps between zero-shot evaluations kept in curve.jsonl; 0: none")
    dir: str = "runs/teachers"


class DataConfig(StrictModel):
    source: str = Field("embedded:train", description="a source ref, see archsearch.data.readers.open_source")
    store: Optional[str] = Field("runs/stores/embedded", description="reinforced store; built here if absent")
    teachers: list[str] = Field(default_factory=list, description="teacher refs; empty = train them")
    teacher_training: TeacherTraining = TeacherTraining()
    augmentations: PositiveInt = 4
    synthetic_captions: PositiveInt = 4
    captioner: str = "procedural"
    num_workers: int = Field(0, ge=0)


class EvalConfig(StrictModel):
    classify: PositiveInt = 1280
    retrieval: PositiveInt = 500
    seed: int = 0
    batch_size: PositiveInt = 256


class Recipe(StrictModel):
    name: str
    description: str = ""
    seed: int = 0
    scale: ScaleDown = ScaleDown()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    loss: LossConfig = LossConfig()
    eval: EvalConfig = EvalConfig()

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def list_recipes() -> list[str]:
    return sorted(p.stem for p in PROXIES_DIR.glob("*.yaml"))


def load_recipe(ref: str | Path = "cpu-tiny") -> Recipe:
    """A recipe by name (`cpu-tiny`, from `proxies/`) or by path."""
    path = Path(ref)
    if not path.suffix and not path.exists():
        path = PROXIES_DIR / f"{ref}.yaml"
        if not path.is_file():
            raise SpecError(f"unknown recipe {str(ref)!r}; allowed: {', '.join(list_recipes())} or a path to a .yaml file")
    data = read_mapping(path)
    data.setdefault("name", path.stem)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, str(path), Recipe)) from None
