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
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping

from engine.errors import ConfigError

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
    "PRESETS",
    "preset",
    "field_specs",
    "parse_value",
    "WASSERSTEIN_MODES",
    "BUDGETS",
    "budget_of",
    "budget_changes",
    "with_budget",
]

WASSERSTEIN_MODES = ("wgan-clip", "wgan-gp")
# How a run's length is given, each winning over the ones before it: minutes (when set), else steps
# (when set), else epochs. See ``budget_of``.
BUDGETS = ("epochs", "steps", "minutes")


def _f(default: Any, label: str, help: str, *, lo: float | None = None, hi: float | None = None,
       widget: str | None = None, advanced: bool = False, unit: str = "",
       shown_for: tuple[str, ...] | None = None, budget: str | None = None) -> Any:
    """A dataclass field with the metadata the form, the CLI and validation read.

    ``shown_for``: the ``gan_mode`` values the field means something for (None: all of them).
    ``budget``: the training budget (one of ``BUDGETS``) the field gives the run's length in (None: none).
    """
    return field(default=default, metadata={
        "label": label, "help": help, "min": lo, "max": hi, "widget": widget,
        "advanced": advanced, "unit": unit, "shown_for": shown_for, "budget": budget,
    })


@dataclass(frozen=True)
class ModelConfig:
    netG: Literal["auto", "colour", "local", "resnet"] = _f(
        "resnet", "Generator family",
        "What kind of change the generators can learn. colour: a per-pixel colour map (grades, tone curves, "
        "channel mixes, greyscale); nothing that depends on a pixel's neighbours; exact at any size, exportable as "
        "a .cube LUT. local: the colour map plus a full-resolution detail path that sees 12 px each way "
        "(sharpening, small blurs, edge and local-contrast effects); no shapes or textures wider than that. "
        "resnet: the paper's ResNet, which can learn any change (textures, objects) but redraws every pixel, so "
        "detail is lost until it is relearnt. auto: try the three on your images for a small share of the "
        "budget, keep the one whose held-out translations come closest to the target in colour, structure and "
        "detail, and train it for the rest.")
    ngf: int = _f(64, "Generator width (ngf)", "Filters in the generator's first conv layer.", lo=4, hi=256)
    n_blocks: int = _f(9, "Residual blocks", "Residual blocks in the generator: 9 for 256 px, 6 for 128 px and below.", lo=1, hi=24)
    upsample: Literal["transpose", "resize"] = _f(
        "transpose", "Upsampling", "transpose: the paper's transposed conv. resize: nearest upsample + conv, free of checkerboard artifacts.")
    ndf: int = _f(64, "Discriminator width (ndf)", "Filters in the discriminator's first conv layer.", lo=4, hi=256)
    n_layers_D: int = _f(3, "Discriminator layers", "Strided layers of the PatchGAN; 3 gives the 70×70 receptive field.", lo=1, hi=6)
    norm: Literal["instance", "none"] = _f("instance", "Generator norm", "Normalisation in the generator (instance norm without affine, as the paper).")
    norm_D: Literal["instance", "layer", "none"] = _f(
        "instance", "Discriminator norm", "Normalisation in the discriminator/critic. Never batch norm: it breaks the per-image gradient penalty.")
    spectral_norm: bool = _f(False, "Spectral norm (D)", "Spectrally normalise the discriminator's conv weights.")
    diffaugment: bool = _f(False, "DiffAugment (D)", "The discriminators see real and fake images through the same random "
                           "translation and cutout (Zhao et al. 2020), so that they cannot memorise a small folder.")
    input_skip: bool = _f(
        False, "Input skip", "The generator outputs tanh(atanh(0.999·x) + h(x)), h its last conv's output, zeroed at start: it "
        "begins as the identity and learns the change, so fine detail survives. Off in the paper. It learns small "
        "changes (a colour grade) fast, but on large or texture changes it can stay at G(x) = x.")
    ema_horizon: float = _f(
        0.1, "EMA horizon", "The generator average spans at most this share of the run (its decay is capped at "
        "1 − 1/(horizon × steps)), so a short run's average is not stuck in its early steps. 0: no cap.", lo=0.0, hi=1.0,
        advanced=True)
    ema_decay: float = _f(0.0, "Generator EMA", "Exponential moving average of the generator weights, used for previews and translation. 0 turns it off.", lo=0.0, hi=0.9999)


@dataclass(frozen=True)
class ObjectiveConfig:
    gan_mode: Literal["vanilla", "lsgan", "wgan-clip", "wgan-gp"] = _f(
        "lsgan", "GAN objective",
        "vanilla: the log loss. lsgan: least squares (the paper's practice). "
        "wgan-clip / wgan-gp: a Wasserstein critic, with weight clipping or a gradient penalty; these plot a live W estimate.")
    lambda_cyc: float = _f(10.0, "λ cycle", "Weight of the cycle-consistency L1 loss.", lo=0.0, hi=1000.0)
    cycle_warmup: float = _f(
        0.0, "Cycle warm-up", "λ cycle rises linearly from 0 over this share of the run. At the start an identity "
        "generator (input skip) satisfies the cycle exactly, and the L1 loss's constant pull can keep it there; a "
        "warm-up lets the adversarial loss move it first. 0: the full weight from the start (the paper).",
        lo=0.0, hi=1.0)
    lambda_id: float = _f(0.5, "λ identity", "Identity loss weight, relative to λ cycle. 0 skips the identity passes.", lo=0.0, hi=10.0)
    pool_size: int = _f(50, "Fake pool size", "History of generated images the discriminator sees. 0 disables the pool.", lo=0, hi=1000)
    # Shown (in the form) only for the objectives they belong to:
    clip_value: float = _f(0.01, "Clip value c", "wgan-clip: critic weights are clipped to [−c, c] after every critic step.",
                           lo=1e-5, hi=1.0, shown_for=("wgan-clip",))
    lambda_gp: float = _f(10.0, "λ GP", "wgan-gp: weight of the gradient penalty λ·E[(‖∇f(x̂)‖ − 1)²].",
                          lo=0.0, hi=1000.0, shown_for=("wgan-gp",))
    n_critic: int = _f(5, "Critic steps", "Wasserstein: critic updates per generator update.",
                       lo=1, hi=20, shown_for=WASSERSTEIN_MODES)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = _f(2e-4, "Learning rate", "Adam learning rate of the generators (and of the discriminators unless lr_D is set).", lo=1e-7, hi=1e-1)
    lr_D: float = _f(0.0, "Learning rate (D)", "Discriminator/critic learning rate; 0 uses lr (or the Wasserstein default).", lo=0.0, hi=1e-1, advanced=True)
    beta1: float = _f(0.5, "Adam β1", "Adam's first-moment decay.", lo=0.0, hi=0.9999)
    beta2: float = _f(0.999, "Adam β2", "Adam's second-moment decay.", lo=0.0, hi=0.99999)
    wgan_defaults: bool = _f(
        True, "Wasserstein optimiser defaults",
        "With a Wasserstein objective, use the papers' optimisers: RMSProp 5e-5 (clip) or Adam 1e-4, β (0.5, 0.9) (gp).",
        shown_for=WASSERSTEIN_MODES)


@dataclass(frozen=True)
class DataConfig:
    preprocess: Literal["auto", "resize_and_crop", "crop"] = _f(
        "resize_and_crop", "Preprocessing",
        "resize_and_crop: each image is resized to load_size × load_size, then randomly cropped (the paper's). crop: random "
        "crops of each image at its own resolution, so the networks learn at the scale they will translate at "
        "(load_size is then unused). auto: crop for the colour and local generators (their reach is in pixels of "
        "the image they translate), resize_and_crop for the ResNet.")
    load_size: int = _f(286, "Load size", "resize_and_crop: images are resized to this square size before the random crop.", lo=8, hi=2048, unit="px")
    crop_size: int = _f(256, "Crop size", "Size of the random square crop the networks train on (a multiple of 4).", lo=8, hi=2048, unit="px")
    flip: bool = _f(True, "Random flip", "Random horizontal flip.")
    batch_size: int = _f(1, "Batch size", "Images per domain per step.", lo=1, hi=256)
    cache_mb: int = _f(2048, "Cache budget", "Decoded images are kept in memory up to this size.", lo=0, hi=1 << 20, unit="MB", advanced=True)
    max_pixels: int = _f(
        80_000_000, "Pixel limit", "Images with more pixels are refused without being decoded (decompression-bomb guard).",
        lo=1, hi=1 << 31, advanced=True)
    val_fraction: float = _f(0.05, "Held-out fraction", "Fraction of each domain held out for validation, never trained on.", lo=0.0, hi=0.5)
    val_min: int = _f(4, "Held-out minimum", "Minimum held-out images per domain (when the domain has enough).", lo=0, hi=10000)


@dataclass(frozen=True)
class ScheduleConfig:
    # The run's length: one of three budgets (``BUDGETS``, ``budget_of``). Under steps or minutes the
    # epochs still shape the learning-rate decay: full LR for n_epochs / (n_epochs + n_epochs_decay) of the run.
    n_epochs: int = _f(100, "Epochs at full LR", "Epochs at the initial learning rate.", lo=0, hi=100000, budget="epochs")
    n_epochs_decay: int = _f(100, "Decay epochs", "Epochs over which the learning rate decays linearly to zero.", lo=0,
                             hi=100000, budget="epochs")
    max_steps: int = _f(0, "Steps", "Train for this many steps; the LR schedule is stretched to fit. 0: by epochs.", lo=0,
                        hi=1 << 40, budget="steps")
    minutes: float = _f(
        0.0, "Training time",
        "Train for this many minutes of training time (pauses excluded), the whole schedule fitted into them: the "
        "learning rate decays and the generator average narrows with elapsed time, and the run ends decayed, with a "
        "checkpoint. 0: by steps or epochs. Wins over both.", lo=0.0, hi=1e7, unit="min", budget="minutes")
    time_limit: float = _f(0.0, "Time limit", "Stop cleanly, with a checkpoint, after this many minutes of this session, wherever "
                           "the schedule is. 0: none.", lo=0.0, hi=1e7, unit="min", advanced=True)
    seed: int = _f(0, "Seed", "Random seed. Training is deterministic for a given seed on CPU.", lo=0, hi=2**31 - 1)
    log_every: int = _f(10, "Report every", "Steps between progress reports (losses, it/s).", lo=1, hi=100000, unit="steps")
    preview_every: int = _f(100, "Preview every", "Steps between preview images.", lo=1, hi=1000000, unit="steps")
    eval_every: int = _f(200, "Evaluate every", "Steps between held-out evaluations (the W monitor, the held-out losses).",
                         lo=1, hi=1000000, unit="steps")
    monitor: bool = _f(True, "W monitor", "At every evaluation, estimate W1 between translated held-out images and real "
                       "held-out ones (patches), per direction, with a critic of its own that never trains the "
                       "generators; keep checkpoints/best.pt at the lowest. Needs held-out images.")
    plateau_evals: int = _f(10, "Plateau after", "Say that training has reached a plateau when the monitored W has not "
                            "improved by more than its confidence interval for this many evaluations.", lo=1, hi=10000,
                            unit="evaluations", advanced=True)
    stop_on_plateau: bool = _f(False, "Stop on plateau", "Stop (with a checkpoint) at the plateau notice instead of "
                               "only reporting it.", advanced=True)
    search_share: float = _f(
        0.08, "Family trial share", "Generator family auto: the share of the budget each family trains for before the "
        "W monitor compares them; the families dropped cost their shares (of a budget of minutes; under steps or "
        "epochs the search adds its steps).", lo=0.01, hi=0.3, advanced=True)
    save_every: int = _f(500, "Checkpoint every", "Steps between checkpoints.", lo=1, hi=1000000, unit="steps")
    keep_checkpoints: int = _f(3, "Checkpoints kept", "Numbered checkpoints kept besides latest.", lo=1, hi=1000)


@dataclass(frozen=True)
class OutputConfig:
    device: Literal["auto", "cpu", "cuda", "mps"] = _f("auto", "Device", "auto picks cuda, then mps, then cpu.")
    amp: Literal["auto", "on", "off"] = _f(
        "auto", "bf16 autocast", "Compute in bf16 where it is safe (autocast); weights and optimiser state stay fp32. "
        "auto: where the device computes bf16 natively (CUDA GPUs with bf16; CPUs with AVX512-BF16 or AMX; Apple "
        "silicon with FEAT_BF16), never where it would be emulated. on: always (slower than fp32 where emulated). "
        "off: fp32.")
    channels_last: bool = _f(True, "channels_last", "Channels-last (NHWC) memory format: the same arithmetic, faster convolutions. On CPU a transposed-conv generator stays NCHW (torch's NHWC ConvTranspose backward is wrong there).", advanced=True)
    compile: Literal["auto", "on", "off"] = _f(
        "auto", "torch.compile", "Compile the generators' and critics' passes (forward and backward; never the gradient "
        "penalty's double backward). Compiling takes a while before the first step and pays back only over a long run. "
        "auto: on CUDA, for runs of at least 2,000 steps or 10 minutes; off on CPU, where it was measured slower (see the "
        "README's Performance section).", advanced=True)
    tensorboard: bool = _f(False, "TensorBoard", "Also write scalars and previews to RUN_DIR/tb.")
    threads: int = _f(0, "CPU threads", "torch intra-op threads; 0 uses all cores.", lo=0, hi=512, advanced=True)


GROUPS: dict[str, type] = {
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "schedule": ScheduleConfig,
    "output": OutputConfig,
}
GROUP_LABELS = {
    "model": "Model", "objective": "Objective", "optim": "Optimiser",
    "data": "Data", "schedule": "Schedule", "output": "Output",
}


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
        mode = gan_mode.objective.gan_mode if isinstance(gan_mode, Config) else gan_mode
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


_SPECS: dict[str, FieldSpec] = {s.name: s for g, c in GROUPS.items() for s in _specs_of(g, c)}
assert len(_SPECS) == sum(len(fields(c)) for c in GROUPS.values()), "field names must be unique across groups"
assert all(set(s.shown_for or ()) <= set(_SPECS["gan_mode"].choices or ()) for s in _SPECS.values()), (
    "shown_for must name gan_mode choices")
assert {s.budget for s in _SPECS.values()} == {None, *BUDGETS}, "every budget needs its fields, and only BUDGETS"


def field_specs() -> list[FieldSpec]:
    """All fields in group order, as the form shows them."""
    return list(_SPECS.values())


def _check_value(spec: FieldSpec, value: Any) -> Any:
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
    spec = _SPECS.get(name)
    if spec is None:
        raise ConfigError(f"unknown setting {name!r}; valid settings: {', '.join(sorted(_SPECS))}")
    t = text.strip()
    if spec.type is bool:
        low = t.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={text!r} is not allowed: {name} must be true or false", field=name)
    if spec.choices is not None:
        return _check_value(spec, t)
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
    return _check_value(spec, value)


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
                value = _check_value(_SPECS[f.name], getattr(node, f.name))
                object.__setattr__(node, f.name, value)
        d, m = self.data, self.model
        if d.crop_size % 4:
            raise ConfigError(f"crop_size={d.crop_size} is not allowed: crop_size must be a multiple of 4 "
                              "(the generator downsamples twice)", field="crop_size")
        if d.preprocess in ("resize_and_crop", "auto") and d.crop_size > d.load_size:
            raise ConfigError(f"crop_size={d.crop_size} is not allowed: crop_size must not exceed "
                              f"load_size={d.load_size}", field="crop_size")
        # The PatchGAN halves the size n_layers_D times, then applies two 4×4 convs with padding 1.
        if d.crop_size // (2 ** m.n_layers_D) < 2:
            raise ConfigError(f"n_layers_D={m.n_layers_D} is too deep for crop_size={d.crop_size}: "
                              f"n_layers_D must be at most {max(1, int(math.log2(d.crop_size / 2)))}",
                              field="n_layers_D")

    # --- flat access -------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        spec = _SPECS.get(name)
        if spec is None:
            raise ConfigError(f"unknown setting {name!r}; valid settings: {', '.join(sorted(_SPECS))}")
        return getattr(getattr(self, spec.group), name)

    def flat(self) -> dict[str, Any]:
        return {name: self.get(name) for name in _SPECS}

    def with_values(self, values: Mapping[str, Any] | None = None, **kw: Any) -> "Config":
        """A copy with some fields changed, named flat (``crop_size=64``). Validates everything."""
        changes = dict(values or {}, **kw)
        per_group: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            spec = _SPECS.get(name)
            if spec is None:
                raise ConfigError(f"unknown setting {name!r}; valid settings: {', '.join(sorted(_SPECS))}")
            per_group.setdefault(spec.group, {})[name] = _check_value(spec, value)
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
                    spec = _SPECS.get(name)
                    if spec is None or spec.group != k:
                        raise ConfigError(f"unknown setting {k}.{name}; valid settings in {k}: "
                                          + ", ".join(f.name for f in fields(GROUPS[k])))
                    flat[name] = value
            elif k in _SPECS:
                flat[k] = v
            else:
                raise ConfigError(f"unknown setting {k!r}; valid settings: {', '.join(sorted(_SPECS))}")
        return (base or cls()).with_values(_migrate(flat))

    @classmethod
    def from_json(cls, text: str, *, base: "Config | None" = None) -> "Config":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(d, base=base)


def _migrate(flat: dict[str, Any]) -> dict[str, Any]:
    """Values written by earlier versions, in today's terms: amp and compile were bools."""
    if isinstance(flat.get("amp"), bool):
        flat = {**flat, "amp": "auto" if flat["amp"] else "off"}
    if isinstance(flat.get("compile"), bool):
        flat = {**flat, "compile": "on" if flat["compile"] else "off"}
    return flat


def field_group(name: str) -> str:
    return _SPECS[name].group


# --- the training budget -------------------------------------------------------------------
# What a budget's fields are set to when a switch finds them all at 0 (epochs: the field defaults).
BUDGET_START: dict[str, Any] = {"max_steps": 2000, "minutes": 10.0}


def _budget_fields(budget: str) -> list[FieldSpec]:
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; valid budgets: {', '.join(BUDGETS)}")
    return [s for s in _SPECS.values() if s.budget == budget]


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


# --- presets -------------------------------------------------------------------------------
# The published recipe (Zhu et al. 2017, and the reference implementation's defaults).
_PAPER: dict[str, Any] = {}

# --- recipes: the training method, apart from the widths ---------------------------------------
# A recipe sets only these fields: objective, upsampling, EMA, optimiser, identity weight, batch
# size and D regularisation. Widths and image sizes come from the preset. ``paper`` is the
# published method (the field defaults); ``studio`` is the paper's with the changes that helped
# across the task suite of ``python -m engine quality`` (the README's Quality section has the figures).
RECIPE_FIELDS: tuple[str, ...] = (
    "netG", "preprocess", "upsample", "input_skip", "norm", "ema_decay", "spectral_norm", "norm_D", "n_layers_D",
    "gan_mode", "lambda_cyc", "lambda_id", "pool_size", "lr", "lr_D", "beta1", "beta2", "batch_size",
)
# Re-derived on the task suite (README, Quality): the earlier studio recipe (input skip starting at
# the identity, no generator norm, λ_id 0, spectral-norm D) led on colour grades close to the identity
# but stayed at G(x) = x on a sketch, a greyscale map and a false-colour map. What it kept that helps
# on every task: resize upsampling (no checkerboard) and the generator average.
_STUDIO: dict[str, Any] = {
    "upsample": "resize",      # no checkerboard (the paper's transposed convs make one at any scale)
    "ema_decay": 0.999,        # warmed up; previews and translation use the average
}

# auto: the generator family is chosen on the user's own folders (engine.training.search): the colour map, the
# colour map with a local detail path, or studio's ResNet, each at the scale it learns best at.
_AUTO: dict[str, Any] = {**_STUDIO, "netG": "auto", "preprocess": "auto"}

RECIPES: dict[str, dict[str, Any]] = {"paper": {}, "studio": _STUDIO, "auto": _AUTO}  # overrides of the paper's values


def with_recipe(cfg: Config, name: str) -> Config:
    """``cfg`` with every recipe field set to recipe ``name``'s value (the paper's where it sets none)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")
    base = Config()
    return cfg.with_values({**{f: base.get(f) for f in RECIPE_FIELDS}, **RECIPES[name]})


__all__ += ["RECIPE_FIELDS", "RECIPES", "with_recipe"]

# Small enough to learn visibly within minutes on 2 CPU cores. Every preset trains with the auto recipe;
# --recipe paper (or studio) gives the published method (or the ResNet alone) at the preset's sizes.
_CPU_QUICK: dict[str, Any] = {
    "load_size": 72, "crop_size": 64, "ngf": 32, "n_blocks": 6, "ndf": 32,
    "n_epochs": 5, "n_epochs_decay": 5, "preview_every": 50, "log_every": 10, "eval_every": 100,
    "save_every": 200,
    **_AUTO,
}

PRESETS: dict[str, dict[str, Any]] = {"paper": {**_PAPER, **_AUTO}, "cpu-quick": _CPU_QUICK}


def preset(name: str) -> Config:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return Config().with_values(PRESETS[name])
