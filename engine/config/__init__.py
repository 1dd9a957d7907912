"""Every hyperparameter, in one typed, frozen dataclass tree.

The tree has one node per group the GUI shows (Model, Objective, Optimiser,
Data, Schedule, Output). Each field carries metadata: a label, help text,
either a numeric range or (through its ``Literal`` type) a set of choices, and for fields
that belong to some objectives only, the ``gan_mode`` values they apply to (``shown_for``), and for
the fields that set the run's length, the training budget they belong to (``budget``: epochs, steps
or minutes; ``budget_of`` says which one a config uses, ``with_budget`` switches).
The GUI builds its form from this metadata, the CLI builds ``--set key=value``
from it, and ``asdict(cfg)`` is what goes into every run folder and checkpoint.

Field names follow the reference implementation (``crop_size``, ``ngf``,
``n_blocks``, ``lambda_cyc`` …) and are unique across groups, so a flat
``key=value`` override always names exactly one field.

One module per job:

- ``schema``: the six group dataclasses, each field with its label, help and range;
- ``specs``: ``FieldSpec``, one per field, read from that metadata (``field_specs``);
- ``validation``: each value's type and range, the rules across fields, ``parse_value``;
- ``tree``: ``Config``, the whole tree, with flat access and JSON;
- ``budget``: epochs, steps or minutes, and switching between them;
- ``recipes``: ``RECIPES`` (the training method) and ``PRESETS`` (a recipe at a size).
"""

from engine.errors import ConfigError

from .budget import BUDGET_START, budget_changes, budget_of, with_budget
from .recipes import PRESETS, RECIPE_FIELDS, RECIPES, preset, with_recipe
from .schema import (
    BUDGETS,
    GROUP_LABELS,
    GROUPS,
    PER_PIXEL_FAMILIES,
    WASSERSTEIN_MODES,
    DataConfig,
    ModelConfig,
    ObjectiveConfig,
    OptimConfig,
    OutputConfig,
    ScheduleConfig,
)
from .specs import FieldSpec, field_group, field_specs
from .tree import Config
from .validation import parse_value

__all__ = [
    "ConfigError",
    "FieldSpec",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "DataConfig",
    "ScheduleConfig",
    "OutputConfig",
    "Config",
    "GROUPS",
    "PER_PIXEL_FAMILIES",
    "GROUP_LABELS",
    "PRESETS",
    "preset",
    "field_specs",
    "field_group",
    "parse_value",
    "WASSERSTEIN_MODES",
    "BUDGETS",
    "BUDGET_START",
    "budget_of",
    "budget_changes",
    "with_budget",
    "RECIPE_FIELDS",
    "RECIPES",
    "with_recipe",
]
