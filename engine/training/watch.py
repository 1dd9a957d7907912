"""The failure watch: spots the classic ways a GAN run goes wrong and says so in plain words."""

from __future__ import annotations

import math
from collections import deque
from typing import Mapping

from engine.config import Config
from engine.training.reports import WarningReport

__all__ = ["FailureWatch"]


class FailureWatch:
    """Fed the averaged metrics of each progress report; returns warnings, each once until it clears.

    * discriminator won: a D loss near 0 for ``patience`` reports in a row (vanilla/lsgan);
    * W estimate exploding (|w| beyond ``w_explode``) or collapsing (w ≤ 0 for ``patience`` reports);
    * NaN or Inf in any reported loss;
    * cycle loss rising steadily: each of the last three windows of ``window`` reports higher than
      the one before by more than 5%, to above ``0.1·λ_cyc`` (a mean L1 error of 0.05, about six
      grey levels, per direction). Below that a rise is a generator leaving the identity it
      started from (``input_skip``), not a failure.
    """

    def __init__(self, cfg: Config, *, patience: int = 20, d_floor: float = 0.005, w_explode: float = 1e3,
                 window: int = 10):
        self.wasserstein = cfg.is_wasserstein
        self.patience, self.d_floor, self.w_explode, self.window = patience, d_floor, w_explode, window
        self._low_d = {"D_A": 0, "D_B": 0}
        self._neg_w = {"w_A": 0, "w_B": 0}
        self._cycle = deque(maxlen=4 * window)
        self.cycle_floor = 0.1 * cfg.objective.lambda_cyc
        self._active: set[str] = set()

    def _fire(self, step: int, code: str, message: str, hint: str, out: list[WarningReport]) -> None:
        if code not in self._active:
            self._active.add(code)
            out.append(WarningReport(step, code, message, hint))

    def _clear(self, code: str) -> None:
        self._active.discard(code)

    def observe(self, step: int, metrics: Mapping[str, float]) -> list[WarningReport]:
        out: list[WarningReport] = []
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            self._fire(step, "nan", f"NaN or Inf in {', '.join(sorted(bad))} at step {step}",
                       "Lower the learning rate; check the data for broken images.", out)
        else:
            self._clear("nan")

        if not self.wasserstein:
            for k in ("D_A", "D_B"):
                v = metrics.get(k)
                if v is None:
                    continue
                self._low_d[k] = self._low_d[k] + 1 if v < self.d_floor else 0
                code = f"d-won-{k}"
                if self._low_d[k] >= self.patience:
                    self._fire(step, code, f"{k} loss has stayed near 0 ({v:.2g}) for {self._low_d[k]} reports: "
                               "the discriminator has won and the generator is likely stuck",
                               "Try a smaller discriminator learning rate (lr_D), fewer D layers, or spectral norm.", out)
                elif self._low_d[k] == 0:
                    self._clear(code)
        else:
            for k in ("w_A", "w_B"):
                v = metrics.get(k)
                if v is None or not math.isfinite(v):
                    continue
                if abs(v) > self.w_explode:
                    self._fire(step, f"w-explode-{k}", f"the W estimate {k} = {v:.3g} is exploding",
                               "The critic is not kept Lipschitz: raise λ_GP or lower the clip value / learning rate.", out)
                else:
                    self._clear(f"w-explode-{k}")
                self._neg_w[k] = self._neg_w[k] + 1 if v <= 0 else 0
                if self._neg_w[k] >= self.patience:
                    self._fire(step, f"w-collapse-{k}", f"the W estimate {k} has stayed ≤ 0 for {self._neg_w[k]} reports: "
                               "the critic has collapsed and no longer measures a distance",
                               "Give the critic more steps (n_critic) or a higher learning rate.", out)
                elif self._neg_w[k] == 0:
                    self._clear(f"w-collapse-{k}")

        if "cycle_A" in metrics and "cycle_B" in metrics:
            self._cycle.append(metrics["cycle_A"] + metrics["cycle_B"])
            w = self.window
            if len(self._cycle) == 4 * w:
                c = list(self._cycle)
                means = [sum(c[i * w:(i + 1) * w]) / w for i in range(4)]
                if all(means[i + 1] > 1.05 * means[i] for i in range(3)) and means[-1] > self.cycle_floor:
                    self._fire(step, "cycle-rising", f"the cycle loss has risen steadily to {means[-1]:.3g} "
                               f"(from {means[0]:.3g})", "Lower the learning rate or raise λ cycle.", out)
                elif means[-1] <= means[-2]:
                    self._clear("cycle-rising")
        return out
