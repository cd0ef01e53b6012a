"""Reading and writing ArchSpecs (YAML or JSON) with errors that name file, field and allowed values."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from archsearch.errors import SpecError
from archsearch.spec.arch import ArchSpec


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Parse a YAML/JSON file into a mapping, or raise SpecError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        first = str(exc).strip().splitlines()
        raise SpecError(f"{path}: malformed {'JSON' if path.suffix == '.json' else 'YAML'}: "
                        f"{' '.join(line.strip() for line in first)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names allowed at `loc` (for 'unknown field' errors)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:  # a key of a dict-valued field (e.g. a layout name): stay on this model
            continue
        ann = field.annotation
        for arg in (ann, *typing.get_args(ann)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
                break
    return list(model.model_fields)


def format_validation_error(exc: ValidationError, source: str, model: type[BaseModel]) -> str:
    """One line: `source: field.path: message` for the first error (+ how many more)."""
    errors = exc.errors()
    err = errors[0]
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field; allowed: {', '.join(_fields_at(model, loc[:-1]))}"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {where + ': ' if where else ''}{msg}{more}"


def spec_from_mapping(data: dict, source: str = "<spec>") -> ArchSpec:
    try:
        return ArchSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source, ArchSpec)) from None


def load_spec(path: str | Path) -> ArchSpec:
    return spec_from_mapping(read_mapping(path), str(path))


def dump_spec(spec: ArchSpec, fmt: str = "yaml") -> str:
    data = spec.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def save_spec(spec: ArchSpec, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(dump_spec(spec, "json" if path.suffix == ".json" else "yaml"))
    return path


def resolve_arch(ref: str) -> tuple[ArchSpec, str | None]:
    """An ArchSpec from a preset name (or paper spelling) or a YAML/JSON file, with its preset name."""
    from archsearch.spec.presets import get_preset, preset_of, resolve_preset_name

    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        spec = load_spec(path)
        return spec, preset_of(spec)
    name = resolve_preset_name(ref)
    return get_preset(name), name
