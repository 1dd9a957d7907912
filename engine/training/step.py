"""One CycleGAN training step: the generator update, then the critic update, as in the paper.

Notation (paper → code): G: A→B is ``state.G`` (paper's G), F: B→A is ``state.F`` (paper's F),
D_B judges domain B (paper's D_Y), D_A judges domain A (paper's D_X).

    L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc(G, F) [+ λ·λ_id·L_idt]
    G*, F* = argmin_{G,F} max_{D_A, D_B} L

Everything random in a step (pool draws, gradient-penalty interpolation) comes from a
generator seeded by (seed, step), so a resumed run repeats an uninterrupted one exactly.

Every optimiser steps through ``apply_update`` (at the end of this file): an update whose loss or
gradients are not finite is skipped, never applied, and the step reports it as a fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from engine.config import Config
from engine.data.batches import UnpairedBatches
from engine.models.augment import Augmented
from engine.models.channel_order import inverse_order, order_indices
from engine.models.objectives import DLoss, build_objective, cycle_loss, identity_loss
from engine.training import metric_keys as K
from engine.training.distributed import DistInfo, average_gradients
from engine.training.schedule import seeded_rng
from engine.training.speed import SpeedOptions
from engine.training.state import TrainingState, set_requires_grad

__all__ = ["CycleGANStep", "StepResult", "GeneratorPasses", "apply_update"]


@dataclass
class StepResult:
    metrics: dict[str, float]
    faulted: bool  # an update was skipped (non-finite loss or gradient)


@dataclass
class GeneratorPasses:
    """Every generator output one G update needs. idt_* are None when λ_id = 0."""

    fake_b: torch.Tensor   # G(a)
    fake_a: torch.Tensor   # F(b)
    rec_a: torch.Tensor    # F(G(a))
    rec_b: torch.Tensor    # G(F(b))
    idt_b: torch.Tensor | None  # G(b): G should leave B alone
    idt_a: torch.Tensor | None  # F(a)


class CycleGANStep:
    def __init__(self, cfg: Config, state: TrainingState, speed: SpeedOptions, dist: DistInfo,
                 critic_batches: UnpairedBatches, ema_decay: Callable[[int], float],
                 cycle_scale: Callable[[int], float] = lambda step: 1.0):
        self.cfg, self.state, self.speed, self.dist = cfg, state, speed, dist
        self.ema_decay = ema_decay  # step → the decay of the generator average's update after that step
        self.cycle_scale = cycle_scale  # step → the share of λ cycle in force (a warm-up)
        self.objective = build_objective(cfg)
        self.critic_batches = critic_batches  # fresh batches for the extra Wasserstein critic updates
        self._g, self._f = speed.forward_of(state.G), speed.forward_of(state.F)
        critics = [Augmented(c) if cfg.model.diffaugment else c for c in (state.D_A, state.D_B)]
        self._augmented = [c for c in critics if isinstance(c, Augmented)]
        self._d_a, self._d_b = (speed.critic_of(c) for c in critics)
        # Maps started in another channel order (``Config.channel_order``) leave an image of their target domain
        # alone up to that order: G(b) ≈ b reordered, F(a) ≈ a in the inverse order. The untouched identity would
        # pull them back to the order the folders were read not to have.
        order = cfg.channel_order
        self._idt_channels = (None if order == "rgb" else
                              (list(order_indices(order)), list(order_indices(inverse_order(order)))))

    def generator_passes(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorPasses:
        """Each generator's independent passes in one batched call (instance norm is per image, so
        batching changes nothing): F([b; a]) → F(b), F(a); G([a; F(b); b]) → G(a), G(F(b)), G(b)."""
        bs, use_idt = real_a.shape[0], self.cfg.objective.lambda_id > 0
        f_out = self._f(torch.cat([real_b, real_a]) if use_idt else real_b)
        fake_a = f_out[:bs]
        g_out = self._g(torch.cat([real_a, fake_a, real_b]) if use_idt else torch.cat([real_a, fake_a]))
        fake_b = g_out[:bs]
        return GeneratorPasses(fake_b=fake_b, fake_a=fake_a, rec_a=self._f(fake_b), rec_b=g_out[bs:2 * bs],
                               idt_b=g_out[2 * bs:] if use_idt else None, idt_a=f_out[bs:] if use_idt else None)

    def generator_update(self, real_a: torch.Tensor, real_b: torch.Tensor
                         ) -> tuple[dict[str, torch.Tensor], GeneratorPasses, bool]:
        """Minimise L_GAN(G, D_B) + L_GAN(F, D_A) + λ·L_cyc (+ λ·λ_id·L_idt) over G and F, with D frozen."""
        s, o = self.state, self.cfg.objective
        lam = self.cfg.cycle_weight
        set_requires_grad(s.critics, False)
        s.opt_G.zero_grad(set_to_none=True)
        with self.speed.autocast():
            p = self.generator_passes(real_a, real_b)
            losses = {
                K.G_A: self.objective.g_loss(self._d_b, p.fake_b),   # G: A→B against D_B
                K.G_B: self.objective.g_loss(self._d_a, p.fake_a),   # F: B→A against D_A
                K.CYCLE_A: lam * cycle_loss(p.rec_a, real_a),        # ‖F(G(a)) − a‖₁
                K.CYCLE_B: lam * cycle_loss(p.rec_b, real_b),        # ‖G(F(b)) − b‖₁
            }
            zero = torch.zeros((), device=real_a.device)
            idt_b, idt_a = ((real_b, real_a) if self._idt_channels is None else
                            (real_b[:, self._idt_channels[0]], real_a[:, self._idt_channels[1]]))
            losses[K.IDT_A] = lam * o.lambda_id * identity_loss(p.idt_b, idt_b) if p.idt_b is not None else zero
            losses[K.IDT_B] = lam * o.lambda_id * identity_loss(p.idt_a, idt_a) if p.idt_a is not None else zero
            # The reported terms carry the full λ; during a cycle warm-up the objective weighs them less.
            warm = self.cycle_scale(s.step)
            loss = losses[K.G_A] + losses[K.G_B] + warm * (losses[K.CYCLE_A] + losses[K.CYCLE_B] + losses[K.IDT_A]
                                                          + losses[K.IDT_B])
        ok = apply_update(s.opt_G, loss, self.dist)
        if ok:
            s.update_ema(self.ema_decay(s.step))
        set_requires_grad(s.critics, True)
        return losses, p, ok

    def critic_update(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor,
                      gen: torch.Generator) -> tuple[DLoss, DLoss, bool]:
        """Maximise L_GAN over D_A and D_B (minimise their losses) on detached fakes."""
        s = self.state
        s.opt_D.zero_grad(set_to_none=True)
        with self.speed.autocast():
            d_b = self.objective.d_loss(self._d_b, real_b, fake_b.detach(), gen)  # real B vs G(a)
            d_a = self.objective.d_loss(self._d_a, real_a, fake_a.detach(), gen)  # real A vs F(b)
        if not apply_update(s.opt_D, d_a.loss + d_b.loss, self.dist):
            return d_a, d_b, False
        for critic in s.critics:
            self.objective.after_d_step(critic)  # weight clipping (wgan-clip)
        return d_a, d_b, True

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult:
        """One generator update and the critic update(s) that go with it, at step ``state.step``."""
        s, cfg = self.state, self.cfg
        gen = seeded_rng(cfg.schedule.seed, s.step, "step")
        for critic in self._augmented:  # DiffAugment draws from the step's own stream
            critic.generator = seeded_rng(cfg.schedule.seed, s.step, "augment")
        real_a, real_b = self.speed.generator_input(real_a), self.speed.generator_input(real_b)
        faulted = False
        # Wasserstein: the first n_critic − 1 critic updates, on fresh batches, before the generators move.
        n_extra = cfg.objective.n_critic - 1 if cfg.is_wasserstein else 0
        for k in range(n_extra):
            ca, cb = (self.speed.generator_input(x) for x in self.critic_batches.batch(s.step * n_extra + k))
            with torch.no_grad(), self.speed.autocast():
                cfa, cfb = self._f(cb), self._g(ca)
            faulted |= not self.critic_update(ca, cb, cfa, cfb, gen)[2]

        losses, p, g_ok = self.generator_update(real_a, real_b)
        # The critics see the fakes through the history pools (off for Wasserstein critics).
        fake_b = s.pool_B.query(p.fake_b.detach(), gen)
        fake_a = s.pool_A.query(p.fake_a.detach(), gen)
        d_a, d_b, d_ok = self.critic_update(real_a, real_b, fake_a, fake_b, gen)
        losses.update({K.D_A: d_a.loss, K.D_B: d_b.loss})

        # One device→host transfer for all losses instead of eight synchronising .item() calls.
        values = torch.stack([losses[k].detach().float() for k in K.LOSS_KEYS]).cpu().tolist()
        metrics = dict(zip(K.LOSS_KEYS, values))
        if cfg.is_wasserstein:
            # E_real f − E_fake f on the current fakes, by the critic the generator step just faced.
            metrics.update({K.W_B: float(d_b.critic_gap), K.W_A: float(d_a.critic_gap)})
            if d_b.grad_norm is not None:
                metrics.update({K.GP_GRAD_NORM_A: float(d_a.grad_norm), K.GP_GRAD_NORM_B: float(d_b.grad_norm)})
        return StepResult(metrics, faulted or not g_ok or not d_ok)


def apply_update(opt: torch.optim.Optimizer, loss: torch.Tensor, dist: DistInfo) -> bool:
    """Backward, average gradients across ranks, and step, unless anything is non-finite.

    Returns whether the update was applied. A skipped update leaves the weights untouched.
    """
    finite = bool(torch.isfinite(loss.detach()))
    params = [p for g in opt.param_groups for p in g["params"]]
    if dist.enabled:
        # Every rank must join the all_reduce; a rank with a bad loss poisons it so all skip alike.
        loss.backward()
        average_gradients(params, dist.world_size, poison=not finite)
    elif finite:
        loss.backward()
    if not finite or not _finite_grads(params):
        opt.zero_grad(set_to_none=True)
        return False
    opt.step()
    return True


def _finite_grads(params: list[torch.Tensor]) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    norms = torch._foreach_norm(grads)  # fused: far fewer kernel launches than a norm per tensor
    return bool(torch.isfinite(torch.stack(norms)).all())
