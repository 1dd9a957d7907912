"""``Config``: the whole hyperparameter tree, one node per group, validated whenever one is built."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from engine.errors import ConfigError

from .schema import (
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
from .specs import SPECS, spec_of
from .validation import check_config, check_value, migrate, parse_value


@dataclass(frozen=True)
class Config:
    """The whole hyperparameter tree. Build with ``preset(...)``, change with ``with_values``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        for g in GROUPS:
            node = getattr(self, g)
            for f in fields(node):
                value = check_value(SPECS[f.name], getattr(node, f.name))
                object.__setattr__(node, f.name, value)
        check_config(self)

    # --- flat access -------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        return getattr(getattr(self, spec_of(name).group), name)

    def flat(self) -> dict[str, Any]:
        return {name: self.get(name) for name in SPECS}

    def with_values(self, values: Mapping[str, Any] | None = None, **kw: Any) -> "Config":
        """A copy with some fields changed, named flat (``crop_size=64``). Validates everything."""
        changes = dict(values or {}, **kw)
        per_group: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            spec = spec_of(name)
            per_group.setdefault(spec.group, {})[name] = check_value(spec, value)
        nodes = {g: dataclasses.replace(getattr(self, g), **per_group.get(g, {})) for g in GROUPS}
        return Config(**nodes)

    def with_overrides(self, assignments: list[str]) -> "Config":
        """Apply CLI-style ``key=value`` strings."""
        values = {}
        for a in assignments:
            if "=" not in a:
                raise ConfigError(f"--set expects key=value, got {a!r}")
            k, v = a.split("=", 1)
            values[k.strip()] = parse_value(k.strip(), v)
        return self.with_values(values)

    # --- derived -------------------------------------------------------------------------
    @property
    def preprocess_in_force(self) -> str:
        """The preprocessing the data gets: ``preprocess``, with auto resolved for the generator family
        (the ResNet, or a family still to be chosen, resized; the colour and local generators at full resolution)."""
        if self.data.preprocess != "auto":
            return self.data.preprocess
        return "resize_and_crop" if self.model.netG in ("resnet", "auto") else "crop"

    @property
    def is_wasserstein(self) -> bool:
        return self.objective.gan_mode in WASSERSTEIN_MODES

    def d_optimizer_settings(self) -> tuple[str, float, tuple[float, float]]:
        """(kind, lr, betas) of the discriminator/critic optimiser."""
        o, mode = self.optim, self.objective.gan_mode
        if mode == "wgan-clip" and o.wgan_defaults:
            return "rmsprop", o.lr_D or 5e-5, (0.0, 0.0)
        if mode == "wgan-gp" and o.wgan_defaults:
            return "adam", o.lr_D or 1e-4, (0.5, 0.9)
        return "adam", o.lr_D or o.lr, (o.beta1, o.beta2)

    def g_optimizer_settings(self) -> tuple[str, float, tuple[float, float]]:
        """(kind, lr, betas) of the generators' optimiser."""
        o, mode = self.optim, self.objective.gan_mode
        if mode == "wgan-clip" and o.wgan_defaults:
            return "rmsprop", 5e-5, (0.0, 0.0)
        if mode == "wgan-gp" and o.wgan_defaults:
            return "adam", 1e-4, (0.5, 0.9)
        return "adam", o.lr, (o.beta1, o.beta2)

    @property
    def is_per_pixel(self) -> bool:
        """Whether the generators are a per-pixel family (``PER_PIXEL_FAMILIES``: colour or local)."""
        return self.model.netG in PER_PIXEL_FAMILIES

    @property
    def cycle_weight(self) -> float:
        """The cycle loss's weight λ: ``lambda_cyc_map`` for the colour and local families under the LSGAN or
        vanilla objectives where it is set, ``lambda_cyc`` otherwise. A Wasserstein critic's pull on the generators
        is not on the scale the weight was chosen against: under wgan-gp a colour map at 3 learned far less in 400
        steps than at λ cycle's 10 on every tuning task tried (dusk 15.8 against 17.6 dB, faded 17.9 against 21.1,
        grey 14.5 against 19.6, tone 8.6 against 15.8), and on tone it moved away from the truth."""
        o = self.objective
        if self.is_per_pixel and not self.is_wasserstein and o.lambda_cyc_map > 0:
            return o.lambda_cyc_map
        return o.lambda_cyc

    @property
    def critic_layers(self) -> int:
        """The critics' strided layers: ``n_layers_D_map`` for the colour and local families under the LSGAN or
        vanilla objectives where it is set, ``n_layers_D`` otherwise (a Wasserstein critic is also the live W
        estimate, and its depth was not measured against these families)."""
        m = self.model
        if self.is_per_pixel and not self.is_wasserstein and m.n_layers_D_map > 0:
            return m.n_layers_D_map
        return m.n_layers_D

    @property
    def channel_order(self) -> str:
        """The channel order the colour and local maps start from, and in which their identity loss leaves a
        target image alone (``map_order``, once the trainer has read it from the folders): ``rgb`` for the ResNet,
        a random start, or an order not read yet."""
        m = self.model
        if self.is_per_pixel and m.map_start == "identity" and m.map_order != "auto":
            return m.map_order
        return "rgb"

    @property
    def fast_start(self) -> float:
        """How many times ``lr`` the generators train at in their first steps (``lr_map``, for the colour and local
        families under the LSGAN or vanilla objectives; 1 otherwise)."""
        o = self.optim
        if not self.is_per_pixel or self.is_wasserstein or o.lr_map <= o.lr:
            return 1.0
        return o.lr_map / o.lr

    # --- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, d: Any, *, base: "Config | None" = None) -> "Config":
        """Strict: unknown groups or keys, wrong types and out-of-range values raise ConfigError.

        Accepts the nested form that ``to_dict`` writes, or a flat ``{name: value}`` dict.
        Missing keys take their value from ``base`` (the defaults when None).
        """
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(d).__name__}")
        flat: dict[str, Any] = {}
        for k, v in d.items():
            if k in GROUPS:
                if not isinstance(v, dict):
                    raise ConfigError(f"config group {k!r} must be an object, got {type(v).__name__}")
                for name, value in v.items():
                    spec = SPECS.get(name)
                    if spec is None or spec.group != k:
                        raise ConfigError(f"unknown setting {k}.{name}; valid settings in {k}: "
                                          + ", ".join(f.name for f in fields(GROUPS[k])))
                    flat[name] = value
            elif k in SPECS:
                flat[k] = v
            else:
                raise ConfigError(f"unknown setting {k!r}; valid settings: {', '.join(sorted(SPECS))}")
        return (base or cls()).with_values(migrate(flat))

    @classmethod
    def from_json(cls, text: str, *, base: "Config | None" = None) -> "Config":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(d, base=base)
