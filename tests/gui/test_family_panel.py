"""The family panel of an auto run: the candidates' bars with the kept one starred, why it was kept, and, where
the ResNet lost after a trial too short to judge it or was set aside, a button that sets it for the next run."""

from __future__ import annotations

from dataclasses import replace

from engine.training.family_choice import RESNET_JUDGED_STEPS, choose
from engine.training.reports import FamilyCandidate, FamilyChoiceReport
from gui.main_window import MainWindow

from .conftest import quick_config


def cand(family: str, score: float, steps: int) -> FamilyCandidate:
    return FamilyCandidate(family, score, score - 0.05, score + 0.05, {}, {}, steps, 10.0)


def report(candidates: tuple[FamilyCandidate, ...]) -> FamilyChoiceReport:
    chosen, resolved, reason = choose(list(candidates))
    return FamilyChoiceReport(300, candidates, chosen, resolved, reason, 30.0, 0.17)


def window(qtbot) -> MainWindow:
    w = MainWindow(quick_config(netG="auto"), persist=False)
    qtbot.addWidget(w)
    w.show()
    return w


def test_a_resnet_dropped_unjudged_can_be_set_for_the_next_run_with_one_click(qtbot):
    w = window(qtbot)
    panel = w.family
    panel.show_choice(report((cand("colour", 0.80, 260), cand("local", 0.77, 250), cand("resnet", 1.22, 12))))
    assert panel.chosen == "colour" and panel.bar_heights() == {"colour": 0.80, "local": 0.77, "resnet": 1.22}
    assert "trained only 12 steps" in panel.text.text() and "17 % of the budget" in panel.text.text()
    assert panel.pin.isVisible() and panel.pin.isEnabled()
    assert w.form.config().model.netG == "auto"
    panel.pin.click()
    assert w.form.config().model.netG == "resnet"  # the form now trains the ResNet next
    assert not panel.pin.isEnabled() and "now resnet in the form" in panel.text.text()
    # A new run of the panel's own starts clean.
    panel.show_record({"chosen": "colour", "reason": "colour came closest",
                       "candidates": [c.as_dict() for c in (cand("colour", 0.5, 200), cand("resnet", 0.9, 12))]})
    assert panel.pin.isVisible() and panel.pin.isEnabled()


def test_a_resnet_set_aside_within_reach_of_the_picture_keeping_families_can_be_set_too(qtbot):
    """The ResNet read closest, but the colour map came no farther from the target than the untranslated images in
    either direction: it is kept, and the button offers the ResNet for a change that draws new shapes."""
    w = window(qtbot)
    panel = w.family
    colour = replace(cand("colour", 0.95, 600), w={"AtoB": 0.9, "BtoA": 0.97}, start={"AtoB": 1.0, "BtoA": 1.0})
    resnet = replace(cand("resnet", 0.73, 130), w={"AtoB": 0.85, "BtoA": 0.6}, start={"AtoB": 1.0, "BtoA": 1.0})
    panel.show_choice(report((colour, resnet)))
    assert panel.chosen == "colour" and "re-draws every pixel" in panel.text.text()
    assert panel.pin.isVisible() and panel.pin.isEnabled()
    panel.pin.click()
    assert w.form.config().model.netG == "resnet"
    # Where the colour map moves away from the target in a direction, the ResNet is kept and no button shows;
    # an opened run's record is read by the same rule.
    panel.show_choice(report((replace(colour, w={"AtoB": 0.6, "BtoA": 1.3}), resnet)))
    assert panel.chosen == "resnet" and not panel.pin.isVisible()
    panel.show_record({"chosen": "colour", "reason": "colour came closest of the families that keep the picture",
                       "candidates": [colour.as_dict(), resnet.as_dict()]})
    assert panel.pin.isVisible()


def test_no_button_where_the_resnet_won_or_lost_a_fair_trial(qtbot):
    w = window(qtbot)
    panel = w.family
    panel.show_choice(report((cand("colour", 0.80, 260), cand("local", 0.77, 250),
                              cand("resnet", 1.22, RESNET_JUDGED_STEPS))))
    assert panel.isVisible() and not panel.pin.isVisible()
    panel.show_choice(report((cand("colour", 0.80, 260), cand("local", 0.77, 250), cand("resnet", 0.4, 12))))
    assert panel.chosen == "resnet" and not panel.pin.isVisible()
    panel.show_record(None)  # an opened run with its family set by hand
    assert not panel.isVisible()


def test_a_search_ended_at_the_early_reading_shows_the_two_families_tried_in_their_places(qtbot):
    """The ResNet won the early reading: the local generator was never tried, so its place on the chart stays empty
    and the text says why."""
    w = window(qtbot)
    panel = w.family
    rep = report((cand("colour", 1.05, 600), cand("resnet", 0.79, 130)))
    rep = FamilyChoiceReport(rep.step, rep.candidates, rep.chosen, rep.resolved,
                             rep.reason + "; it was already ahead after its trial, against the colour map's first two "
                             "shares, so the local generator (the colour map with a few pixels' reach) was not tried",
                             87.0, 0.145)
    panel.show_choice(rep)
    assert panel.chosen == "resnet" and panel.bar_heights() == {"colour": 1.05, "resnet": 0.79}
    assert list(panel.bars.opts["x"]) == [0, 2]  # colour, (local not tried), resnet
    assert list(panel.star.getData()[0]) == [2]
    assert "was not tried" in panel.text.text() and "14 % of the budget" in panel.text.text()
    assert not panel.pin.isVisible()
