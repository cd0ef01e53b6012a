"""`Choices`: the values one ArchSpec field may take in a search space.

A space file writes each field as a fixed scalar (`mlp_ratio: 3.0`), a list of categorical
choices (`width: [64, 80]`) or an integer range (`depth: {min: 2, max: 12, step: 2}`). All three
parse into the same value object, so the sampler, `params_of` and the counter treat every field
alike; only fields with more than one value become Optuna parameters.

A stage width may also be relative to the stage's input width (`width: {times: [2, 3]}`, or
`same`), see `Times`, and the text heads relative to the text width (`heads: {head_dim: 64}`),
see `HeadDim`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, Callable, get_args

from pydantic import PlainValidator


@dataclass(frozen=True)
class Choices:
    values: tuple
    step: int | None = None  # set for {min, max, step} ranges, which Optuna samples with suggest_int

    @classmethod
    def fixed(cls, value: Any) -> "Choices":
        return cls((value,))

    @property
    def is_param(self) -> bool:
        return len(self.values) > 1

    def suggest(self, trial, name: str) -> Any:
        """The value for `name` from any Optuna trial (also FixedTrial); fixed fields ask nothing."""
        if not self.is_param:
            return self.values[0]
        if self.step:
            return trial.suggest_int(name, self.values[0], self.values[-1], step=self.step)
        return trial.suggest_categorical(name, self.values)

    def param_of(self, value: Any) -> Any:
        """The Optuna parameter for which `suggest` returns `value`: the value itself."""
        return value

    def describe(self) -> str:
        if self.step and self.is_param:
            return f"{self.values[0]}..{self.values[-1]} step {self.step}"
        return ", ".join(show(v) for v in self.values)


def show(value: Any) -> str:
    """A value as the space file spells it (YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# --- element checks: each returns the value in its canonical type or raises a one-line ValueError ---

def positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{show(value)} is not a positive integer")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_float(value: Any) -> float:
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{show(value)} is not a positive number")
    return float(value)


def non_negative_float(value: Any) -> float:
    if not _is_number(value) or value < 0:
        raise ValueError(f"{show(value)} is not a number >= 0")
    return float(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{show(value)} is not a boolean; allowed: true, false")
    return value


def one_of(literal: Any) -> Callable[[Any], Any]:
    allowed = get_args(literal)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"unknown value {show(value)}; allowed: {', '.join(show(a) for a in allowed)}")
        return value
    return check


# --- parsing a field's YAML value ---------------------------------------------------------------

def _parse_range(raw: dict, element: Callable[[Any], Any]) -> Choices:
    if element is not positive_int:
        raise ValueError("a {min, max, step} range applies to integer fields only; give a value or a list")
    unknown = set(raw) - {"min", "max", "step"}
    if unknown or not {"min", "max"} <= set(raw):
        raise ValueError(f"a range has keys min, max and optional step; got {', '.join(map(str, raw))}")
    low, high, step = positive_int(raw["min"]), positive_int(raw["max"]), positive_int(raw.get("step", 1))
    if high < low or (high - low) % step:
        raise ValueError(f"range {low}..{high} step {step}: max must be min plus a multiple of step")
    return Choices(tuple(range(low, high + 1, step)), step)


def parse_choices(raw: Any, element: Callable[[Any], Any]) -> Choices:
    if isinstance(raw, dict):
        return _parse_range(raw, element)
    if not isinstance(raw, list):
        return Choices.fixed(element(raw))
    if not raw:
        raise ValueError("empty list of choices")
    values = tuple(element(v) for v in raw)
    duplicates = sorted({show(v) for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"duplicate choice {', '.join(duplicates)}")
    return Choices(values)


def choices_of(element: Callable[[Any], Any]) -> Any:
    """The pydantic field type of a space field whose values pass `element`."""
    return Annotated[Choices, PlainValidator(lambda raw: parse_choices(raw, element))]


@dataclass(frozen=True)
class Times:
    """A stage width as a multiple of the stage's input width (the stem's or the previous stage's),
    written `width: {times: [2, 3]}`. FastViT's patch embedding is a depthwise conv grouped by the
    input width, so its output width must be a multiple of it: absolute width lists per stage
    mostly combine into towers that the sampler prunes, while multipliers always satisfy it."""

    multipliers: Choices


# `width: same`: the width of the stage's input.
SAME = Times(Choices.fixed(1))


@dataclass(frozen=True)
class Multiples:
    """The widths that `Times` offers a stage fed `base` channels. Optuna samples the multiplier,
    whose distribution stays the same while the input width varies between trials."""

    multipliers: Choices
    base: int

    @property
    def values(self) -> tuple:
        return tuple(m * self.base for m in self.multipliers.values)

    @property
    def is_param(self) -> bool:
        return self.multipliers.is_param

    def suggest(self, trial, name: str) -> int:
        return self.multipliers.suggest(trial, name) * self.base

    def param_of(self, value: int) -> int:
        """The multiplier; exact, as `params_of` first checks that `value` is among `values`."""
        return value // self.base

    def describe(self) -> str:
        widths = ", ".join(map(str, self.values))
        return f"{widths} ({self.multipliers.describe()} times the input width {self.base})"


def stage_widths(width: Choices | Times, input_width: int) -> Choices | Multiples:
    """A stage's width choices once its input width is known."""
    return Multiples(width.multipliers, input_width) if isinstance(width, Times) else width


def _relative(raw: Any, key: str, what: str) -> Choices | None:
    """The positive integers under `key` of a relative value written `{key: ...}`, or None if
    `raw` is not one (then it is absolute choices)."""
    if not (isinstance(raw, dict) and key in raw):
        return None
    if len(raw) > 1:
        raise ValueError(f"{what} has the one key {key}; got {', '.join(map(str, raw))}")
    try:
        return parse_choices(raw[key], positive_int)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _parse_width(raw: Any) -> Choices | Times:
    if raw == "same":
        return SAME
    multipliers = _relative(raw, "times", "a relative width")
    return parse_choices(raw, positive_int) if multipliers is None else Times(multipliers)


# A stage width: absolute choices, multiples of its input width (`{times: ...}`) or `same`.
WidthChoices = Annotated[Choices | Times, PlainValidator(_parse_width)]


@dataclass(frozen=True)
class HeadDim:
    """The text heads given by their width, written `heads: {head_dim: [32, 64]}`: heads = text
    width / head_dim. Absolute head counts combine with every text width, and those that do not
    divide it are pruned; a head width keeps the heads whole for every width it divides."""

    head_dims: Choices


@dataclass(frozen=True)
class HeadCounts:
    """The heads that `HeadDim` offers a text tower `width` wide. Optuna samples the head_dim,
    whose distribution stays the same while the width varies between trials."""

    head_dims: Choices
    width: int

    @property
    def values(self) -> tuple:
        """The whole head counts: only these make members of the space."""
        return tuple(self.width // d for d in self.head_dims.values if self.width % d == 0)

    @property
    def is_param(self) -> bool:
        return self.head_dims.is_param

    def suggest(self, trial, name: str) -> int | Fraction:
        """width / head_dim, exactly: a Fraction when head_dim does not divide the width, which
        the heads_divide_width rule prunes and ArchSpec rejects, so no trial rounds it to a
        head width outside the space."""
        heads = Fraction(self.width, self.head_dims.suggest(trial, name))
        return int(heads) if heads.denominator == 1 else heads

    def param_of(self, value: int) -> int:
        """The head_dim; exact, as `params_of` first checks that `value` is among `values`."""
        return self.width // value

    def describe(self) -> str:
        heads = ", ".join(map(str, self.values)) or "none"
        return f"{heads} (text width {self.width} / head_dim {self.head_dims.describe()})"


def text_heads(heads: Choices | HeadDim, width: int) -> Choices | HeadCounts:
    """The text heads choices once the text width is known."""
    return HeadCounts(heads.head_dims, width) if isinstance(heads, HeadDim) else heads


def _parse_heads(raw: Any) -> Choices | HeadDim:
    head_dims = _relative(raw, "head_dim", "a head width")
    return parse_choices(raw, positive_int) if head_dims is None else HeadDim(head_dims)


# The text heads: absolute choices or the width of a head (`{head_dim: ...}`).
HeadsChoices = Annotated[Choices | HeadDim, PlainValidator(_parse_heads)]
