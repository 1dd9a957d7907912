"""The monitor's proof against ground truth: rank correlation, the pick best.pt would make, the table."""

import math

import pytest
from PIL import Image

from engine.tools.charts import plot_monitor
from engine.tools.monitor_proof import done_early, proof_of, proof_table, spearman, standing_series, standing_table
from engine.tools.quality import measure
from engine.tools.tasks import get_task
from engine.wasserstein.monitor import AT_FLOOR, Reading
from tests.helpers import tiny_config


def test_spearman_matches_hand_computed_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair: 1 − 6·Σd² / (n(n² − 1)) = 1 − 6·2 / 60
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties share their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3) → Pearson of the ranks
    assert spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(spearman([1, 2], [2, 1]))
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


def _point(step, psnr, w, half=0.01, start=1.0, floor=0.0):
    p = {"step": step, "minutes": step / 100, "psnr_AtoB": psnr, "psnr_BtoA": psnr}
    for way in ("AtoB", "BtoA"):
        p.update({f"w_mon_{way}": w, f"w_mon_lo_{way}": w - half, f"w_mon_hi_{way}": w + half,
                  f"w_mon_start_{way}": start, f"w_mon_floor_{way}": floor, f"w_mon_remaining_{way}": w,
                  f"sliced_{way}": -psnr})
    return p


def test_proof_ranks_the_signals_and_picks_as_best_pt_would():
    # W falls while PSNR rises, except a last reading lower than the best by less than its noise.
    pts = [_point(0, 10.0, 0.9), _point(100, 14.0, 0.5), _point(200, 17.0, 0.30, half=0.05),
           _point(300, 16.8, 0.28, half=0.05)]
    proof = proof_of(pts)
    mon = proof["monitor W AtoB"]
    # ranks of −W: 1 2 3 4; of PSNR: 1 2 4 3 → one swapped pair
    assert mon["rho"] == pytest.approx(0.8) and mon["psnr_range"] == pytest.approx(7.0) and mon["n"] == 4
    assert mon["picked_step"] == 300 and mon["picked_psnr"] == 16.8 and mon["best_psnr"] == 17.0
    assert proof["sliced W AtoB"]["rho"] == pytest.approx(1.0) and proof["sliced W AtoB"]["picked_step"] == 200
    assert "training critic AtoB" not in proof  # no wgan readings: not reported
    # A point scored while auto's search had a candidate on trial is not part of the run the user sees.
    assert proof_of([{**_point(0, 30.0, 0.1), "searching": True}, *pts]) == proof
    rows = [line for line in proof_table([{"task": "t", "points": pts}]) if line.startswith("| t |")]
    assert len(rows) == 6 and all(row.rstrip(" |").endswith("met") for row in rows)

    # best.pt's own bookkeeping: a reading within the noise of the lowest is a tie, and a tie goes to the later step
    # (the lowest reading alone would pick step 200 here).
    tie = [*pts[:3], _point(300, 16.8, 0.32, half=0.05)]
    proof = proof_of(tie)
    assert proof["monitor W AtoB"]["picked_step"] == 200
    assert proof["best.pt AtoB"]["picked_step"] == 300 and proof["best.pt AtoB"]["rho"] == pytest.approx(1.0)


def test_best_pt_in_the_proof_ranks_a_resnet_by_the_structure_reading():
    pts = [_point(0, 10.0, 0.9), _point(100, 14.0, 0.2), _point(200, 17.0, 0.5)]  # W is lowest at step 100
    for p, s in zip(pts, (3.0, 2.0, 1.0)):  # the structure reading is lowest at step 200, as the PSNR is highest
        for way in ("AtoB", "BtoA"):
            p.update({f"structure_{way}": s, f"structure_lo_{way}": s - 0.1, f"structure_hi_{way}": s + 0.1,
                      f"structure_start_{way}": 3.0})
    assert proof_of(pts, "resnet")["best.pt AtoB"]["picked_step"] == 200
    assert proof_of(pts, "colour")["best.pt AtoB"]["picked_step"] == 100
    assert proof_of(pts, "resnet")["best.pt BtoA"]["rho"] == pytest.approx(1.0)


def test_proof_table_names_each_miss():
    # W rises while PSNR rises: the wrong sign, and the pick (the first reading) is 6 dB off the best.
    pts = [_point(i * 100, 10.0 + 2 * i, 0.2 + 0.2 * i) for i in range(4)]
    row = next(line for line in proof_table([{"task": "t", "points": pts}]) if "monitor W | AtoB" in line)
    assert "-1.00" in row and "ρ below 0.8" in row and "pick > 0.5 dB off" in row
    # A PSNR that moves by less than 2 dB is not held to the correlation bar.
    flat = [_point(i * 100, 10.0 + 0.1 * i, 0.2 + 0.2 * i) for i in range(4)]
    row = next(line for line in proof_table([{"task": "t", "points": flat}]) if "monitor W | AtoB" in line)
    assert "(< 2)" in row and "ρ below" not in row


def _reading_point(step, psnr, w, half):
    """An evaluation whose monitor has start 10 and floor 2 (its interval's top 2.1) in both directions."""
    r = Reading(w, w - half, w + half, 1.0, 10.0, 2.0, math.nan, math.nan, floor_hi=2.1)
    return {"step": step, "minutes": step / 100, "psnr_AtoB": psnr, "psnr_BtoA": psnr,
            **r.metrics("AtoB"), **r.metrics("BtoA")}


def test_the_share_left_is_replayed_as_shown_and_an_early_done_is_caught(tmp_path):
    # 75 % left; then 3.75 % but still falling (no share); then 3.75 % again, shown, while the PSNR is still 1 dB
    # below its final value: a "done" that was not. Then the reading at the floor: words, no share.
    pts = [_reading_point(0, 10.0, 8.0, 0.3), _reading_point(100, 13.0, 2.3, 0.1),
           _reading_point(200, 14.0, 2.3, 0.1), _reading_point(300, 15.0, 2.05, 0.1)]
    trial = {**_reading_point(0, 9.0, 9.9, 0.1), "searching": True}  # a candidate on trial: never shown
    pts.insert(0, trial)
    assert all(p is not trial for p, _, _ in standing_series(pts, "AtoB"))
    series = standing_series(pts, "AtoB")
    assert [round(share, 4) if math.isfinite(share) else words for _, share, words in series] == \
        [0.75, "still falling", 0.0375, AT_FLOOR]
    assert done_early(pts, "AtoB")["step"] == 200
    rows = [line for line in standing_table([{"task": "t", "points": pts}]) if line.startswith("| t |")]
    assert len(rows) == 2 and "| 4 | 2 | 4 % | 15.00 dB | **yes**, at step 200 (14.00 dB) |" in rows[0]
    # Within 0.5 dB of the final PSNR, reading "done" is right.
    pts[-1] = _reading_point(300, 14.4, 2.05, 0.1)
    assert done_early(pts, "AtoB") is None and standing_table([{"task": "t", "points": pts}])[2].endswith("| no |")
    # The curve pair: PSNR over the share left, one PNG; the nan gaps do not break the drawing.
    shares = {way: [(p["minutes"], share) for p, share, _ in standing_series(pts, way)] for way in ("AtoB", "BtoA")}
    with Image.open(plot_monitor(pts, shares, 9.0, tmp_path / "monitor.png", title="t")) as img:
        assert img.size == (760, 600)


@pytest.mark.slow
def test_measure_with_the_monitor_records_its_readings_at_every_score(tmp_path):
    data = get_task("demo").build(tmp_path / "task", n_train=6, n_test=2)
    cfg = tiny_config(val_fraction=0.34, val_min=2)
    res = measure(cfg, data, steps=4, score_every_steps=2, device="cpu", monitor=True)
    assert [p["step"] for p in res["points"]] == [0, 2, 4]
    for p in res["points"]:
        for way in ("AtoB", "BtoA"):
            assert all(math.isfinite(p[f"{k}_{way}"]) for k in ("w_mon", "w_mon_start", "w_mon_floor", "sliced", "emd"))
    assert set(proof_of(res["points"])) >= {"monitor W AtoB", "monitor W BtoA", "sliced W AtoB"}


def test_quality_monitor_keeps_every_signal_it_judges():
    """Each signal the proof reads is among the evaluation keys ``quality --monitor`` keeps (a signal dropped there
    would silently vanish from the table)."""
    from engine.tools.monitor_proof import SIGNALS
    from engine.tools.quality import _EVAL_PREFIXES

    for pattern in SIGNALS.values():
        for way, target in (("AtoB", "B"), ("BtoA", "A")):
            assert pattern.format(way=way, target=target).startswith(_EVAL_PREFIXES), pattern
