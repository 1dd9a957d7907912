"""Help → System check…: the doctor's report, run on a worker thread, shown in a copyable monospace box."""

from __future__ import annotations

import threading

from PySide6.QtGui import QFontInfo, QGuiApplication

from engine.tools import doctor
from engine.tools.doctor import Check

TIMEOUT = 20000
FAKE = [Check("engine", True, "CycleGAN Studio 0.0, Python 3.11"),
        Check("device", True, "cpu: x86_64, 2 threads"),
        Check("paper preset", False, "failed: out of memory")]


def fake_doctor(monkeypatch, gate: threading.Event | None = None):
    calls = []

    def run_doctor(device="auto", *, paper_step=True):
        calls.append((device, paper_step, threading.current_thread() is threading.main_thread()))
        if gate is not None:
            gate.wait(10)
        return list(FAKE)

    monkeypatch.setattr(doctor, "run_doctor", run_doctor)
    return calls


def test_system_check_runs_the_doctor_off_the_gui_thread_and_shows_its_report(qtbot, window, monkeypatch):
    gate = threading.Event()
    calls = fake_doctor(monkeypatch, gate)
    assert [a.text() for a in window.help_menu.actions()][0] == "System check…"
    window.system_check_action.trigger()
    dlg = window._system_check
    assert dlg.isVisible() and dlg.state_label.text() == "Checking…" and dlg.busy_bar.isVisible()
    assert not dlg.copy_button.isEnabled()
    window.system_check_action.trigger()  # again while it runs: the same dialog, no second job
    assert window._system_check is dlg
    with qtbot.waitSignal(dlg.checked, timeout=TIMEOUT) as done:
        gate.set()
    assert calls == [("auto", True, False)]  # the paper step included, on the worker thread
    assert done.args[0] == doctor.format_report(FAKE) == dlg.text.toPlainText()
    assert dlg.state_label.text() == "1 of 3 checks did not pass" and dlg.busy_bar.isHidden()
    assert dlg.text.isReadOnly() and QFontInfo(dlg.text.font()).fixedPitch()
    dlg.copy_button.click()
    assert QGuiApplication.clipboard().text() == doctor.format_report(FAKE)
    dlg.close()


def test_closing_the_window_during_a_system_check_waits_for_it_without_blocking(qtbot, window, monkeypatch):
    gate = threading.Event()
    fake_doctor(monkeypatch, gate)
    window.system_check_action.trigger()
    dlg = window._system_check
    assert dlg.busy
    assert not window.close()  # refused for now: the checks cannot be cut short
    assert window.isVisible()
    gate.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=TIMEOUT)  # closes by itself once they are done
    assert not dlg.busy and dlg.jobs.wait(0)
