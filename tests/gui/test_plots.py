"""The plots panel: growing arrays, EMA, throttled redraws, which plots show for which run."""

from __future__ import annotations

import time

import numpy as np

from engine.config import preset
from engine.training.reports import EvalReport, ProgressReport
from gui.plots import Series, TrainingPlots, ema


def progress(step: int, **metrics) -> ProgressReport:
    base = dict(G_A=1.0, G_B=1.1, D_A=0.5, D_B=0.4, cycle_A=2.0, cycle_B=3.0, idt_A=0.25, idt_B=0.5)
    base.update(metrics)
    return ProgressReport(step, 100, 0, 2e-4, 10.0, 10.0, step * 0.5, 1.0, base)


def make(qtbot, **cfg) -> TrainingPlots:
    plots = TrainingPlots(preset("cpu-quick").with_values(cfg))
    qtbot.addWidget(plots)
    plots.show()
    return plots


def test_series_grows_by_doubling_and_truncates():
    s = Series(capacity=4)
    for i in range(1000):
        s.append(i, i / 10, float(i))
    assert len(s) == 1000 and s._buf.shape[1] == 1024
    assert np.array_equal(s.x("step"), np.arange(1000.0)) and s.x("time")[10] == 1.0
    s.truncate_after(499)
    assert len(s) == 500 and s.raw()[-1] == 499.0


def test_ema_matches_the_recursion_and_is_incremental():
    rng = np.random.default_rng(0)
    x = rng.normal(size=700)
    expected, acc = [], x[0]
    for v in x:
        acc = 0.9 * acc + 0.1 * v
        expected.append(acc)
    assert np.allclose(ema(x, 0.9), expected)
    s = Series()
    s.set_alpha(0.9)
    for i, v in enumerate(x[:300]):
        s.append(i, i, v)
    s.smoothed()
    for i, v in enumerate(x[300:], 300):
        s.append(i, i, v)
    assert np.allclose(s.smoothed(), expected)


def test_losses_sum_cycle_and_identity_and_axis_can_be_time(qtbot):
    plots = make(qtbot)
    plots.smoothing.setValue(0)
    for step in range(1, 6):
        plots.add_progress(progress(step))
    plots.flush()
    x, y = plots.curves["cycle"].getOriginalDataset()
    assert list(x) == [1, 2, 3, 4, 5] and np.allclose(y, 5.0)
    assert np.allclose(plots.curves["identity"].getOriginalDataset()[1], 0.75)
    plots.axis_box.setCurrentIndex(plots.axis_box.findData("time"))
    plots.flush()
    assert np.allclose(plots.curves["G_A"].getOriginalDataset()[0], [0.5, 1.0, 1.5, 2.0, 2.5])
    plots.toggles["D_A"].setChecked(False)
    assert not plots.curves["D_A"].isVisible() and plots.curves["D_B"].isVisible()


def test_wasserstein_plots_and_the_note(qtbot):
    plots = make(qtbot)
    assert plots.w_note.isVisible() and "lsgan" in plots.w_note.text() and "wgan-gp" in plots.w_note.text()
    assert not plots.plot_widgets["w"].isVisible()
    plots.set_config(preset("cpu-quick").with_values(gan_mode="wgan-gp"))
    assert not plots.w_note.isVisible() and plots.plot_widgets["w"].isVisible()
    assert plots.plot_widgets["gp"].isVisible()
    plots.reset(preset("cpu-quick").with_values(gan_mode="wgan-clip"))
    assert plots.plot_widgets["w"].isVisible() and not plots.plot_widgets["gp"].isVisible()
    plots.add_progress(progress(1, w_A=0.3, w_B=0.2))
    plots.add_eval(EvalReport(1, 0.5, {"w_A_val": 0.25, "w_B_val": 0.15}))
    plots.flush()
    assert plots.shown_count("w_A") == 1 and plots.shown_count("w_A_val") == 1


def test_quality_plot_appears_with_ground_truth_metrics(qtbot):
    plots = make(qtbot)
    assert not plots.plot_widgets["quality"].isVisible()
    plots.add_eval(EvalReport(10, 5.0, {"psnr_AtoB": 18.0, "psnr_BtoA": 17.0, "psnr_cycle": 25.0,
                                        "psnr_identity": 12.0}))
    plots.flush()
    assert plots.plot_widgets["quality"].isVisible()
    assert plots.shown_count("psnr_AtoB") == 1 and plots.shown_count("psnr_identity") == 1


def test_redraws_are_throttled_and_a_long_run_stays_cheap(qtbot, monkeypatch):
    plots = make(qtbot)
    curve = plots.curves["G_A"]
    assert curve.opts["autoDownsample"] and curve.opts["downsampleMethod"] == "peak" and curve.opts["clipToView"]
    calls = []
    real = plots._redraw
    monkeypatch.setattr(plots, "_redraw", lambda: (calls.append(1), real()))
    plots._throttle._callback = plots._redraw
    t0 = time.perf_counter()
    for step in range(1, 2001):
        plots.add_progress(progress(step))
        if step % 200 == 0:
            qtbot.wait(30)
    qtbot.wait(150)
    elapsed = time.perf_counter() - t0
    assert plots.shown_count("G_A") == 2000
    assert len(calls) <= elapsed * 10 + 2  # at most 10 redraws a second

    rows = [{"type": "progress", "step": i, "time": i * 0.01, "G_A": float(np.sin(i / 100))}
            for i in range(2001, 100001)]
    plots.load_rows(rows)
    t0 = time.perf_counter()
    plots.flush()
    qtbot.wait(10)
    assert plots.shown_count("G_A") == 100000
    assert time.perf_counter() - t0 < 3.0
