"""The Distances tab: divergence curves against θ, the sample plot, and a critic trained live on a worker thread."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from engine.wasserstein.distances import CASES
from gui.critic_job import CriticController, CriticJob
from gui.distances_panel import DistancesPanel, DistancesSettings, isolated_points

TIMEOUT = 60000
FAST = dict(samples=2000, steps=60)  # a critic in well under a second


def curve(panel, key):
    x, y = panel.divergences.curves[key].getOriginalDataset()
    return np.asarray(x), np.asarray(y)


@pytest.fixture
def panel(qtbot):
    p = DistancesPanel(DistancesSettings(**FAST))
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    return p


def test_only_w_is_continuous_at_theta_0_and_kl_is_marked_infinite(panel):
    x, w = curve(panel, "w")
    assert x[0] == -2.0 and x[-1] == 2.0 and 0.0 in x
    np.testing.assert_allclose(w, np.abs(x))  # W = |θ|, drawn without a gap
    zero = int(np.flatnonzero(x == 0.0)[0])
    for key in ("tv", "js", "kl"):
        _, y = curve(panel, key)
        assert math.isnan(y[zero]), f"{key} must not be drawn through its value at θ = 0"
        assert np.isfinite(np.delete(y, zero)).all()
    _, tv = curve(panel, "tv")
    _, js = curve(panel, "js")
    assert set(np.delete(tv, zero)) == {1.0} and np.allclose(np.delete(js, zero), math.log(2))
    # KL = ∞ for θ ≠ 0: drawn at the top of the plot and labelled so.
    _, kl = curve(panel, "kl")
    cap = np.delete(kl, zero)
    assert np.all(cap == cap[0]) and cap[0] > 2.0 and "∞" in panel.divergences.kl_text.toPlainText()
    # The values at θ = 0 itself are dots at 0 (W's needs none: it is on the curve).
    xs, ys = panel.divergences.dots.getData()
    assert len(xs) == 3 and set(xs) == {0.0} and set(ys) == {0.0}


def test_the_slider_moves_the_samples_the_marker_and_the_numbers(qtbot, panel):
    panel.set_param(0.5)
    panel.flush()
    assert panel.param == 0.5 and panel.divergences.param_line.value() == 0.5
    px, _ = panel.distributions.p_scatter.getData()
    qx, qy = panel.distributions.q_scatter.getData()
    assert set(px) == {0.0} and set(qx) == {0.5} and 0 <= qy.min() and qy.max() <= 1
    assert "W = 0.500" in panel.values_label.text() and "KL = ∞" in panel.values_label.text()
    panel.set_param(0.0)
    panel.flush()
    assert "TV = 0.000" in panel.values_label.text() and "KL = 0.000" in panel.values_label.text()
    # Redraws are throttled: many slider moves, at most one redraw until the timer fires.
    calls = []
    panel._redraw._callback = lambda: calls.append(1)
    for v in range(0, 400, 7):
        panel.param_slider.setValue(v)
    assert calls == []
    qtbot.waitUntil(lambda: calls == [1], timeout=2000)


def test_train_critic_plots_the_dual_live_then_the_heatmap(qtbot, panel):
    panel.set_param(1.0)
    batches = []
    panel.controller.progressed.connect(batches.append)
    with qtbot.waitSignal(panel.critic_finished, timeout=TIMEOUT) as done:
        panel.train_button.click()
        assert panel.busy and not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
        assert not panel.param_slider.isEnabled() and not panel.case_box.isEnabled()
    r = done.args[0]
    assert batches and all(isinstance(b, np.ndarray) and b.shape[1] == 2 for b in batches)
    # What arrived live is exactly the history, in order; the plot shows all of it.
    np.testing.assert_array_equal(np.concatenate(batches), r.history)
    assert len(r.history) == FAST["steps"] // 5 and panel.dual_points() == len(r.history)
    assert r.iterations == FAST["steps"] and not r.stopped and r.exact_w == 1.0
    assert 0.3 < r.w < 1.5  # 60 steps: on its way to W = 1
    assert panel.dual.exact_line.value() == 1.0
    # f over the plane: a 2-D heatmap in the view's coordinates, with a colour bar.
    img = panel.distributions.heatmap.image
    assert img is not None and img.shape == (96, 96) and panel.distributions.colorbar.isVisible()
    rect = panel.distributions.heatmap.mapRectToParent(panel.distributions.heatmap.boundingRect())
    assert rect.left() == pytest.approx(r.job.xlim[0]) and rect.right() == pytest.approx(r.job.xlim[1])
    # The critic separates P (x = 0) from Q (x = 1): f is higher on P's side.
    assert img[:, :48].mean() > img[:, 48:].mean()
    assert "exact W 1.0000" in panel.result_label.text()
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()

    # Moving θ afterwards clears the critic that belonged to the old θ.
    panel.set_param(-1.0)
    panel.flush()
    assert panel.result is None and panel.distributions.heatmap.image is None and panel.dual_points() == 0
    assert panel.dual.exact_line.value() == 1.0 and "changed" in panel.result_label.text()


def test_stop_ends_the_critic_early_and_it_is_still_measured(qtbot, panel):
    panel.steps_box.setValue(20000)
    with qtbot.waitSignal(panel.controller.progressed, timeout=TIMEOUT):
        panel.train()
    with qtbot.waitSignal(panel.critic_finished, timeout=TIMEOUT) as done:
        panel.stop_button.click()
    r = done.args[0]
    assert r.stopped and 0 < r.iterations < 20000 and math.isfinite(r.w)
    assert "Stopped" in panel.result_label.text()


def test_weight_clipping_gives_k_times_w_and_the_corrected_value(qtbot, panel):
    panel.method_box.setCurrentIndex(panel.method_box.findData("clip"))
    with qtbot.waitSignal(panel.critic_finished, timeout=TIMEOUT) as done:
        panel.train()
    r = done.args[0]
    assert r.job.method == "clip" and abs(r.w) < 0.05 * r.exact_w  # K ≪ 1
    assert r.corrected == pytest.approx(r.w / r.grad_norm)
    assert panel.dual.corrected_line.isVisible() and panel.dual.corrected_line.value() == pytest.approx(r.corrected)
    text = panel.result_label.text()
    assert "K·W" in text and "corrected" in text


def test_one_dimensional_cases_show_densities_and_f_as_a_curve(qtbot, panel):
    panel.set_case("gauss-shift", 2.0)
    panel.flush()
    assert panel.distributions.currentIndex() == 1 and panel.param_name.text() == "Δμ"
    x, p = panel.distributions.p_density.getData()
    _, q = panel.distributions.q_density.getData()
    assert x[np.argmax(p)] == pytest.approx(0.0, abs=0.1) and x[np.argmax(q)] == pytest.approx(2.0, abs=0.1)
    xs, w = curve(panel, "w")
    assert np.isfinite(w).all() and xs[0] == -3.0  # the case's own range; no jumps in the Gaussian case
    assert "W = 2.000" in panel.values_label.text()
    with qtbot.waitSignal(panel.critic_finished, timeout=TIMEOUT) as done:
        panel.train()
    r = done.args[0]
    assert r.grid is None and r.curve_f is not None
    fx, fy = panel.distributions.f_curve.getData()
    assert len(fx) == len(r.curve_x) and fy[np.argmin(np.abs(fx))] > fy[np.argmin(np.abs(fx - 2.0))]
    panel.set_case("gauss-scale")
    panel.flush()
    assert panel.param == 2.0 and panel.result is None and panel.dual_points() == 0
    fx, _ = panel.distributions.f_curve.getData()
    assert fx is None or len(fx) == 0


def counting_sampler(monkeypatch, name):
    """Replace case ``name`` by one whose sampler records the parameter of every call."""
    case, calls = CASES[name], []

    def sample(n, param, generator=None):
        calls.append(param)
        return case.sample(n, param, generator)

    monkeypatch.setitem(CASES, name, replace(case, sample=sample))
    return calls


def test_samples_are_drawn_once_per_value_not_on_every_redraw(monkeypatch, panel):
    calls = counting_sampler(monkeypatch, "parallel-lines")
    panel.set_param(0.5)
    for _ in range(5):  # e.g. the critic's progress redrawing the dual at 10 Hz
        panel._redraw.mark()
        panel.flush()
    assert calls == [0.5]
    px, _ = panel.distributions.p_scatter.getData()
    qx, _ = panel.distributions.q_scatter.getData()
    assert set(px) == {0.0} and set(qx) == {0.5}  # still showing them
    panel.set_param(-0.25)
    panel.flush()
    panel._redraw.mark()
    panel.flush()
    assert calls == [0.5, -0.25]


def test_one_dimensional_cases_draw_the_engines_densities_without_sampling(monkeypatch, panel):
    panel.set_case("uniform")  # the fixed axes sample each case once, on its first visit
    panel.flush()
    calls = counting_sampler(monkeypatch, "uniform")
    panel.set_param(3.0)
    panel.flush()
    assert calls == []
    x, p = panel.distributions.p_density.getData()
    _, q = panel.distributions.q_density.getData()
    ep, eq = CASES["uniform"].density(x, 3.0)
    np.testing.assert_array_equal(p, ep)
    np.testing.assert_array_equal(q, eq)
    assert panel.param_label.text() == "3.00"  # unsigned; the signed cases show +/−
    panel.set_case("gauss-shift", 1.0)
    assert panel.param_label.text() == "+1.00"


def test_the_case_note_is_shown_beside_its_numbers(panel):
    assert CASES["parallel-lines"].note in panel.values_label.text()
    panel.set_case("gauss-scale")
    assert "—" not in panel.values_label.text()


def test_isolated_points_finds_single_point_jumps_only():
    y = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 2.0, 3.0])
    assert list(isolated_points(y, 0.1)) == [2]


def test_controller_refuses_a_second_job_and_reports_bad_jobs(qtbot):
    c = CriticController()
    with pytest.raises(ValueError, match="unknown method"):
        CriticJob("parallel-lines", 1.0, "adam")
    job = CriticJob("parallel-lines", 0.5, "lp", steps=20000, samples=1000)
    with qtbot.waitSignal(c.finished, timeout=TIMEOUT):
        c.start(job)
        with pytest.raises(RuntimeError, match="already"):
            c.start(job)
        c.stop()
    assert not c.busy
    with qtbot.waitSignal(c.failed, timeout=TIMEOUT) as failed:
        c.start(CriticJob("gauss-scale", -1.0, "lp", steps=10, samples=100))  # σ₂ must be > 0
    assert "σ₂" in failed.args[0]


def test_closing_the_window_stops_and_joins_a_running_critic(qtbot):
    from gui.main_window import MainWindow

    from .conftest import quick_config

    w = MainWindow(quick_config(), persist=False)
    qtbot.addWidget(w)
    w.show()
    w.show_tab("distances")
    d = w.distances
    d.steps_box.setValue(20000)
    with qtbot.waitSignal(d.controller.progressed, timeout=TIMEOUT):
        d.train_button.click()
    w.close()
    assert d.controller.wait(0)  # already joined by closeEvent: nothing left running
    qtbot.waitUntil(lambda: not d.busy, timeout=5000)
