"""GAN objectives, the gradient penalty, cycle/identity losses and the training critic's W readings.

Two families:

* ``vanilla`` and ``lsgan`` score each 70×70 patch: the loss is averaged over the
  PatchGAN's (B, 1, h, w) map, exactly like the reference implementation.
* ``wgan-clip`` and ``wgan-gp`` use a critic f with **one scalar per image**, the mean
  of its patch map (``critic_score``). The critic loss, the gradient penalty and the
  reported W readings (``DLoss.critic_gap``, ``Objective.heldout_w``) all use that same
  scalar, so the Lipschitz constraint and the readings refer to the same function (a penalty
  on the patch map would constrain a function P times larger than the one whose dual value
  is reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Objective",
    "VanillaGAN",
    "LSGAN",
    "WGANClip",
    "WGANGP",
    "OBJECTIVES",
    "build_objective",
    "gradient_penalty",
    "cycle_loss",
    "identity_loss",
    "clip_weights",
    "critic_score",
    "DLoss",
]


@dataclass
class DLoss:
    """A discriminator/critic loss and, for critics, the dual terms E_real f and E_fake f on its batch."""

    loss: torch.Tensor
    f_real: float | None = None     # E_real[f]
    f_fake: float | None = None     # E_fake[f]
    grad_norm: float | None = None  # mean ‖∇f(x̂)‖ at the interpolates (wgan-gp)

    @property
    def critic_gap(self) -> float | None:
        """E_real f − E_fake f on the batch this loss trains the critic on: the training critic's running W
        estimate, biased upward by fitting that batch (``Objective.heldout_w`` is the unbiased reading)."""
        if self.f_real is None or self.f_fake is None:
            return None
        return self.f_real - self.f_fake


def critic_score(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """f(x), one scalar per image: (B, 3, H, W) → (B,), the mean of the critic's (B, 1, h, w) patch map.

    The one way the engine scores images with a critic: the Wasserstein losses, the gradient
    penalty and every W estimate use it, so all of them refer to the same function f.
    """
    score = getattr(critic, "score", None)
    if score is not None:
        return score(x)
    out = critic(x)
    return out.reshape(out.shape[0], -1).mean(dim=1)


class Objective:
    name = ""
    wasserstein = False

    @torch.no_grad()
    def heldout_w(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float | None:
        """E_real f − E_fake f by a training critic on images it was not trained on (the held-out split), or
        None where the critic is not a Wasserstein critic (a vanilla or LSGAN discriminator's outputs are no
        distance). Unlike ``DLoss.critic_gap``, fitting cannot inflate it."""
        if not self.wasserstein:
            return None
        return float(critic_score(critic, real).float().mean() - critic_score(critic, fake).float().mean())

    def d_loss(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
               generator: torch.Generator | None = None) -> DLoss:
        raise NotImplementedError

    def g_loss(self, critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_d_step(self, critic: nn.Module) -> None:
        """Hook run after every critic optimiser step (weight clipping)."""


class VanillaGAN(Objective):
    """The seed's log loss max_D E[log D(b)] + E[log(1 − D(G(a)))], as BCE on logits (stable)."""

    name = "vanilla"

    def d_loss(self, critic, real, fake, generator=None):
        pr, pf = critic(real), critic(fake)
        loss = 0.5 * (F.binary_cross_entropy_with_logits(pr, torch.ones_like(pr))
                      + F.binary_cross_entropy_with_logits(pf, torch.zeros_like(pf)))
        return DLoss(loss)

    def g_loss(self, critic, fake):
        # Non-saturating form: maximise log D(G(a)) instead of minimising log(1 − D(G(a))).
        pf = critic(fake)
        return F.binary_cross_entropy_with_logits(pf, torch.ones_like(pf))


class LSGAN(Objective):
    """Least squares (Mao et al.), the paper's practice: D → 1 on real, 0 on fake."""

    name = "lsgan"

    def d_loss(self, critic, real, fake, generator=None):
        pr, pf = critic(real), critic(fake)
        loss = 0.5 * (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf)))
        return DLoss(loss)

    def g_loss(self, critic, fake):
        pf = critic(fake)
        return F.mse_loss(pf, torch.ones_like(pf))


class WGANClip(Objective):
    """Arjovsky et al.: maximise E_real f − E_fake f, weights clipped to [−c, c] (so f is K-Lipschitz)."""

    name = "wgan-clip"
    wasserstein = True

    def __init__(self, clip_value: float = 0.01):
        self.clip_value = clip_value

    def d_loss(self, critic, real, fake, generator=None):
        f_real, f_fake = critic_score(critic, real).mean(), critic_score(critic, fake).mean()
        return DLoss(f_fake - f_real, float(f_real.detach()), float(f_fake.detach()))

    def g_loss(self, critic, fake):
        return -critic_score(critic, fake).mean()

    def after_d_step(self, critic):
        clip_weights(critic, self.clip_value)


class WGANGP(Objective):
    """Gulrajani et al.: the WGAN loss plus λ·E[(‖∇f(x̂)‖₂ − 1)²] at random interpolates x̂."""

    name = "wgan-gp"
    wasserstein = True

    def __init__(self, lambda_gp: float = 10.0):
        self.lambda_gp = lambda_gp

    def d_loss(self, critic, real, fake, generator=None):
        f_real, f_fake = critic_score(critic, real).mean(), critic_score(critic, fake).mean()
        gp, grad_norm = gradient_penalty(lambda x: critic_score(critic, x), real, fake, generator)
        loss = f_fake - f_real + self.lambda_gp * gp
        return DLoss(loss, float(f_real.detach()), float(f_fake.detach()), float(grad_norm))

    def g_loss(self, critic, fake):
        return -critic_score(critic, fake).mean()


def gradient_penalty(f, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """E[(‖∇f(x̂)‖₂ − 1)²] with x̂ = εx + (1 − ε)x̃, one ε ~ U[0, 1] per image.

    ``f`` maps (B, ...) → (B,), one scalar per image. Returns (penalty, mean gradient norm);
    the penalty keeps its graph (create_graph) so the critic can be trained through it.
    """
    b = real.shape[0]
    eps = torch.rand((b,) + (1,) * (real.ndim - 1), generator=generator, device="cpu", dtype=torch.float32)
    eps = eps.to(device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = f(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.reshape(b, -1).norm(2, dim=1)  # (B,) per-image gradient norm
    return ((norm - 1.0) ** 2).mean(), norm.detach().mean()


@torch.no_grad()
def clip_weights(critic: nn.Module, c: float) -> None:
    for p in critic.parameters():
        p.clamp_(-c, c)


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E‖F(G(a)) − a‖₁ (mean absolute error per pixel, as the reference)."""
    return F.l1_loss(reconstructed, real)


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E‖G(b) − b‖₁: G should leave images that are already in its target domain alone."""
    return F.l1_loss(same, real)


OBJECTIVES = {
    "vanilla": lambda cfg: VanillaGAN(),
    "lsgan": lambda cfg: LSGAN(),
    "wgan-clip": lambda cfg: WGANClip(cfg.objective.clip_value),
    "wgan-gp": lambda cfg: WGANGP(cfg.objective.lambda_gp),
}


def build_objective(cfg) -> Objective:
    name = cfg.objective.gan_mode
    try:
        return OBJECTIVES[name](cfg)
    except KeyError:
        raise ValueError(f"unknown gan_mode {name!r}; valid choices: {', '.join(OBJECTIVES)}") from None
