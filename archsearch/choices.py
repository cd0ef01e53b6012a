"""The closed sets of names that options take, kept in one light module: the CLI offers them as
choices (typer shows them in --help and refuses anything else) and the library checks them, and
neither has to import torch to know them."""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args

WandbMode = Literal["online", "offline", "disabled"]
SamplerName = Literal["ehvi", "tpe", "nsga2", "gp", "random"]
CachePolicy = Literal["auto", "warm", "cold"]
ExportFormat = Literal["all", "openclip", "lightning", "coreml"]

WANDB_MODES: tuple[str, ...] = get_args(WandbMode)
SAMPLERS: tuple[str, ...] = get_args(SamplerName)
CACHE_POLICIES: tuple[str, ...] = get_args(CachePolicy)
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum whose members are `values`, for a typer option that takes one of them."""
    return Enum(name, {value: value for value in values}, type=str)
