"""The training budget: whether a run's length is given in epochs, steps or minutes, and switching between them.

Each budget owns the fields whose metadata names it (``FieldSpec.budget``); the later of ``BUDGETS``
wins when several are set.
"""

from __future__ import annotations

from typing import Any, Mapping

from engine.errors import ConfigError

from .schema import BUDGETS
from .specs import SPECS, FieldSpec
from .tree import Config

# What a budget's fields are set to when a switch finds them all at 0 (epochs: the field defaults).
BUDGET_START: dict[str, Any] = {"max_steps": 2000, "minutes": 10.0}


def _budget_fields(budget: str) -> list[FieldSpec]:
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; valid budgets: {', '.join(BUDGETS)}")
    return [s for s in SPECS.values() if s.budget == budget]


def budget_of(values: Config | Mapping[str, Any]) -> str:
    """The budget that sets the run's length: the last of ``BUDGETS`` with a field above 0, else epochs.

    ``values``: a config, or flat ``{name: value}`` (a missing or unreadable field counts as 0).
    """
    flat = values.flat() if isinstance(values, Config) else values
    for budget in reversed(BUDGETS[1:]):
        if any(isinstance(v := flat.get(s.name), (int, float)) and v > 0 for s in _budget_fields(budget)):
            return budget
    return BUDGETS[0]


def budget_changes(values: Config | Mapping[str, Any], budget: str,
                   start: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The field values that make ``budget`` the one in force, as ``{name: value}``.

    The steps and minutes fields of the other budgets go to 0; the epochs fields stay, since they
    also shape the learning-rate decay under the other budgets. A chosen budget whose fields are
    all 0 gets ``start`` values (default ``BUDGET_START``; the field defaults for epochs).
    """
    flat = values.flat() if isinstance(values, Config) else values
    out: dict[str, Any] = {}
    for other in BUDGETS[1:]:
        if other != budget:
            out.update({s.name: s.type(0) for s in _budget_fields(other)})
    mine = _budget_fields(budget)
    if not any(isinstance(v := flat.get(s.name), (int, float)) and v > 0 for s in mine):
        starts = {**BUDGET_START, **(start or {})}
        out.update({s.name: starts.get(s.name, s.default) for s in mine})
    return out


def with_budget(cfg: Config, budget: str, start: Mapping[str, Any] | None = None) -> Config:
    """``cfg`` trained for its ``budget`` (``budget_changes``): e.g. minutes sets max_steps to 0."""
    return cfg.with_values(budget_changes(cfg, budget, start))
