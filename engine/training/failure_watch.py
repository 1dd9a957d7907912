"""The failure watch: spots the classic ways a GAN run goes wrong and says so in plain words.

From the training losses of each progress report (``observe``):

* **discriminator won**: a D loss at a small share of its chance level for ``patience_steps``
  (an LSGAN discriminator that outputs ½ everywhere scores 0.25; one at 0.01–0.06 for hundreds
  of steps tells real from fake every time, and its generator learns little from it);
* the training critic's W estimate (``w_A``/``w_B``, its gap E f(real) − E f(fake)) exploding
  (|w| beyond ``w_explode``) or collapsing (w ≤ 0 for ``patience_steps``);
* NaN or Inf in any reported loss;
* cycle loss rising steadily: each of the last three windows of ``window`` reports higher than
  the one before by more than 5 %, to above ``0.1·λ_cyc`` (a mean L1 error of 0.05, about six
  grey levels, per direction) and to more than ``CYCLE_RISE`` times the lowest window mean of the
  run. Below the first, a rise is a generator leaving the identity it started from
  (``input_skip``); below the second, it is the early trade of a healthy run, where the
  generators give up some reconstruction as the adversarial loss takes hold (a rise of about
  25 % in the first few hundred steps on most tasks of the suite), not a failure.

From the held-out figures of each evaluation (``observe_eval``):

* **generator stuck at the identity**: G (or F) changes its held-out inputs by less than a grey
  level on average for ``stuck_evals`` evaluations in a row, while its adversarial loss stays
  high (its discriminator still rejects what it makes). The output then equals the input;
* **output saturated**: most of a generator's output pixels sit at ±1, far more than in the real
  images of its target domain.

Each warning fires once, until its condition clears.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Mapping

from engine.config import Config
from engine.training import metric_keys as K
from engine.training.reports import WarningReport

__all__ = ["FailureWatch", "D_WON", "G_HIGH"]

# Per objective: the D loss below which the discriminator has won (its chance level: lsgan 0.25,
# vanilla log 2 = 0.69), and the generator loss above which its fakes are still being rejected
# (chance: lsgan 0.25, vanilla 0.69).
D_WON = {"lsgan": 0.06, "vanilla": 0.15}
CYCLE_RISE = 1.5   # a rising cycle loss is a warning only once it is this many times its lowest
G_HIGH = {"lsgan": 0.5, "vanilla": 1.5}
STUCK_GAP = 1.0 / 127.5     # mean |G(x) − x| under one grey level
SATURATED_SHARE = 0.5       # most output pixels at ±1 …
SATURATED_EXCESS = 0.25     # … and that many more than in the real target images


class FailureWatch:
    """Fed the averaged metrics of each progress report and the held-out figures of each evaluation;
    returns warnings, each once until it clears."""

    def __init__(self, cfg: Config, *, patience: int | None = None, patience_steps: int = 300,
                 d_floor: float | None = None, w_explode: float = 1e3, window: int = 10, stuck_evals: int = 3):
        mode = cfg.objective.gan_mode
        self.wasserstein = cfg.is_wasserstein
        # in reports: hundreds of steps, whatever the report interval
        self.patience = patience or max(3, math.ceil(patience_steps / cfg.schedule.log_every))
        self.d_floor = d_floor if d_floor is not None else D_WON.get(mode, 0.0)
        self.g_high = G_HIGH.get(mode)
        self.w_explode, self.window, self.stuck_evals = w_explode, window, stuck_evals
        self._low_d = {K.D_A: 0, K.D_B: 0}
        self._neg_w = {K.W_A: 0, K.W_B: 0}
        self._still = {"AtoB": 0, "BtoA": 0}
        self._cycle = deque(maxlen=4 * window)
        self._cycle_low = math.inf   # the lowest window mean of the run
        self._last: Mapping[str, float] = {}
        self.cycle_floor = 0.1 * cfg.cycle_weight
        # the field the cycle's weight comes from, as the form names it
        per_pixel = cfg.is_per_pixel and cfg.objective.lambda_cyc_map > 0
        self.cycle_field = "λ cycle (colour/local)" if per_pixel else "λ cycle"
        self._active: set[str] = set()

    def _fire(self, step: int, code: str, message: str, hint: str, out: list[WarningReport]) -> None:
        if code not in self._active:
            self._active.add(code)
            out.append(WarningReport(step, code, message, hint))

    def _clear(self, code: str) -> None:
        self._active.discard(code)

    def observe(self, step: int, metrics: Mapping[str, float]) -> list[WarningReport]:
        out: list[WarningReport] = []
        self._last = metrics
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            self._fire(step, "nan", f"NaN or Inf in {', '.join(sorted(bad))} at step {step}",
                       "Lower the learning rate; check the data for broken images.", out)
        else:
            self._clear("nan")

        if not self.wasserstein:
            for k in (K.D_A, K.D_B):
                v = metrics.get(k)
                if v is None:
                    continue
                self._low_d[k] = self._low_d[k] + 1 if v < self.d_floor else 0
                code = f"d-won-{k}"
                if self._low_d[k] >= self.patience:
                    self._fire(step, code, f"{k} loss has stayed near 0 ({v:.2g}) for {self._low_d[k]} reports: "
                               "the discriminator has won and its generator learns little from it",
                               "Try a smaller discriminator learning rate (lr_D), fewer D layers, or spectral norm.",
                               out)
                elif self._low_d[k] == 0:
                    self._clear(code)
        else:
            for k in (K.W_A, K.W_B):
                v = metrics.get(k)
                if v is None or not math.isfinite(v):
                    continue
                if abs(v) > self.w_explode:
                    self._fire(step, f"w-explode-{k}", f"the W estimate {k} = {v:.3g} is exploding",
                               "The critic is not kept Lipschitz: raise λ_GP or lower the clip value / learning rate.",
                               out)
                else:
                    self._clear(f"w-explode-{k}")
                self._neg_w[k] = self._neg_w[k] + 1 if v <= 0 else 0
                if self._neg_w[k] >= self.patience:
                    self._fire(step, f"w-collapse-{k}",
                               f"the W estimate {k} has stayed ≤ 0 for {self._neg_w[k]} reports: "
                               "the critic has collapsed and no longer measures a distance",
                               "Give the critic more steps (n_critic) or a higher learning rate.", out)
                elif self._neg_w[k] == 0:
                    self._clear(f"w-collapse-{k}")

        if K.CYCLE_A in metrics and K.CYCLE_B in metrics:
            self._cycle.append(metrics[K.CYCLE_A] + metrics[K.CYCLE_B])
            w = self.window
            if len(self._cycle) == 4 * w:
                c = list(self._cycle)
                means = [sum(c[i * w:(i + 1) * w]) / w for i in range(4)]
                self._cycle_low = min(self._cycle_low, *means)
                if (all(means[i + 1] > 1.05 * means[i] for i in range(3)) and means[-1] > self.cycle_floor
                        and means[-1] > CYCLE_RISE * self._cycle_low):
                    self._fire(step, "cycle-rising", f"the cycle loss has risen steadily to {means[-1]:.3g} "
                               f"(from {means[0]:.3g})", f"Lower the learning rate or raise {self.cycle_field}.", out)
                elif means[-1] <= means[-2]:
                    self._clear("cycle-rising")
        return out

    def _rejected(self, way: str) -> bool:
        """Whether the generator of ``way`` is still being told its output is fake (by the last report)."""
        if self.wasserstein:
            w = self._last.get(K.W_B if way == "AtoB" else K.W_A)  # the critic that judges way's output
            return w is not None and w > 0
        g = self._last.get(K.G_A if way == "AtoB" else K.G_B)
        return g is not None and self.g_high is not None and g > self.g_high

    def observe_eval(self, step: int, ev: Mapping[str, float]) -> list[WarningReport]:
        out: list[WarningReport] = []
        for way, name, target in (("AtoB", "G (A→B)", "B"), ("BtoA", "F (B→A)", "A")):
            gap = ev.get(K.input_change(way))
            if gap is None:
                continue
            self._still[way] = self._still[way] + 1 if gap < STUCK_GAP and self._rejected(way) else 0
            code = f"stuck-{way}"
            if self._still[way] >= self.stuck_evals:
                self._fire(step, code, f"{name} returns its input unchanged (mean change {gap * 127.5:.2f} grey levels "
                           f"on held-out images) while its discriminator still rejects it: it is stuck at the identity",
                           "The discriminator wins before the generator moves. Try the paper recipe's discriminator "
                           "(instance norm), a smaller lr_D, or a lower λ cycle.", out)
            elif self._still[way] == 0:
                self._clear(code)
            sat, real = ev.get(K.saturated(way)), ev.get(K.saturated_real(target))
            if sat is None or real is None:
                continue
            code = f"saturated-{way}"
            if sat > SATURATED_SHARE and sat > real + SATURATED_EXCESS:
                self._fire(step, code, f"{name}'s output is saturated: {sat:.0%} of its pixels are at ±1 "
                           f"(real {target} images: {real:.0%})",
                           "The generator has diverged: lower the learning rate, or resume from an earlier "
                           "checkpoint.", out)
            else:
                self._clear(code)
        return out
