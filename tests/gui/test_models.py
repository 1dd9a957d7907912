"""Reference .pth generators open on the Translate tab; Export model… and the TensorBoard command work."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.io.translate import TranslationModel
from engine.models.networks import ResnetGenerator
from gui.export_dialog import ExportDialog
from gui.status import tensorboard_command
from gui.util import send_drop

from .conftest import quick_config
from .test_translate import tiny_model, write_png

TIMEOUT = 60000


def reference_pth(path: Path, ngf: int = 8, n_blocks: int = 2) -> Path:
    """A generator saved as the reference implementation does: ``torch.save(net.state_dict(), 'latest_net_G.pth')``."""
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, ngf, n_blocks).eval()
    torch.save(net.state_dict(), path)
    return path


def test_open_model_takes_a_reference_pth_and_translates_a_to_b_only(qtbot, window, errors, tmp_path, monkeypatch):
    pth = reference_pth(tmp_path / "latest_net_G.pth")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(pth), ""))
    panel = window.translate
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT) as loaded:
        window.open_model_action.trigger()
    model = loaded.args[0]
    assert model.directions == ["AtoB"] and model.source == str(pth)
    assert "A→B only" in panel.model_label.text() and "latest_net_G.pth" in panel.model_label.text()
    box = panel.direction
    assert box.currentData() == "AtoB" and not box.model().item(box.findData("BtoA")).isEnabled()
    src = write_png(tmp_path / "in.png", 30, 22)
    with qtbot.waitSignal(panel.translated, timeout=TIMEOUT):
        assert send_drop(panel, [str(src)])
    item = panel.items[0]
    assert item.output is not None and (item.output.width(), item.output.height()) == (30, 22)
    assert "A → B" in item.caption.text() and not errors


def test_a_run_folder_chosen_through_its_config_json_opens_as_the_model(qtbot, tmp_path, monkeypatch):
    from gui.translate_panel import TranslatePanel
    from gui.translate_paths import model_path

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    assert model_path(run / "config.json") == str(run) and model_path(run) == str(run)
    assert model_path(tmp_path / "nothing.txt") is None
    panel = TranslatePanel()
    qtbot.addWidget(panel)
    requested = []
    monkeypatch.setattr(panel, "load_model", requested.append)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(run / "config.json"), ""))
    panel.open_button.click()
    assert requested == [str(run)]


def test_dropping_a_model_file_then_images_uses_that_model(qtbot, tmp_path):
    from gui.translate_panel import TranslatePanel

    panel = TranslatePanel()
    qtbot.addWidget(panel)
    pth = reference_pth(tmp_path / "latest_net_G_A.pth")
    src = write_png(tmp_path / "a.png", 17, 13)
    with qtbot.waitSignal(panel.model_changed, timeout=TIMEOUT):
        assert send_drop(panel, [str(pth), str(src)])
    qtbot.waitUntil(lambda: panel.items[0].output is not None and not panel.busy, timeout=TIMEOUT)
    assert panel.model.source == str(pth)


def test_export_dialog_writes_safetensors_off_the_gui_thread(qtbot, tmp_path):
    model = TranslationModel.load(reference_pth(tmp_path / "latest_net_G.pth"))
    dlg = ExportDialog(model, folder=str(tmp_path))
    qtbot.addWidget(dlg)
    box = dlg.direction_box
    assert box.currentData() == "AtoB" and not box.model().item(box.findData("BtoA")).isEnabled()
    assert dlg.path_edit.text() == str(tmp_path / "latest_net_G_AtoB.safetensors")
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("onnx"))
    assert dlg.path_edit.text().endswith("latest_net_G_AtoB.onnx")  # follows the format until edited
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("safetensors"))
    with qtbot.waitSignal(dlg.exported, timeout=TIMEOUT) as done:
        assert dlg.export()
    out = Path(done.args[0])
    assert out.is_file() and "Wrote" in dlg.status.text()
    again = TranslationModel.load(out)
    assert again.directions == ["AtoB"]
    for a, b in zip(again.G.state_dict().values(), model.G.state_dict().values()):
        assert torch.equal(a, b)


def test_export_without_the_onnx_extra_shows_the_install_hint(qtbot, tmp_path, errors, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now raises ImportError
    dlg = ExportDialog(tiny_model(), folder=str(tmp_path))
    qtbot.addWidget(dlg)
    dlg.format_box.setCurrentIndex(dlg.format_box.findData("onnx"))
    dlg.direction_box.setCurrentIndex(dlg.direction_box.findData("BtoA"))
    assert dlg.export()
    qtbot.waitUntil(lambda: dlg.outcome is not None, timeout=TIMEOUT)
    title, text, details = errors[-1]
    assert title == "Export needs an optional package" and "pip install -e .[export]" in text
    assert "\n" not in text and not details  # one line, no traceback
    assert not list(tmp_path.glob("*.onnx")) and dlg.export_button.isEnabled()


def test_file_menu_export_uses_the_translate_tabs_model(qtbot, window, errors):
    texts = [a.text() for a in window.file_menu.actions()]
    assert texts.index("Export model…") == texts.index("Open model…") + 2  # between the separators
    window.export_model_action.trigger()
    assert errors[-1][0] == "No model to export"
    window.translate.set_model(tiny_model(("AtoB",)))
    window.export_model_action.trigger()
    dlg = window._export_dialog
    assert dlg is not None and dlg.isVisible() and dlg.model is window.translate.model
    dlg.close()


def test_the_tensorboard_command_shows_for_runs_that_log_to_tensorboard(qtbot, window, tmp_path):
    from gui.training_controller import RunStarted

    line = window.tensorboard
    assert line.isHidden()
    run = tmp_path / "my run"
    info = RunStarted(str(run), quick_config(tensorboard=True), "cpu", 0, 10, "", "")
    window.controller.started.emit(info)
    assert not line.isHidden() and line.command.isReadOnly()
    assert line.command.text() == tensorboard_command(run) == f"tensorboard --logdir '{run / 'tb'}'"
    line.copy_button.click()
    assert QApplication.clipboard().text() == line.command.text()
    # Opening a run without TensorBoard hides it again.
    other = tmp_path / "plain"
    other.mkdir()
    (other / "config.json").write_text(quick_config().to_json())
    assert window.open_run(str(other))
    assert line.isHidden()


@pytest.mark.parametrize("fmt", ["torchscript"])
def test_export_torchscript_through_the_dialog(qtbot, tmp_path, fmt):
    dlg = ExportDialog(tiny_model(), folder=str(tmp_path))
    qtbot.addWidget(dlg)
    dlg.format_box.setCurrentIndex(dlg.format_box.findData(fmt))
    with qtbot.waitSignal(dlg.exported, timeout=TIMEOUT) as done:
        dlg.export()
    assert Path(done.args[0]).suffix == ".pt" and Path(done.args[0]).stat().st_size > 0
