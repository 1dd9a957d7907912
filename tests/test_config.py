import json

import pytest

from engine.config import (
    PRESETS,
    WASSERSTEIN_MODES,
    Config,
    ConfigError,
    field_specs,
    parse_value,
    preset,
    with_recipe,
)


def test_paper_preset_is_the_published_recipe():
    """The paper preset has the paper's sizes and, with ``--recipe paper``, its method; by default it trains the
    family that ``auto`` keeps."""
    assert preset("paper").model.netG == "auto"
    c = with_recipe(preset("paper"), "paper")
    assert c.model.netG == "resnet" and c.data.preprocess == "resize_and_crop"
    assert (c.data.load_size, c.data.crop_size, c.data.batch_size) == (286, 256, 1)
    assert (c.model.ngf, c.model.n_blocks, c.model.ndf, c.model.n_layers_D) == (64, 9, 64, 3)
    assert (c.model.norm, c.objective.gan_mode, c.model.upsample) == ("instance", "lsgan", "transpose")
    assert (c.objective.lambda_cyc, c.objective.lambda_id, c.objective.pool_size) == (10.0, 0.5, 50)
    assert (c.optim.lr, c.optim.beta1, c.optim.beta2) == (2e-4, 0.5, 0.999)
    assert (c.schedule.n_epochs, c.schedule.n_epochs_decay) == (100, 100)


def test_every_field_has_label_help_and_range_or_choices():
    for s in field_specs():
        assert s.label and s.help, s.name
        if s.type in (int, float) and s.choices is None:
            assert s.min is not None and s.max is not None, s.name
    assert {s.group for s in field_specs()} == {"model", "objective", "optim", "data", "schedule", "output"}


def test_reference_names_exist():
    names = {s.name for s in field_specs()}
    for n in ("load_size", "crop_size", "ngf", "ndf", "n_blocks", "n_layers_D", "norm", "gan_mode", "lambda_cyc",
              "lambda_id", "pool_size", "lr", "beta1", "beta2", "batch_size", "n_epochs", "n_epochs_decay"):
        assert n in names


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    c = preset(name).with_values(gan_mode="wgan-gp", lr=1e-4)
    assert Config.from_json(c.to_json()) == c
    assert Config.from_dict(json.loads(c.to_json())) == c


def test_set_overrides_like_the_reference():
    c = Config().with_overrides(["crop_size=64", "ngf=32", "ndf=32", "n_blocks=6", "batch_size=1", "flip=false"])
    assert (c.data.crop_size, c.model.ngf, c.model.ndf, c.model.n_blocks, c.data.flip) == (64, 32, 32, 6, False)
    assert parse_value("lr", "1e-3") == 1e-3


@pytest.mark.parametrize("values,fragment", [
    ({"crop_size": 0}, "crop_size=0 is out of range: crop_size must be an integer between 8 and 2048"),
    ({"gan_mode": "hinge"}, "gan_mode='hinge' is not allowed: gan_mode must be one of 'vanilla', 'lsgan'"),
    ({"lr": "fast"}, "lr='fast' is not allowed"),
    ({"ngf": 3.5}, "ngf=3.5 is not allowed: ngf must be an integer"),
    ({"flip": 1}, "flip=1 is not allowed: flip must be true or false"),
    ({"crop_size": 66, "load_size": 72}, "crop_size must be a multiple of 4"),
    ({"crop_size": 128, "load_size": 64}, "crop_size must not exceed load_size=64"),
    ({"lambda_cyc": float("nan")}, "must be a finite number"),
    ({"colour": 1}, "unknown setting 'colour'"),
])
def test_validation_names_field_value_and_allowed(values, fragment):
    with pytest.raises(ConfigError, match=None) as e:
        Config().with_values(values)
    assert fragment in str(e.value)


@pytest.mark.parametrize("values,field", [
    ({"crop_size": 0}, "crop_size"),
    ({"gan_mode": "hinge"}, "gan_mode"),
    ({"lr": "fast"}, "lr"),
    ({"ngf": 3.5}, "ngf"),
    ({"flip": 1}, "flip"),
    ({"lambda_cyc": float("nan")}, "lambda_cyc"),
    # cross-field rules name the field the message is about
    ({"crop_size": 66, "load_size": 72}, "crop_size"),
    ({"crop_size": 128, "load_size": 64}, "crop_size"),
    ({"crop_size": 8, "load_size": 72, "n_layers_D": 3}, "n_layers_D"),
    ({"crop_size": 8, "load_size": 72, "n_layers_D": 1, "n_layers_D_map": 3}, "n_layers_D_map"),
    # not one field's fault
    ({"colour": 1}, None),
])
def test_errors_carry_the_field_they_are_about(values, field):
    with pytest.raises(ConfigError) as e:
        Config().with_values(values)
    assert e.value.field == field
    if field is not None:
        assert str(e.value).startswith(f"{field}=")


@pytest.mark.parametrize("spec", field_specs(), ids=lambda s: s.name)
def test_every_single_field_error_carries_the_field(spec):
    wrong_type = "x" if spec.type is not str else 1
    with pytest.raises(ConfigError) as e:
        Config().with_values({spec.name: wrong_type})
    assert e.value.field == spec.name
    if spec.type is not str or spec.choices is not None:  # any text is a valid plain string
        with pytest.raises(ConfigError) as e:
            parse_value(spec.name, "not a value")
        assert e.value.field == spec.name
    if spec.min is not None:
        with pytest.raises(ConfigError, match="out of range") as e:
            Config().with_values({spec.name: spec.type(spec.min) - 1})
        assert e.value.field == spec.name


def test_errors_about_no_single_field_carry_none():
    for make in (lambda: parse_value("colour", "1"), lambda: Config().get("colour"),
                 lambda: Config().with_overrides(["lr"]), lambda: Config.from_dict({"model": {"colour": 3}}),
                 lambda: Config.from_json("{"), lambda: preset("huge")):
        with pytest.raises(ConfigError) as e:
            make()
        assert e.value.field is None, str(e.value)


def test_objective_specific_fields_say_which_objectives_they_apply_to():
    specs = {s.name: s for s in field_specs()}
    shown = {n: s.shown_for for n, s in specs.items() if s.shown_for is not None}
    assert shown == {"clip_value": ("wgan-clip",), "lambda_gp": ("wgan-gp",),
                     "n_critic": WASSERSTEIN_MODES, "wgan_defaults": WASSERSTEIN_MODES}
    assert specs["lambda_gp"].applies_to("wgan-gp") and not specs["lambda_gp"].applies_to("lsgan")
    assert specs["n_critic"].applies_to(Config().with_values(gan_mode="wgan-clip"))
    assert not specs["n_critic"].applies_to(Config())
    assert all(specs["lambda_cyc"].applies_to(m) for m in specs["gan_mode"].choices)


def test_from_dict_is_strict():
    with pytest.raises(ConfigError, match="unknown setting model.colour"):
        Config.from_dict({"model": {"colour": 3}})
    with pytest.raises(ConfigError, match="n_blocks='9' is not allowed"):
        Config.from_dict({"model": {"n_blocks": "9"}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        Config.from_json("{")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        Config.from_json("[1]")


def test_wasserstein_optimiser_defaults():
    c = Config().with_values(gan_mode="wgan-clip")
    assert c.d_optimizer_settings() == ("rmsprop", 5e-5, (0.0, 0.0))
    c = Config().with_values(gan_mode="wgan-gp")
    assert c.d_optimizer_settings() == ("adam", 1e-4, (0.5, 0.9))
    assert c.objective.n_critic == 5 and c.objective.lambda_gp == 10.0 and c.objective.clip_value == 0.01


def test_per_pixel_families_start_their_generators_at_lr_map():
    from engine.config import with_recipe
    from engine.training.schedule import FAST_START_STEPS as S
    from engine.training.schedule import fast_start_multiplier

    auto = preset("cpu-quick")
    assert auto.optim.lr == 2e-4 and auto.optim.lr_map == 1e-3
    for family in ("colour", "local"):
        c = auto.with_values(netG=family)
        assert c.fast_start == pytest.approx(5.0)
        assert c.g_optimizer_settings() == c.d_optimizer_settings() == ("adam", 2e-4, (0.5, 0.999))
    assert auto.with_values(netG="resnet").fast_start == 1.0
    assert auto.with_values(netG="colour", lr_map=0.0).fast_start == 1.0
    # Only auto sets it: paper and studio train a pinned colour map at lr throughout.
    for recipe in ("paper", "studio"):
        assert with_recipe(auto, recipe).with_values(netG="colour").fast_start == 1.0
    assert with_recipe(auto.with_values(lr_map=0.0), "auto").with_values(netG="colour").fast_start == 5.0
    # The Wasserstein objectives keep their papers' optimisers.
    assert auto.with_values(netG="colour", gan_mode="wgan-gp").fast_start == 1.0
    # 5× for S steps, then linearly to 1 over S more.
    assert [fast_start_multiplier(s, 5.0) for s in (0, S - 1, S, S + S // 2, 2 * S, 10 * S)] == pytest.approx(
        [5.0, 5.0, 5.0, 3.0, 1.0, 1.0])
    assert fast_start_multiplier(0, 1.0) == 1.0


def test_per_pixel_families_weigh_the_cycle_by_lambda_cyc_map_under_auto_only():
    from engine.config import with_recipe

    auto = preset("cpu-quick")
    assert (auto.objective.lambda_cyc, auto.objective.lambda_cyc_map) == (10.0, 3.0)
    assert [auto.with_values(netG=f).cycle_weight for f in ("colour", "local", "resnet")] == [3.0, 3.0, 10.0]
    # auto is not a family yet: the search resolves it to one before anything is built or weighed.
    assert [auto.with_values(netG=f).is_per_pixel for f in ("auto", "colour", "local", "resnet")] == [
        False, True, True, False]
    assert auto.with_values(netG="colour", lambda_cyc_map=0.0).cycle_weight == 10.0
    assert auto.with_values(netG="colour", lambda_cyc=7.0, lambda_cyc_map=0.0).cycle_weight == 7.0
    for recipe in ("paper", "studio"):
        assert with_recipe(auto, recipe).with_values(netG="colour").cycle_weight == 10.0
    # The Wasserstein objectives keep λ cycle: a critic's pull is on another scale (as for the fast start).
    for mode in ("wgan-gp", "wgan-clip"):
        assert auto.with_values(netG="colour", gan_mode=mode).cycle_weight == 10.0
    assert auto.with_values(netG="local", gan_mode="vanilla").cycle_weight == 3.0


def _critic_reach(cfg) -> int:
    """How many input pixels across one output of ``cfg``'s critic depends on (its receptive field, by gradient)."""
    import torch

    from engine.models.networks import build_critic

    x = torch.randn(1, 3, 96, 96, requires_grad=True)
    out = build_critic(cfg)(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    cols = (x.grad.abs().sum((0, 1, 2)) > 0).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)


def test_per_pixel_families_critics_take_n_layers_D_map_where_set():
    c = Config().with_values(ndf=8, norm_D="none", n_layers_D=3, n_layers_D_map=1)
    assert [c.with_values(netG=f).critic_layers for f in ("colour", "local", "resnet")] == [1, 1, 3]
    assert _critic_reach(c.with_values(netG="colour")) == 16 and _critic_reach(c.with_values(netG="resnet")) == 70
    assert c.with_values(netG="local", n_layers_D_map=0).critic_layers == 3
    # The Wasserstein critics keep n_layers_D: they are the live W estimate as well.
    for mode in ("wgan-gp", "wgan-clip"):
        assert c.with_values(netG="colour", gan_mode=mode).critic_layers == 3
    from engine.config import with_recipe
    assert with_recipe(c, "paper").with_values(netG="colour").critic_layers == 3


def test_the_training_budget_is_read_and_switched_from_the_field_metadata():
    from engine.config import BUDGETS, budget_changes, budget_of, with_budget

    specs = {s.name: s.budget for s in field_specs() if s.budget is not None}
    assert specs == {"n_epochs": "epochs", "n_epochs_decay": "epochs", "max_steps": "steps", "minutes": "minutes"}
    assert BUDGETS == ("epochs", "steps", "minutes")
    cfg = preset("cpu-quick")
    assert budget_of(cfg) == "epochs" and budget_of(cfg.with_values(max_steps=5)) == "steps"
    assert budget_of(cfg.with_values(max_steps=5, minutes=1.0)) == "minutes"  # minutes win over steps
    assert budget_of({"max_steps": None, "minutes": 2.0}) == "minutes" and budget_of({}) == "epochs"
    timed = with_budget(cfg.with_values(max_steps=5), "minutes")
    assert (timed.schedule.max_steps, timed.schedule.minutes, timed.schedule.n_epochs) == (0, 10.0, 5)
    assert with_budget(timed, "minutes", start={"minutes": 3.0}) == timed  # already set: kept
    stepped = with_budget(timed, "steps", start={"max_steps": 300})
    assert (stepped.schedule.max_steps, stepped.schedule.minutes) == (300, 0.0) and budget_of(stepped) == "steps"
    assert with_budget(stepped, "epochs") == cfg
    # Epochs at 0 get their defaults back: switching always leaves a run with a length.
    assert budget_changes({"n_epochs": 0, "n_epochs_decay": 0, "max_steps": 7}, "epochs") == {
        "max_steps": 0, "minutes": 0.0, "n_epochs": 100, "n_epochs_decay": 100}
    with pytest.raises(ConfigError, match="unknown budget"):
        with_budget(cfg, "hours")
