"""The plots panel: growing arrays, EMA, throttled redraws, which plots show for which run."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt

from engine.config import preset
from engine.training.reports import EvalReport, ProgressReport
from gui.plots import _SPEC, TrainingPlots
from gui.series import Series, ema


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
    # The key is in the title, as in the small plots: no legend lies over the curves.
    assert plots._items["loss"].legend is None
    assert all(key in plots.title("loss") for key in ("G_A", "G_B", "D_A", "D_B", "cycle", "identity"))


def monitor(step: int, best: int, *, grad_b: float = 1.0, **extra) -> EvalReport:
    """An evaluation with the W monitor's readings: A→B from 2.0 (identity) to 0.4 (floor), B→A 3.0 to 0.6."""
    m = {"w_mon_best_step": float(best)}
    for way, start, floor, w, grad in (("AtoB", 2.0, 0.4, 0.4 + 1.6 * 10 / step, 1.0), ("BtoA", 3.0, 0.6,
                                                                                       0.6 + 2.4 * 20 / step, grad_b)):
        m.update({f"w_mon_{way}": w, f"w_mon_lo_{way}": w - 0.1, f"w_mon_hi_{way}": w + 0.1, f"w_mon_grad_{way}": grad,
                  f"w_mon_start_{way}": start, f"w_mon_floor_{way}": floor,
                  f"w_mon_remaining_{way}": (w - floor) / (start - floor), f"sliced_{way}": w / 2, f"emd_{way}": w})
    m.update(extra)
    return EvalReport(step, step * 0.5, m)


def test_the_w_monitor_plot_is_there_for_every_objective(qtbot):
    plots = make(qtbot)  # lsgan
    assert plots.plot_widgets["w"].isVisible() and plots.w_plot.title_label.isVisible()
    assert "no reading yet" in plots.title("w") and not plots.critic_shown
    plots.set_config(preset("cpu-quick").with_values(monitor=False))
    plots.flush()
    assert "off" in plots.title("w")
    for mode in ("vanilla", "wgan-gp", "wgan-clip"):
        plots.set_config(preset("cpu-quick").with_values(gan_mode=mode))
        assert plots.plot_widgets["w"].isVisible()
        assert plots.critic_shown == mode.startswith("wgan")
        assert plots.plot_widgets["gp"].isVisible() == (mode == "wgan-gp")


def test_w_monitor_curves_band_levels_title_and_best_star(qtbot):
    plots = make(qtbot)
    for step in (50, 100, 150, 200):
        plots.add_eval(monitor(step, best=100 if step >= 100 else 50))
    plots.flush()
    x, y = plots.curves["mon_AtoB"].getOriginalDataset()
    assert list(x) == [50, 100, 150, 200] and np.allclose(y, [0.72, 0.56, 0.4 + 1.6 / 15, 0.48])
    assert plots.shown_count("mon_BtoA") == 4
    # The 95 % band: its two edges hold the interval, and the fill between them has an area.
    assert np.allclose(plots.curves["mon_lo_AtoB"].getOriginalDataset()[1], y - 0.1)
    assert np.allclose(plots.curves["mon_hi_AtoB"].getOriginalDataset()[1], y + 0.1)
    for way in ("AtoB", "BtoA"):
        area = plots.w_plot.bands[way].path().boundingRect()
        assert area.left() == 50 and area.right() == 200 and area.height() > 0.2
    # Dashed reference levels per direction: the identity (start) and the estimator's floor.
    levels = {k: (line.value(), line.isVisible()) for k, line in plots.w_plot.level_lines.items()}
    assert levels == {("AtoB", "start"): (2.0, True), ("AtoB", "floor"): (0.4, True),
                      ("BtoA", "start"): (3.0, True), ("BtoA", "floor"): (0.6, True)}
    assert all(line.pen.style() == Qt.PenStyle.DashLine for line in plots.w_plot.level_lines.values())
    # The title, from the latest evaluation (step 200): B→A's share of the way left; A→B's interval reaches its
    # floor, so words say so instead of a share that would read "done" (``Reading.standing``).
    title = plots.title("w")
    assert "W monitor" in title and "B→A</span> 10 % of the way left" in title
    assert "A→B</span> the monitor can no longer tell translations from real images at this size" in title
    assert "not trustworthy" not in title and "best: step 100" in title
    # The star sits on both directions' points of the best step.
    sx, sy = plots.w_plot.best_marker.getData()
    assert list(sx) == [100, 100] and np.allclose(sy, [0.56, 1.08]) and plots.best_step == 100
    assert plots.w_plot.best_marker.opts["symbol"] == "star"
    # On the time axis the star moves with its points.
    plots.axis_box.setCurrentIndex(plots.axis_box.findData("time"))
    plots.flush()
    assert list(plots.w_plot.best_marker.getData()[0]) == [50.0, 50.0]
    # Each direction's star sits at its own pick where best.pt holds generators of two steps.
    plots.axis_box.setCurrentIndex(plots.axis_box.findData("step"))
    plots.add_eval(monitor(250, best=250, w_mon_best_step_AtoB=150.0, w_mon_best_step_BtoA=250.0))
    plots.flush()
    sx, sy = plots.w_plot.best_marker.getData()
    assert list(sx) == [150, 250] and np.allclose(sy, [0.4 + 1.6 / 15, 0.6 + 2.4 * 20 / 250])
    assert "best: A→B of step 150, B→A of step 250" in plots.title("w") and plots.best_step == 250


def structure(step: int, floor: float = 0.2) -> dict[str, float]:
    """The structure reading of both directions with its identity level (1.5) and its floor of real target samples
    (``floor``, top 0.3): 1.2 at step 100, 0.9 at step 200."""
    s = 1.5 - 0.3 * step / 100
    return {k: v for way in ("AtoB", "BtoA") for k, v in (
        (f"structure_{way}", s), (f"structure_lo_{way}", s - 0.05), (f"structure_hi_{way}", s + 0.05),
        (f"structure_start_{way}", 1.5), (f"structure_floor_{way}", floor), (f"structure_floor_hi_{way}", 0.3))}


def test_the_w_plot_draws_the_structure_reading_where_it_has_its_floor(qtbot):
    """A run whose monitor measured the structure reading's floor: the curve, its band, the dashed levels, the axis
    and the title are the structure reading's (``Reading.headline``), not the critic's patch W; a row without that
    floor (an older run) is drawn by the patch W as before."""
    plots = make(qtbot)
    for step in (100, 200):
        plots.add_eval(monitor(step, best=step, **structure(step)))
    plots.flush()
    x, y = plots.curves["mon_AtoB"].getOriginalDataset()
    assert list(x) == [100, 200] and np.allclose(y, [1.2, 0.9])
    assert np.allclose(plots.curves["mon_hi_BtoA"].getOriginalDataset()[1], [1.25, 0.95])
    levels = {k: line.value() for k, line in plots.w_plot.level_lines.items()}
    assert levels == {("AtoB", "start"): 1.5, ("AtoB", "floor"): 0.2, ("BtoA", "start"): 1.5, ("BtoA", "floor"): 0.2}
    assert plots._items["w"].getAxis("left").labelText == "sliced W₁"
    # (0.9 − 0.2) / (1.5 − 0.2): the structure reading's share; the critic's W would read 7 % and 10 %.
    assert plots.title("w").count("54 % of the way left") == 2
    sx, sy = plots.w_plot.best_marker.getData()
    assert list(sx) == [200, 200] and np.allclose(sy, [0.9, 0.9])  # the star on the curve drawn
    plots.reset(preset("cpu-quick"))
    plots.add_eval(monitor(200, best=200, **{k: v for k, v in structure(200).items() if "floor" not in k}))
    plots.flush()
    assert np.allclose(plots.curves["mon_AtoB"].getOriginalDataset()[1], [0.48])  # the patch W
    assert plots.w_plot.level_lines[("AtoB", "floor")].value() == 0.4
    assert plots._items["w"].getAxis("left").labelText == "W₁ (patches)"


def test_an_untrustworthy_estimate_is_said_in_the_title(qtbot):
    plots = make(qtbot)
    plots.add_eval(monitor(100, best=100, grad_b=2.4))
    plots.flush()
    title = plots.title("w")
    assert "B→A not trustworthy" in title and "2.40" in title and "A→B not trustworthy" not in title
    plots.add_eval(monitor(200, best=100))
    plots.flush()
    assert "not trustworthy" not in plots.title("w")


def test_wasserstein_objectives_add_the_training_critic(qtbot):
    plots = make(qtbot, gan_mode="wgan-clip")
    assert plots.critic_shown and plots._items["w"].getAxis("right").isVisible()
    assert plots._items["w"].getAxis("right").labelText == "training critic"
    plots.add_progress(progress(1, w_A=0.003, w_B=0.002))  # clipping: K·W, K ≪ 1, so an axis of its own
    plots.add_eval(monitor(1, best=1, w_A_val=0.0025, w_B_val=0.0015))
    plots.flush()
    assert plots.shown_count("w_A") == 1 and plots.shown_count("w_A_val") == 1 and plots.shown_count("mon_AtoB") == 1
    assert plots.curves["w_A_val"].getViewBox() is plots._views["critic"]
    assert plots.curves["mon_AtoB"].getViewBox() is plots._views["w"]
    assert "training critic" in plots.title("w") and "training critic" in _SPEC["w_A_val"].label
    lo, hi = plots._views["critic"].viewRange()[1]
    assert lo <= 0.0015 and 0.003 <= hi < 0.01  # its own scale, not the monitor's
    plots.reset(preset("cpu-quick"))
    plots.flush()
    assert not plots.critic_shown and plots.best_step is None and "no reading yet" in plots.title("w")
    assert not any(line.isVisible() for line in plots.w_plot.level_lines.values())


def test_load_rows_rebuilds_the_w_plot(qtbot):
    rows = [{"type": "progress", "step": s, "time": s * 0.5, **progress(s).metrics} for s in range(1, 201)]
    rows += [{"type": "eval", "step": r.step, "time": r.elapsed_s, **r.metrics}
             for r in (monitor(100, best=100), monitor(200, best=100, grad_b=0.2))]
    plots = make(qtbot)
    plots.load_rows(rows)
    plots.flush()
    assert plots.shown_count("G_A") == 200
    assert plots.shown_count("mon_AtoB") == 2 and plots.shown_count("mon_hi_BtoA") == 2
    assert not plots.w_plot.bands["BtoA"].path().isEmpty()
    floor = plots.w_plot.level_lines[("BtoA", "floor")]
    assert floor.value() == 0.6 and floor.isVisible()
    assert list(plots.w_plot.best_marker.getData()[0]) == [100, 100]
    title = plots.title("w")
    assert "A→B</span> the monitor can no longer tell" in title and "B→A not trustworthy" in title
    # A run resumed from before its best step: that point is gone, and so is the star.
    plots.truncate_after(50)
    plots.flush()
    assert plots.shown_count("mon_AtoB") == 0 and len(plots.w_plot.best_marker.getData()[0]) == 0


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


def test_the_reference_levels_labels_stay_inside_the_w_plot(qtbot):
    """The identity's label sits above its line and the floor's below: when they are the highest and lowest
    things drawn, the view leaves them a text line's room (they were cut off at the plot's edges), also after
    the view is made shorter (a notice appearing above the plots)."""
    plots = make(qtbot)
    plots.resize(900, 500)
    for step in (50, 100):
        plots.add_eval(monitor(step, best=50))
    plots.flush()
    view = plots._views["w"]

    def labels_inside() -> None:
        qtbot.wait(50)  # laid out
        box = view.sceneBoundingRect()  # the plot's area on screen, in pixels
        for (way, level), line in plots.w_plot.level_lines.items():
            line.label.updatePosition()
            label = line.label.sceneBoundingRect()
            assert box.top() <= label.top() and label.bottom() <= box.bottom(), (way, level, label, box)

    labels_inside()
    lo, hi = view.viewRange()[1]  # B→A's identity (3.0) is the highest level: a text line's room above it
    assert (hi - 3.0) / (hi - lo) * view.height() >= 10
    plots.resize(900, 260)
    labels_inside()
