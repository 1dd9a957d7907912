"""The hyperparameter form: generated from field_specs, round-trips, validates inline, blocks Train."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit

from engine.config import BUDGETS, GROUP_LABELS, Config, budget_of, field_specs, preset
from gui.config_form import ConfigForm

from .conftest import quick_config


def make_form(qtbot, config=None):
    form = ConfigForm(config or preset("cpu-quick"))
    qtbot.addWidget(form)
    return form


def test_every_field_has_an_editor_a_tooltip_and_its_group(qtbot):
    form = make_form(qtbot)
    assert [s.header.text() for s in form._sections.values()] == list(GROUP_LABELS.values())
    for spec in field_specs():
        editor = form.editor(spec.name)
        expected = QComboBox if spec.choices is not None else QCheckBox if spec.type is bool else QLineEdit
        assert isinstance(editor, expected), spec.name
        tip = editor.toolTip()
        assert spec.help.split(".")[0][:30].replace("&", "&amp;") in tip or spec.help[:20] in tip, spec.name
        assert spec.describe_allowed() in tip


def test_round_trip_fields_to_config_to_form(qtbot):
    form = make_form(qtbot)
    form.editor("ngf").setText("48")
    form.editor("lr").setText("0.0003")
    form.editor("gan_mode").setCurrentIndex(form.editor("gan_mode").findData("wgan-gp"))
    form.editor("lambda_gp").setText("5.5")
    form.editor("flip").setChecked(False)
    form.editor("crop_size").setText("60")
    form.editor("time_limit").setText("1e-3")
    cfg = form.config()
    assert (cfg.model.ngf, cfg.optim.lr, cfg.objective.gan_mode, cfg.objective.lambda_gp) == (48, 3e-4, "wgan-gp", 5.5)
    assert (cfg.data.flip, cfg.data.crop_size, cfg.schedule.time_limit) == (False, 60, 0.001)

    other = make_form(qtbot, preset("paper"))
    other.set_config(cfg)
    assert other.config() == cfg
    assert Config.from_json(other.config().to_json()) == cfg
    for c in (preset("paper"), quick_config(gan_mode="wgan-clip", clip_value=0.02, lr=1.5e-4)):
        other.set_config(c)
        assert other.config() == c


def test_invalid_values_are_marked_inline_and_block_train(qtbot, window):
    form, train = window.form, window.controls.train
    assert train.isEnabled()
    lr = form.editor("lr")
    lr.setText("fast")
    assert not form.is_valid and not train.isEnabled()
    assert lr.property("invalid") is True
    err = form._fields["lr"].error
    assert not err.isHidden() and "number" in err.text()
    assert "lr" in window.controls.train_problem
    lr.setText("2")  # out of range
    assert not form.is_valid and "between" in err.text()
    lr.setText("0.0002")
    assert form.is_valid and train.isEnabled() and lr.property("invalid") is False and err.isHidden()

    # A cross-field rule (crop_size a multiple of 4) lands on the field it names.
    form.editor("crop_size").setText("30")
    assert not form.is_valid and "multiple of 4" in form._fields["crop_size"].error.text()
    assert not train.isEnabled()
    form.editor("crop_size").setText("32")
    assert train.isEnabled()


def test_wasserstein_fields_show_only_for_their_objective(qtbot):
    form = make_form(qtbot)
    mode = form.editor("gan_mode")
    for gan_mode, shown in (("lsgan", set()), ("wgan-gp", {"lambda_gp", "n_critic", "wgan_defaults"}),
                            ("wgan-clip", {"clip_value", "n_critic", "wgan_defaults"}), ("vanilla", set())):
        mode.setCurrentIndex(mode.findData(gan_mode))
        for name in ("clip_value", "lambda_gp", "n_critic", "wgan_defaults"):
            assert form.is_field_shown(name) == (name in shown), (gan_mode, name)
    assert form.is_field_shown("lambda_cyc")


def test_field_visibility_follows_the_engine_metadata(qtbot):
    form = make_form(qtbot)
    mode = form.editor("gan_mode")
    gan_modes = next(s.choices for s in field_specs() if s.name == "gan_mode")
    for budget in BUDGETS:
        form.set_budget(budget)
        for gan_mode in gan_modes:
            mode.setCurrentIndex(mode.findData(gan_mode))
            assert budget_of(form.config()) == budget
            for spec in field_specs():
                expected = spec.applies_to(gan_mode) and spec.budget in (None, budget)
                assert form.is_field_shown(spec.name) == expected, (budget, gan_mode, spec.name)


def test_train_for_chooses_the_budget_and_shows_only_its_fields(qtbot):
    form = make_form(qtbot)
    box = form.budget_box
    assert [box.itemText(i) for i in range(box.count())] == list(BUDGETS)
    assert box.currentData() == "epochs" and form.preset_box.currentData() == "cpu-quick"
    budget_fields = {s.name: s.budget for s in field_specs() if s.budget is not None}
    assert budget_fields == {"n_epochs": "epochs", "n_epochs_decay": "epochs", "max_steps": "steps",
                             "minutes": "minutes"}

    def shown() -> set[str]:
        return {n for n in budget_fields if form.is_field_shown(n)}

    assert shown() == {"n_epochs", "n_epochs_decay"}
    form.set_budget("minutes")
    cfg = form.config()
    assert shown() == {"minutes"} and cfg.schedule.minutes > 0 and cfg.schedule.max_steps == 0
    assert cfg.schedule.n_epochs == 5  # the epochs still shape the learning-rate decay
    form.editor("minutes").setText("3")
    assert form.config().schedule.minutes == 3.0 and form.preset_box.currentData() == "custom"

    form.set_budget("steps")
    cfg = form.config()
    assert shown() == {"max_steps"} and cfg.schedule.max_steps > 0 and cfg.schedule.minutes == 0
    form.editor("max_steps").setText("750")
    form.set_budget("minutes")  # a switch back restores what the budget had
    assert form.config().schedule.minutes == 3.0 and form.config().schedule.max_steps == 0
    form.set_budget("steps")
    assert form.config().schedule.max_steps == 750

    form.set_budget("epochs")
    cfg = form.config()
    assert (cfg.schedule.max_steps, cfg.schedule.minutes) == (0, 0.0) and box.currentData() == "epochs"
    assert cfg == preset("cpu-quick") and form.preset_box.currentData() == "cpu-quick"


def test_train_for_follows_configs_and_needs_a_length(qtbot):
    form = make_form(qtbot)
    form.set_values(max_steps=100)
    assert form.budget_box.currentData() == "steps" and form.is_field_shown("max_steps")
    form.set_config(preset("cpu-quick").with_values(minutes=2.5, max_steps=100))  # minutes win
    assert form.budget == "minutes" and form.is_field_shown("minutes") and not form.is_field_shown("max_steps")
    form.editor("minutes").setText("0")  # training for 0 minutes: not a budget
    assert not form.is_valid and "above 0" in form.errors()["minutes"]
    assert form.budget == "minutes" and form.is_field_shown("minutes")  # the row stays while it is edited
    form.editor("minutes").setText("1.5")
    assert form.is_valid and form.config().schedule.minutes == 1.5
    for name in ("paper", "cpu-quick"):  # presets are recognised, and train by epochs
        form.set_config(preset(name))
        assert form.preset_box.currentData() == name and form.budget == "epochs"


def test_cross_field_errors_land_on_the_field_they_name(qtbot):
    form = make_form(qtbot)
    form.set_values(load_size=64, crop_size=128)
    assert not form.is_valid and "must not exceed load_size=64" in form.errors()["crop_size"]
    form.set_values(load_size=72, crop_size=8, n_layers_D=3)
    assert set(form.errors()) == {"n_layers_D"} and "at most 2" in form.errors()["n_layers_D"]
    assert form.form_error.isHidden()
    form.set_values(n_layers_D=2)
    assert form.is_valid and not form.errors()


def test_presets_and_custom(qtbot):
    form = make_form(qtbot)
    box = form.preset_box
    assert box.currentData() == "cpu-quick"
    form.editor("ngf").setText("40")
    assert box.currentData() == "custom"
    box.setCurrentIndex(box.findData("paper"))
    box.activated.emit(box.currentIndex())
    assert form.config() == preset("paper") and box.currentData() == "paper"


def test_device_choices_disable_what_is_not_there(qtbot):
    from engine.devices import available_devices

    form = make_form(qtbot)
    box = form.editor("device")
    have = set(available_devices())
    for i in range(box.count()):
        dev = box.itemData(i)
        enabled = box.model().item(i).isEnabled()
        assert enabled == (dev == "auto" or dev in have), dev
        if not enabled:
            assert "not available" in box.itemText(i)


def test_advanced_fields_sit_in_a_collapsed_part(qtbot):
    form = make_form(qtbot)
    form.show()
    assert not form.editor("cache_mb").isVisible()  # Data → Advanced, folded
    assert form.editor("crop_size").isVisible()
