"""Recipes (the training method, apart from the widths) and presets (a recipe at a size).

A recipe sets only ``RECIPE_FIELDS``: objective, upsampling, EMA, optimiser, identity weight, batch
size and D regularisation. Widths and image sizes come from the preset. ``paper`` is the
published method (the field defaults); ``studio`` is the paper's with the changes that helped
across the task suite of ``python -m engine quality`` (the README's Quality section has the figures).
"""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError

from .tree import Config

# --- recipes: the training method, apart from the widths ---------------------------------------
RECIPE_FIELDS: tuple[str, ...] = (
    "netG", "preprocess", "upsample", "input_skip", "norm", "ema_decay", "spectral_norm", "norm_D", "n_layers_D",
    "n_layers_D_map", "gan_mode", "lambda_cyc", "lambda_cyc_map", "lambda_id", "pool_size", "lr", "lr_map", "lr_D",
    "beta1", "beta2", "batch_size",
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
_AUTO: dict[str, Any] = {
    **_STUDIO, "netG": "auto", "preprocess": "auto",
    # The per-pixel families only: a fast start (5x lr for 150 steps, back to lr by step 300) and a cycle weight
    # of 3 in place of 10. Each alone was a trade on the suite's tuning tasks at 3 minutes; together they raised the
    # tuning mean by 1.0 dB (docs/quality.md, "The per-pixel maps' own cycle weight").
    "lr_map": 1e-3, "lambda_cyc_map": 3.0,
}

RECIPES: dict[str, dict[str, Any]] = {"paper": {}, "studio": _STUDIO, "auto": _AUTO}  # overrides of the paper's values


def with_recipe(cfg: Config, name: str) -> Config:
    """``cfg`` with every recipe field set to recipe ``name``'s value (the paper's where it sets none)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}")
    base = Config()
    return cfg.with_values({**{f: base.get(f) for f in RECIPE_FIELDS}, **RECIPES[name]})


# --- presets: a recipe at a size ---------------------------------------------------------------
# The published recipe (Zhu et al. 2017, and the reference implementation's defaults).
_PAPER: dict[str, Any] = {}

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
