"""One ``FieldSpec`` per field of the schema: what the form, the CLI and validation know about it.

Field names are unique across groups, so ``SPECS`` maps a flat name (``crop_size``) to exactly one field.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import ConfigError

from .schema import BUDGETS, GROUPS

if TYPE_CHECKING:
    from .tree import Config


@dataclass(frozen=True)
class FieldSpec:
    """What the form and the CLI need to know about one field."""

    group: str
    name: str
    type: type
    default: Any
    label: str
    help: str
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None
    advanced: bool
    unit: str
    shown_for: tuple[str, ...] | None = None  # the gan_mode values the field applies to; None: every one
    budget: str | None = None  # the training budget (BUDGETS) the field gives the run's length in; None: none

    def applies_to(self, gan_mode: str | Config) -> bool:
        """Whether this field means something under ``gan_mode`` (a mode name, or a config's)."""
        mode = gan_mode if isinstance(gan_mode, str) else gan_mode.objective.gan_mode
        return self.shown_for is None or mode in self.shown_for

    def describe_allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.type is bool:
            return "true or false"
        kind = "an integer" if self.type is int else "a number"
        if self.min is not None and self.max is not None:
            return f"{kind} between {_fmt(self.min)} and {_fmt(self.max)}"
        return kind


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _resolve_type(cls: type, name: str) -> tuple[type, tuple[Any, ...] | None]:
    hints = typing.get_type_hints(cls)
    hint = hints[name]
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return type(choices[0]), choices
    return hint, None


def _specs_of(group: str, cls: type) -> list[FieldSpec]:
    out = []
    for f in fields(cls):
        typ, choices = _resolve_type(cls, f.name)
        m = f.metadata
        out.append(FieldSpec(group, f.name, typ, f.default, m["label"], m["help"], m["min"], m["max"],
                             choices, m["advanced"], m["unit"], m["shown_for"], m["budget"]))
    return out


SPECS: dict[str, FieldSpec] = {s.name: s for g, c in GROUPS.items() for s in _specs_of(g, c)}
assert len(SPECS) == sum(len(fields(c)) for c in GROUPS.values()), "field names must be unique across groups"
assert all(set(s.shown_for or ()) <= set(SPECS["gan_mode"].choices or ()) for s in SPECS.values()), (
    "shown_for must name gan_mode choices")
assert {s.budget for s in SPECS.values()} == {None, *BUDGETS}, "every budget needs its fields, and only BUDGETS"


def field_specs() -> list[FieldSpec]:
    """All fields in group order, as the form shows them."""
    return list(SPECS.values())


def field_group(name: str) -> str:
    return SPECS[name].group


def spec_of(name: str) -> FieldSpec:
    """The field called ``name``; ConfigError naming the valid settings when there is none."""
    spec = SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown setting {name!r}; valid settings: {', '.join(sorted(SPECS))}")
    return spec
