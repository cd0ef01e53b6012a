"""`SearchSpace`: sample ArchSpecs from a space file with Optuna, and map specs back to parameters.

Sampling is define-by-run. One walk over the space (`_assemble`) decides every field in a fixed
order through a `pick` callback: `sample` picks by asking the trial, `params_of` picks by reading
the field from a given spec. Both therefore agree on parameter names and on which parameters a
choice makes appear, which is what lets `study.enqueue_trial(space.params_of(spec))` reproduce
`spec` exactly.

Parameter names (only fields with more than one choice become parameters):

- ``resolution``, ``embed_dim``
- ``image.layout``; then, under the layout's name L: ``L.stem.<field>``, ``L.s<i>.depth``,
  ``L.s<i>.downsample``, ``L.s<i>.width`` (or ``L.s<i>.width_times``, the multiplier of the input
  width, for a width given relative to it), ``L.s<i>.block`` (e.g. ``attention_geglu``),
  ``L.s<i>.<block>.<field>`` for mlp_ratio/pos/norm/head_dim, ``L.head.<field>``
- ``text.<field>`` (``text.head_dim`` rather than ``text.heads`` for heads given by their width),
  ``text.depth``, ``text.layer<i>`` for each layer i < depth

Prefixing by layout and block keeps a name's distribution the same in every trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import optuna
from pydantic import ValidationError

from archsearch.errors import SpecError, UserError
from archsearch.space.choices import Choices, HeadCounts, HeadDim, Multiples, Times, show, stage_widths, text_heads
from archsearch.space.count import count_space
from archsearch.space.schema import BLOCK_FIELDS, TEXT_FIELDS, LayoutChoices, SpaceFile, block_id
from archsearch.space.ties import TIE_RULES
from archsearch.spec.arch import ArchSpec
from archsearch.spec.io import format_validation_error, read_mapping
from archsearch.spec.presets import get_preset, resolve_preset_name

# (parameter name, its choices, the ArchSpec field it decides) -> the chosen value
Pick = Callable[[str, Choices | Multiples | HeadCounts, str], Any]


class PrunedArchitecture(optuna.TrialPruned):
    """A sampled combination the space does not build. `rule` is the tie rule it breaks, or
    'ArchSpec' when the spec validator rejects it; the search records the trial as pruned."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


class OutsideSpace(SpecError):
    """An architecture that the space cannot sample; the message names the field."""


class SearchSpace:
    def __init__(self, name: str, source: str, file: SpaceFile):
        self.name = name
        self.source = source
        self.file = file

    @classmethod
    def from_file(cls, path: str | Path) -> "SearchSpace":
        """Load and validate a space file, including that every preset it lists is a member."""
        path = Path(path)
        try:
            file = SpaceFile.model_validate(read_mapping(path))
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc, str(path), SpaceFile)) from None
        space = cls(path.stem, str(path), file)
        space._check_presets()
        return space

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(resolve_preset_name(name) for name in self.file.presets)

    def _check_presets(self) -> None:
        for i, name in enumerate(self.file.presets):
            try:
                spec = get_preset(name)
            except UserError as exc:
                raise SpecError(f"{self.source}: presets.{i}: {exc}") from None
            try:
                self.params_of(spec)
            except OutsideSpace as exc:
                raise SpecError(f"{self.source}: presets.{i}: {name} is not a member: {exc}") from None

    # --- the walk shared by sample and params_of ------------------------------------------------

    def _assemble(self, pick: Pick) -> dict:
        return {
            "resolution": pick("resolution", self.file.resolution, "resolution"),
            "embed_dim": pick("embed_dim", self.file.embed_dim, "embed_dim"),
            "image": self._assemble_image(pick),
            "text": self._assemble_text(pick),
        }

    def _assemble_image(self, pick: Pick) -> dict:
        layouts = self.file.image.layouts
        name = pick("image.layout", Choices(tuple(layouts)), "image.layout")
        layout = layouts[name]
        stem = {f: pick(f"{name}.stem.{f}", getattr(layout.stem, f), f"image.stem.{f}")
                for f in type(layout.stem).model_fields}
        stages, width = [], stem["width"]
        for i, stage in enumerate(layout.stages):
            prefix, field = f"{name}.s{i}", f"image.stages.{i}"
            width_param = f"{prefix}.width_times" if isinstance(stage.width, Times) else f"{prefix}.width"
            chosen = {
                "depth": pick(f"{prefix}.depth", stage.depth, f"{field}.depth"),
                "downsample": pick(f"{prefix}.downsample", stage.downsample, f"{field}.downsample"),
                "width": pick(width_param, stage_widths(stage.width, width), f"{field}.width"),
            }
            block_ids = Choices(tuple(block.id for block in stage.blocks))
            block = stage.block(pick(f"{prefix}.block", block_ids, f"{field}.block"))
            chosen.update(mixer=block.mixer, mlp=block.mlp)
            for f in BLOCK_FIELDS:
                chosen[f] = pick(f"{prefix}.{block.id}.{f}", getattr(block, f), f"{field}.{f}")
            stages.append(chosen)
            width = chosen["width"]
        head = {f: pick(f"{name}.head.{f}", getattr(layout.head, f), f"image.head.{f}")
                for f in type(layout.head).model_fields}
        return {"stem": stem, "stages": stages, "head": head}

    def _assemble_text(self, pick: Pick) -> dict:
        text, chosen = self.file.text, {}
        for f in TEXT_FIELDS:
            if f == "heads":  # after the width, which heads given by their width divide
                name = "text.head_dim" if isinstance(text.heads, HeadDim) else "text.heads"
                chosen[f] = pick(name, text_heads(text.heads, chosen["width"]), "text.heads")
            else:
                chosen[f] = pick(f"text.{f}", getattr(text, f), f"text.{f}")
        depth = pick("text.depth", text.depth, "text.depth")
        chosen["layers"] = [pick(f"text.layer{i}", text.mixer, f"text.layers.{i}") for i in range(depth)]
        return chosen

    def _broken_tie(self, arch: dict) -> tuple[str, str] | None:
        for rule in self.file.ties:
            broken = TIE_RULES[rule](arch)
            if broken:
                return rule, broken
        return None

    # --- public API ----------------------------------------------------------------------------

    def sample(self, trial: optuna.trial.BaseTrial) -> ArchSpec:
        """The architecture `trial` chooses; raises PrunedArchitecture for an invalid combination."""
        arch = self._assemble(lambda name, choices, _field: choices.suggest(trial, name))
        broken = self._broken_tie(arch)
        if broken:
            raise PrunedArchitecture(broken[0], f"tie rule {broken[0]}: {broken[1]}")
        try:
            return ArchSpec.model_validate(arch)
        except ValidationError as exc:
            raise PrunedArchitecture("ArchSpec", format_validation_error(exc, "ArchSpec", ArchSpec)) from None

    def params_of(self, spec: ArchSpec) -> dict[str, Any]:
        """The parameters for which `sample` returns `spec` (for `study.enqueue_trial`), or
        OutsideSpace naming the first field whose value the space does not offer."""
        values = self._field_values(spec)
        params: dict[str, Any] = {}

        def pick(name: str, choices: Choices, field: str) -> Any:
            value = values[field]
            if value not in choices.values:
                raise OutsideSpace(f"{field}: {show(value)} is outside space {self.name!r}; "
                                   f"allowed: {choices.describe()}")
            if choices.is_param:
                params[name] = choices.param_of(value)
            return value

        broken = self._broken_tie(self._assemble(pick))
        if broken:
            raise OutsideSpace(f"tie rule {broken[0]} of space {self.name!r}: {broken[1]}")
        return params

    def contains(self, spec: ArchSpec) -> bool:
        try:
            self.params_of(spec)
        except OutsideSpace:
            return False
        return True

    def size(self) -> int:
        """The number of distinct valid architectures in the space."""
        return count_space(self.file)

    def _field_values(self, spec: ArchSpec) -> dict[str, Any]:
        """Every spec field by its dotted path, plus what a spec implies rather than states: its
        layout, each stage's block and the text depth."""
        values = _flatten(spec.to_dict())
        values["image.layout"] = self.layout_of(spec)
        values["text.depth"] = len(spec.text.layers)
        for i, stage in enumerate(spec.image.stages):
            values[f"image.stages.{i}.block"] = block_id(stage.mixer, stage.mlp)
        return values

    def layout_of(self, spec: ArchSpec) -> str:
        """The name of the space layout `spec` belongs to (its stem kind and stage count)."""
        signature = (spec.image.stem.kind, len(spec.image.stages))
        for name, layout in self.file.image.layouts.items():
            if signature in layout.signatures():
                return name
        allowed = "; ".join(f"{name}: {_describe(layout)}" for name, layout in self.file.image.layouts.items())
        raise OutsideSpace(f"image: a {signature[0]} stem with {_stages(signature[1])} is outside space "
                           f"{self.name!r}; allowed: {allowed}")

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, source={self.source!r})"


def _describe(layout: LayoutChoices) -> str:
    return f"{'/'.join(layout.stem.kind.values)} stem with {_stages(len(layout.stages))}"


def _stages(count: int) -> str:
    return f"{count} stage{'s' if count != 1 else ''}"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
