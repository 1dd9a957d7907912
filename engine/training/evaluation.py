"""Held-out figures and previews: what the current models do with images they were never trained on.

``Evaluator.evaluate()`` returns, on the held-out split: the cycle losses, how far each generator
moves its inputs and how saturated its output is (for the failure watch), the W monitor's
readings per direction (``engine.wasserstein.monitor``; every objective), the training critics'
held-out W readings (``Objective.heldout_w``) and gradient norms (Wasserstein objectives), and
PSNR against ground truth when the caller supplied one (the demo data, quality tasks). The keys
and their meaning: ``engine.training.metric_keys``.
``Evaluator.preview()`` renders the preview images as uint8 copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from engine.config import Config
from engine.data.batches import UnpairedBatches
from engine.data.folders import ImageFolder
from engine.images import to_uint8_image
from engine.models.objectives import Objective, critic_score, cycle_loss, gradient_penalty
from engine.training import metric_keys as K
from engine.training.schedule import seeded_rng
from engine.training.speed import SpeedOptions
from engine.training.state import TrainingState
from engine.wasserstein.critic import torch_threads
from engine.wasserstein.monitor import WMonitor

__all__ = ["Evaluator", "PREVIEW_IMAGES"]

PREVIEW_IMAGES = 2   # images per domain in each preview
EVAL_IMAGES = 16     # held-out images per domain in each evaluation
SATURATED = 0.99     # an output pixel this close to ±1 is saturated


class Evaluator:
    def __init__(self, cfg: Config, state: TrainingState, objective: Objective, speed: SpeedOptions,
                 train: tuple[ImageFolder, ImageFolder], val: tuple[ImageFolder, ImageFolder],
                 ground_truth: Any = None):
        self.cfg, self.state, self.objective, self.speed = cfg, state, objective, speed
        self.val = val
        self.ground_truth = ground_truth  # an engine.metrics.GroundTruth, or None
        # Previews show held-out images when there are any.
        a = val[0] if len(val[0]) else train[0]
        b = val[1] if len(val[1]) else train[1]
        fixed = UnpairedBatches(a, b, batch_size=1, crop_size=cfg.data.crop_size, flip=False,
                                seed=cfg.schedule.seed, device=speed.device)
        self._preview_batch = fixed.fixed(min(PREVIEW_IMAGES, len(a), len(b)))
        self.monitor: WMonitor | None = None
        if cfg.schedule.monitor and len(val[0]) >= 2 and len(val[1]) >= 2:
            self.monitor = WMonitor([val[0].get(i) for i in range(len(val[0]))],
                                    [val[1].get(i) for i in range(len(val[1]))], crop=cfg.data.crop_size,
                                    seed=cfg.schedule.seed, device=speed.device, train_a=train[0], train_b=train[1])

    @torch.no_grad()
    def preview(self) -> dict[str, np.ndarray]:
        """real → translated → reconstructed in both directions, by the inference generators."""
        G, F = self.state.inference_generators()
        was = G.training, F.training
        G.eval(), F.eval()
        real_a, real_b = (self.speed.generator_input(x) for x in self._preview_batch)
        with self.speed.autocast():
            fake_b = G(real_a)
            rec_a = F(fake_b)
            fake_a = F(real_b)
            rec_b = G(fake_a)
        G.train(was[0]), F.train(was[1])
        out = {"real_A": real_a, "fake_B": fake_b, "rec_A": rec_a, "real_B": real_b, "fake_A": fake_a, "rec_B": rec_b}
        return {k: to_uint8_image(v.float()) for k, v in out.items()}

    def evaluate(self) -> dict[str, float]:
        out: dict[str, float] = {}
        val_a, val_b = self.val
        s, lam = self.state, self.cfg.cycle_weight
        if len(val_a) and len(val_b):
            n = min(len(val_a), len(val_b), EVAL_IMAGES)
            ev = UnpairedBatches(val_a, val_b, batch_size=1, crop_size=self.cfg.data.crop_size, flip=False,
                                 seed=self.cfg.schedule.seed, device=self.speed.device)
            real_a, real_b = (self.speed.generator_input(x) for x in ev.fixed(n))
            with torch.no_grad(), self.speed.autocast():
                fake_b, fake_a = s.G(real_a), s.F(real_b)
                out[K.CYCLE_A_VAL] = float(cycle_loss(s.F(fake_b).float(), real_a.float()) * lam)
                out[K.CYCLE_B_VAL] = float(cycle_loss(s.G(fake_a).float(), real_b.float()) * lam)
                # What the failure watch reads: how far each generator moves its input (mean |G(x) − x| in
                # [-1, 1] units, 1/127.5 per grey level), and how much of its output sits at ±1 next to
                # how much of the real target domain does.
                for way, target, fake, src, real in (("AtoB", "B", fake_b, real_a, real_b),
                                                     ("BtoA", "A", fake_a, real_b, real_a)):
                    out[K.input_change(way)] = float((fake.float() - src.float()).abs().mean())
                    out[K.saturated(way)] = float((fake.float().abs() > SATURATED).float().mean())
                    out[K.saturated_real(target)] = float((real.float().abs() > SATURATED).float().mean())
                w_b = self.objective.heldout_w(s.D_B, real_b, fake_b)
                w_a = self.objective.heldout_w(s.D_A, real_a, fake_a)
            if w_b is not None and w_a is not None:
                out[K.W_B_VAL], out[K.W_A_VAL] = w_b, w_a
                gen = seeded_rng(self.cfg.schedule.seed, s.step, "eval")
                for key, D, real, fake in ((K.GP_GRAD_NORM_A_VAL, s.D_A, real_a, fake_a),
                                           (K.GP_GRAD_NORM_B_VAL, s.D_B, real_b, fake_b)):
                    _, norm = gradient_penalty(lambda x, D=D: critic_score(D, x), real, fake, gen)
                    out[key] = float(norm)
        G, F = s.inference_generators()
        if self.monitor is not None:
            with torch_threads(1):  # the critic's ops are tiny: one thread is faster, and spares the cores
                for way, reading in self.monitor.measure(G, F).items():
                    out.update(reading.metrics(way))
        if self.ground_truth is not None:
            out.update(self.ground_truth.score(G, F, self.speed.device))
        return out
