"""The rules a config obeys: each value's type and range, the rules across fields, and older files read.

``check_value`` is applied to every field of every ``Config`` built; ``parse_value`` turns the text of
``--set name=text`` (or a form field) into a checked value; ``check_config`` holds the rules that
involve more than one field.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError

from .specs import FieldSpec, spec_of

if TYPE_CHECKING:
    from .tree import Config


def check_value(spec: FieldSpec, value: Any) -> Any:
    """Type-check and range-check one value; return it normalised (int → float where a float is expected)."""

    def refused(rule: str, problem: str = "is not allowed") -> ConfigError:
        return ConfigError(f"{spec.name}={value!r} {problem}: {spec.name} must be {rule}", field=spec.name)

    if spec.type is bool:
        if not isinstance(value, bool):
            raise refused("true or false")
        return value
    if spec.choices is not None:
        if value not in spec.choices:
            raise refused(spec.describe_allowed())
        return value
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refused(spec.describe_allowed())
    elif spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise refused(spec.describe_allowed())
        value = float(value)
        if not math.isfinite(value):
            raise refused("a finite number")
    elif spec.type is str:
        if not isinstance(value, str):
            raise refused("a string")
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        raise refused(spec.describe_allowed(), "is out of range")
    return value


def parse_value(name: str, text: str) -> Any:
    """Parse the text of ``--set name=text`` (or a form field) into the field's type, validated."""
    spec = spec_of(name)
    t = text.strip()
    if spec.type is bool:
        low = t.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={text!r} is not allowed: {name} must be true or false", field=name)
    if spec.choices is not None:
        return check_value(spec, t)
    try:
        if spec.type is int:
            value: Any = int(t, 10)
        elif spec.type is float:
            value = float(t)
        else:
            value = t
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not allowed: {name} must be {spec.describe_allowed()}",
                          field=name) from None
    return check_value(spec, value)


def check_config(cfg: Config) -> None:
    """The rules across fields: sizes the networks can take. Raises ConfigError naming the field to change."""
    d, m = cfg.data, cfg.model
    if d.crop_size % 4:
        raise ConfigError(f"crop_size={d.crop_size} is not allowed: crop_size must be a multiple of 4 "
                          "(the generator downsamples twice)", field="crop_size")
    if d.preprocess in ("resize_and_crop", "auto") and d.crop_size > d.load_size:
        raise ConfigError(f"crop_size={d.crop_size} is not allowed: crop_size must not exceed "
                          f"load_size={d.load_size}", field="crop_size")
    # The PatchGAN halves the size n_layers_D times, then applies two 4×4 convs with padding 1.
    for name in ("n_layers_D", "n_layers_D_map"):
        layers = getattr(m, name)
        if d.crop_size // (2 ** layers) < 2:
            raise ConfigError(f"{name}={layers} is too deep for crop_size={d.crop_size}: "
                              f"{name} must be at most {max(1, int(math.log2(d.crop_size / 2)))}", field=name)


def migrate(flat: dict[str, Any]) -> dict[str, Any]:
    """Values written by earlier versions, in today's terms: amp and compile were bools."""
    if isinstance(flat.get("amp"), bool):
        flat = {**flat, "amp": "auto" if flat["amp"] else "off"}
    if isinstance(flat.get("compile"), bool):
        flat = {**flat, "compile": "on" if flat["compile"] else "off"}
    return flat
