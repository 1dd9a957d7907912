"""It learns: the default recipe, at a tiny size, learns the demo's summer → winter map.

This is the test that notices a broken training step. Measured at 300 steps with the default
(paper-style) recipe, PSNR against the truth, identity 8.1 dB:

* the correct step: A→B 18.4 dB, B→A 17.5 dB: passes (both must reach 13.1, the identity + 5 dB);
* D_A and D_B swapped in the generator update: A→B 15.3, B→A 10.0: fails on B→A by 3 dB;
* the generators' adversarial sign flipped: A→B 11.5, B→A 9.6: fails on both.
"""

from __future__ import annotations

import pytest

from engine.config import preset
from engine.data.demo import make_demo_dataset
from engine.metrics import demo_ground_truth
from engine.training.reports import WarningReport
from engine.training.trainer import Trainer

MARGIN_DB = 5.0
STEPS = 300


def train_and_score(tmp_path) -> tuple[dict[str, float], list[str]]:
    """Train the default recipe, tiny, for STEPS on the demo data: (its held-out scores, the watch's generator alarms)."""
    make_demo_dataset(tmp_path / "demo", n_train=60, n_test=8, size=48, seed=0)
    cfg = preset("cpu-quick").with_values(
        load_size=36, crop_size=32, ngf=16, ndf=16, n_blocks=2, n_layers_D=2, max_steps=STEPS, log_every=10,
        eval_every=50, preview_every=10**6, save_every=10**6, val_fraction=0.1, val_min=4, device="cpu", amp="off")
    gt = demo_ground_truth(tmp_path / "demo" / "trainA", cfg.data.crop_size)
    trainer = Trainer.from_folders(cfg, tmp_path / "demo" / "trainA", tmp_path / "demo" / "trainB")
    reports = list(trainer.run())
    assert reports[-1].reason == "completed" and trainer.step == STEPS
    G, F = trainer.state.inference_generators()
    alarms = [r.code for r in reports if isinstance(r, WarningReport) and r.code.startswith(("stuck", "saturated"))]
    return gt.score(G, F), alarms


@pytest.mark.slow
def test_the_default_recipe_learns_the_demo_map(tmp_path):
    scores, alarms = train_and_score(tmp_path)
    # A healthy run raises none of the watch's alarms about the generators.
    assert alarms == []
    # G: summer → winter, judged against the true winter images of held-out summer scenes.
    assert scores["psnr_AtoB"] >= scores["psnr_identity"] + MARGIN_DB, scores
    # F learns the way back too: F(T(x)) is closer to x than T(x) is, by as much.
    assert scores["psnr_BtoA"] >= scores["psnr_identity"] + MARGIN_DB, scores
