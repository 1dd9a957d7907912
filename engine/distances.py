"""Distances between probability distributions: closed forms, and a critic's estimate of W1.

The Wasserstein GAN paper (Arjovsky et al. 2017) argues with one example: P_0 = (0, Z) and
P_θ = (θ, Z), Z ~ U[0, 1], two parallel vertical segments. For θ ≠ 0 the supports are
disjoint, so TV = 1, KL = ∞ and JS = log 2 whatever θ is; only W1 = |θ| shrinks as the
segments approach. All four are 0 at θ = 0. This module holds that example and four more
with known answers (``CASES``), and estimates W1 from samples the way a WGAN critic does.

The estimate (Kantorovich–Rubinstein duality)::

    W1(P, Q) = sup over 1-Lipschitz f of  E_P[f] − E_Q[f]

``estimate_w1`` trains a small MLP f on 75 % of the samples and reports E_P f − E_Q f on the
other 25 % (held out), so the number is not inflated by the critic overfitting its batches.
How f is kept Lipschitz (``method``):

* ``clip``: weight clipping to [−c, c] (WGAN), trained with RMSProp as in the paper. f is
  then K-Lipschitz for some unknown K ≪ 1 (measured K ≈ 0.001–0.0015 for the default
  c = 0.01), so the raw value is about K·W1. ``W1Estimate.corrected`` divides it by the
  critic's mean gradient norm on held-out interpolates, which recovers W1 approximately
  (measured over 24 runs: −8.7 % … +1.1 %, mostly low: the clipped critic is not linear).
* ``gp``: two-sided penalty λ·E[(‖∇f(x̂)‖ − 1)²] at random interpolates x̂ (WGAN-GP).
* ``lp``: one-sided penalty λ·E[max(0, ‖∇f(x̂)‖ − 1)²] (Petzka et al. 2018).

Known biases (each has a test in tests/test_distances.py):

* **The penalty does not stop the slope at 1.** When the optimal critic is linear with slope
  s along the transport direction (the parallel lines, a translation), the trained objective
  is s·W − λ(s − 1)², maximised at s = 1 + W/(2λ), where it equals W + W²/(4λ). The value
  this module reports is the dual *without* the penalty, s·W = W + W²/(2λ): an overshoot of
  W²/(2λ), i.e. a relative error of W/(2λ). Both penalties are active when s > 1, so ``lp``
  overshoots exactly as much as ``gp``. At λ = 10 that is +15 % at W = 3 (measured +15.0 %),
  which is why the default here is λ = 100 (+1.5 % at W = 3). ``corrected`` = w/‖∇f‖ divides
  s out again and is exact for a linear critic.
* **The two-sided penalty can lock in the wrong sign.** In 1-D, flipping the sign of f′ at
  a point means passing through f′ = 0, which the two-sided penalty charges λ for, while
  the dual gains only about W. A critic that starts with (or drifts into) the wrong slope
  stays at the local maximum s = −1 + W/(2λ) (for W < 2λ) and reports ≈ −W + W²/(2λ).
  The same barrier keeps gp from bending a linear critic into the V that zero-mean
  Gaussians of different σ need (it stalls near 0). Measured with the default settings:
  gp missed 10 % in 4 of 24 translation/shift runs (twice negative, down to −0.36·W) and in
  8 of 12 gauss-scale and uniform runs; a critic carried over after θ changes sign stays
  negative. The one-sided
  penalty costs nothing for ‖∇f‖ < 1, so ``lp`` passes through 0 freely and always ends ≥ 0.

Settings that meet the 10 % target for θ, Δμ and ‖v‖ in [0.5, 3] (the defaults):
``method="lp"``, λ = 100, 800 Adam steps (lr 2e-3 decayed linearly to 0, betas (0.5, 0.9)),
batches of 256 from each side, a 2×64 ReLU MLP, and 40 000 samples per side (10 000 held
out; the held-out mean of a unit-slope critic then has a standard error of 0.014). Over 24
runs (4 seeds × parallel lines, 1-D Gaussian shift, 2-D translation, W ∈ {0.5, 3}) the worst
error was 4.3 %; over 12 gauss-scale and uniform runs, 2.6 %. The two-sided ``gp`` is biased
the same way but, by the sign lock above, is not reliable in 1-D at any λ tried (10, 30,
100); it is kept for comparison with WGAN-GP. One call takes ~1.4 s on one CPU thread.

Gaussian JS has no closed form: ``gauss_shift`` and ``gauss_scale`` compute it by the
trapezoid rule in numpy on a grid that spans ±12 standard deviations with ≥ 50 points per
standard deviation of the narrower density (it agrees with a grid 8× finer to 1e-9).
"""

from __future__ import annotations

import copy
import json
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import numpy as np
import torch
from torch import nn

from .objectives import clip_weights

log = logging.getLogger(__name__)

__all__ = [
    "CASES",
    "DEFAULT_SAMPLES",
    "Case",
    "CriticProgress",
    "Divergences",
    "METHODS",
    "MLPCritic",
    "W1Estimate",
    "add_cli",
    "critic_curve",
    "critic_grid",
    "estimate_w1",
    "gauss_scale",
    "gauss_shift",
    "parallel_lines",
    "parallel_lines_curves",
    "run_cli",
    "torch_threads",
    "translate",
    "translate_case",
    "translation_direction",
    "uniform",
]

LOG2 = math.log(2.0)
Method = Literal["clip", "gp", "lp"]
METHODS: tuple[str, ...] = ("clip", "gp", "lp")
DEFAULT_SAMPLES = 40_000  # per side; 25 % held out → standard error 0.014 on a unit-slope critic
# The default learning rate per method: Adam for the penalties; RMSProp for clipping, as the WGAN
# paper does (Adam's normalised steps random-walk the weights that get no signal out to ±c,
# which inflates ‖∇f‖ and spoils the gradient-norm correction: measured −29 % with Adam vs
# −3 % with RMSProp on the parallel lines at θ = 1.5).
_DEFAULT_LR = {"clip": 1e-4, "gp": 2e-3, "lp": 2e-3}


# --- closed forms ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Divergences:
    """W1, total variation, KL(P‖Q) and Jensen–Shannon (natural log, so JS ≤ log 2)."""

    w: float
    tv: float
    kl: float  # may be math.inf
    js: float


def _finite(name: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x}")
    return x


def _positive(name: str, x: float) -> float:
    x = _finite(name, x)
    if x <= 0:
        raise ValueError(f"{name} must be > 0, got {x:g}")
    return x


def _js_numeric(logp: Callable[[np.ndarray], np.ndarray], logq: Callable[[np.ndarray], np.ndarray],
                lo: float, hi: float, step: float) -> float:
    """JS(P, Q) = ½KL(P‖M) + ½KL(Q‖M), M = (P + Q)/2, by the trapezoid rule on [lo, hi].

    Works with log densities so that the far tails, where p and q underflow, add exactly 0
    instead of 0·log(0/0).
    """
    n = int(min(max(math.ceil((hi - lo) / step), 4000), 4_000_000)) + 1
    x = np.linspace(lo, hi, n)
    lp, lq = logp(x), logq(x)
    lm = np.logaddexp(lp, lq) - LOG2
    y = 0.5 * (np.exp(lp) * (lp - lm) + np.exp(lq) * (lq - lm))
    dx = (hi - lo) / (n - 1)
    return float(max(dx * (y.sum() - 0.5 * (y[0] + y[-1])), 0.0))


def _gauss_logpdf(mu: float, sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    c = -math.log(sigma) - 0.5 * math.log(2 * math.pi)
    return lambda x: c - 0.5 * ((x - mu) / sigma) ** 2


def _js_gauss(mu1: float, s1: float, mu2: float, s2: float) -> float:
    lo = min(mu1 - 12 * s1, mu2 - 12 * s2)
    hi = max(mu1 + 12 * s1, mu2 + 12 * s2)
    return _js_numeric(_gauss_logpdf(mu1, s1), _gauss_logpdf(mu2, s2), lo, hi, min(s1, s2) / 50)


def parallel_lines(theta: float) -> Divergences:
    """P_0 = (0, Z) vs P_θ = (θ, Z), Z ~ U[0, 1]: W = |θ|; TV = 1, KL = ∞, JS = log 2 for θ ≠ 0."""
    theta = _finite("θ", theta)
    if theta == 0.0:
        return Divergences(w=0.0, tv=0.0, kl=0.0, js=0.0)
    return Divergences(w=abs(theta), tv=1.0, kl=math.inf, js=LOG2)


def parallel_lines_curves(thetas: np.ndarray) -> dict[str, np.ndarray]:
    """TV, KL, JS and W of the parallel lines over an array of θ (the paper's figure 1)."""
    t = np.asarray(thetas, dtype=np.float64)
    off = t != 0
    return {"tv": np.where(off, 1.0, 0.0), "kl": np.where(off, np.inf, 0.0),
            "js": np.where(off, LOG2, 0.0), "w": np.abs(t)}


def gauss_shift(delta_mu: float, sigma: float = 1.0) -> Divergences:
    """N(0, σ²) vs N(Δμ, σ²).

    W = |Δμ| (the translation is the optimal transport map); KL = Δμ²/(2σ²) (either way);
    TV = 2Φ(|Δμ|/(2σ)) − 1 = erf(|Δμ|/(2√2 σ)); JS has no closed form and is integrated
    numerically (trapezoid rule, see the module docstring).
    """
    d = abs(_finite("Δμ", delta_mu))
    sigma = _positive("σ", sigma)
    return Divergences(w=d, tv=math.erf(d / (2 * math.sqrt(2) * sigma)), kl=d * d / (2 * sigma * sigma),
                       js=_js_gauss(0.0, sigma, d, sigma))


def gauss_scale(sigma1: float, sigma2: float) -> Divergences:
    """N(0, σ₁²) vs N(0, σ₂²).

    W = |σ₁ − σ₂|·√(2/π) (the map x ↦ (σ₂/σ₁)x moves each point by |1 − σ₂/σ₁|·|x|, and
    E|X| = σ₁√(2/π)); KL(P‖Q) = log(σ₂/σ₁) + σ₁²/(2σ₂²) − ½. The densities cross at ±x*,
    x*² = 2σ₁²σ₂² log(σ_hi/σ_lo)/(σ_hi² − σ_lo²), so TV = erf(x*/(√2 σ_lo)) − erf(x*/(√2 σ_hi)).
    JS has no closed form and is integrated numerically (trapezoid rule).
    """
    s1 = _positive("σ₁", sigma1)
    s2 = _positive("σ₂", sigma2)
    w = abs(s1 - s2) * math.sqrt(2 / math.pi)
    if s1 == s2:
        return Divergences(w=0.0, tv=0.0, kl=0.0, js=0.0)
    lo, hi = min(s1, s2), max(s1, s2)
    x_star = math.sqrt(2 * lo * lo * hi * hi * math.log(hi / lo) / (hi * hi - lo * lo))
    tv = math.erf(x_star / (math.sqrt(2) * lo)) - math.erf(x_star / (math.sqrt(2) * hi))
    kl = math.log(s2 / s1) + s1 * s1 / (2 * s2 * s2) - 0.5
    return Divergences(w=w, tv=tv, kl=kl, js=_js_gauss(0.0, s1, 0.0, s2))


def uniform(b: float) -> Divergences:
    """U[0, 1] vs U[0, b].

    W = |b − 1|/2 (quantiles u and bu). TV, KL and JS do not change when both are rescaled,
    so with r = max(b, 1/b) (compare U[0, 1] with U[0, r]): TV = 1 − 1/r;
    JS = ½[log(2r/(r+1)) + (1/r)·log(2/(r+1)) + ((r−1)/r)·log 2]. KL(P‖Q) = log b for b ≥ 1
    and ∞ for b < 1, where P has mass outside Q's support. At b = 2: W = TV = ½,
    KL(P‖Q) = log 2, KL(Q‖P) = ∞ (that is ``uniform(0.5).kl``), JS = ¾·log(4/3).
    """
    b = _positive("b", b)
    r = max(b, 1 / b)
    js = 0.5 * (math.log(2 * r / (r + 1)) + math.log(2 / (r + 1)) / r + (r - 1) / r * LOG2)
    return Divergences(w=abs(b - 1) / 2, tv=1 - 1 / r, kl=math.log(b) if b >= 1 else math.inf, js=max(js, 0.0))


def _check_dim(dim: int) -> int:
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise ValueError(f"the dimension must be an integer ≥ 1, got {dim!r}")
    return int(dim)


def translate(norm_v: float, dim: int = 2) -> Divergences:
    """P = N(0, I_d) vs P + v: W = ‖v‖; TV/KL/JS are those of the 1-D shift by ‖v‖ (σ = 1).

    (Project onto v/‖v‖: the orthogonal coordinates are the same standard normals under
    both, so every f-divergence reduces to the 1-D Gaussian shift.)
    """
    n = _finite("‖v‖", norm_v)
    if n < 0:
        raise ValueError(f"‖v‖ must be ≥ 0, got {n:g}")
    _check_dim(dim)
    g = gauss_shift(n)
    return Divergences(w=n, tv=g.tv, kl=g.kl, js=g.js)


# --- test cases: samplers next to their exact answers ---------------------------------------
Sampler = Callable[[int, float, "torch.Generator | None"], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class Case:
    """One test case: how to sample P and Q, and their exact divergences, for a parameter."""

    name: str
    label: str
    param_label: str
    param_range: tuple[float, float]  # for a slider
    default_param: float
    dim: int
    sample: Sampler                    # (n, param, generator) → (p, q), each (n, dim) float32
    exact: Callable[[float], Divergences]


def _sample_parallel_lines(n, theta, generator=None):
    parallel_lines(theta)  # validates
    p = torch.stack([torch.zeros(n), torch.rand(n, generator=generator)], dim=1)
    q = torch.stack([torch.full((n,), float(theta)), torch.rand(n, generator=generator)], dim=1)
    return p, q


def _sample_gauss_shift(n, delta_mu, generator=None):
    gauss_shift(delta_mu)
    return torch.randn(n, 1, generator=generator), torch.randn(n, 1, generator=generator) + float(delta_mu)


def _sample_gauss_scale(n, sigma2, generator=None):
    _positive("σ₂", sigma2)
    return torch.randn(n, 1, generator=generator), torch.randn(n, 1, generator=generator) * float(sigma2)


def _sample_uniform(n, b, generator=None):
    _positive("b", b)
    return torch.rand(n, 1, generator=generator), torch.rand(n, 1, generator=generator) * float(b)


def translation_direction(dim: int) -> torch.Tensor:
    """The fixed unit vector v/‖v‖ of the translate case: the diagonal (1, …, 1)/√d."""
    return torch.full((_check_dim(dim),), 1.0 / math.sqrt(dim))


def translate_case(dim: int = 2) -> Case:
    """The translate case in ``dim`` dimensions (``CASES["translate"]`` is d = 2)."""
    dim = _check_dim(dim)

    def sample(n, norm_v, generator=None):
        translate(norm_v, dim)
        p = torch.randn(n, dim, generator=generator)
        return p, torch.randn(n, dim, generator=generator) + float(norm_v) * translation_direction(dim)

    return Case("translate", f"Translation of N(0, I_{dim}) by v", "‖v‖", (0.0, 3.0), 1.0, dim,
                sample, lambda v: translate(v, dim))


CASES: dict[str, Case] = {
    "parallel-lines": Case("parallel-lines", "Parallel lines (0, Z) vs (θ, Z)", "θ", (-3.0, 3.0), 1.0, 2,
                           _sample_parallel_lines, parallel_lines),
    "gauss-shift": Case("gauss-shift", "N(0, 1) vs N(Δμ, 1)", "Δμ", (-3.0, 3.0), 1.0, 1,
                        _sample_gauss_shift, gauss_shift),
    "gauss-scale": Case("gauss-scale", "N(0, 1) vs N(0, σ₂²)", "σ₂", (0.1, 4.0), 2.0, 1,
                        _sample_gauss_scale, lambda s2: gauss_scale(1.0, s2)),
    "uniform": Case("uniform", "U[0, 1] vs U[0, b]", "b", (0.1, 4.0), 2.0, 1, _sample_uniform, uniform),
    "translate": translate_case(2),
}


# --- the critic -----------------------------------------------------------------------------
class MLPCritic(nn.Module):
    """f: R^d → R, two hidden ReLU layers. (N, d) → (N,)."""

    def __init__(self, in_dim: int, hidden: int = 64):
        super().__init__()
        self.in_dim = in_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@dataclass(frozen=True)
class CriticProgress:
    """A point on the live curve: E_P f − E_Q f on the current training batches (no penalty)."""

    iteration: int
    dual: float


@dataclass(frozen=True)
class W1Estimate:
    w: float                                   # E_P f − E_Q f on the held-out samples
    method: str
    grad_norm: float                           # mean ‖∇f‖ at held-out interpolates
    corrected: float | None                    # w / grad_norm: K removed (clip), slope 1 + W/(2λ) removed (gp, lp)
    history: tuple[tuple[int, float], ...]     # (iteration, training-batch dual), every report_every iterations
    critic: nn.Module                          # the trained f; frozen (requires_grad False), eval mode
    iterations: int = 0                        # steps actually taken (fewer if should_stop fired)


def _interpolate_grad_norms(critic: nn.Module, p: torch.Tensor, q: torch.Tensor,
                            generator: torch.Generator | None, create_graph: bool) -> torch.Tensor:
    """‖∇f(x̂)‖ at x̂ = εp + (1 − ε)q, pairing p[i] with q[i], one ε ~ U[0, 1] per pair. (B,)

    The same interpolates as ``objectives.gradient_penalty`` (which the image trainer uses);
    the one-sided penalty needs the per-sample norms, hence this helper.
    """
    b = min(len(p), len(q))
    eps = torch.rand((b, 1), generator=generator, dtype=p.dtype)
    x_hat = (eps * p[:b].detach() + (1 - eps) * q[:b].detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    return grad.norm(2, dim=1)


def _as_samples(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"{name} must be (n,) or (n, d), got shape {tuple(t.shape)}")
    if len(t) < 2:
        raise ValueError(f"{name} needs at least 2 samples (some are held out), got {len(t)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t.detach()


def _split(x: torch.Tensor, fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) after a seeded shuffle; both non-empty."""
    n = len(x)
    n_hold = min(max(int(round(fraction * n)), 1), n - 1)
    x = x[torch.randperm(n, generator=generator)]
    return x[n_hold:], x[:n_hold]


def estimate_w1(sample_p, sample_q, method: Method = "lp", *, steps: int = 800, lr: float | None = None,
                lambda_gp: float = 100.0, clip: float = 0.01, hidden: int = 64, batch_size: int = 256,
                heldout_fraction: float = 0.25, seed: int = 0,
                callback: Callable[[CriticProgress], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                critic: nn.Module | None = None, report_every: int = 10) -> W1Estimate:
    """Estimate W1(P, Q) from samples: train a critic by the dual, measure it on held-out data.

    ``sample_p``, ``sample_q``: (n, d) or (n,) tensors or arrays (the sizes may differ).
    ``method``: ``"lp"`` (one-sided penalty, the default), ``"gp"`` (two-sided) or ``"clip"``.
    ``lambda_gp`` weighs either penalty; ``clip`` is the weight bound of ``"clip"``.
    Adam (betas 0.5, 0.9; RMSProp for ``"clip"``) takes ``steps`` steps on batches of
    ``batch_size`` drawn from the training part of each sample, its learning rate decaying
    linearly from ``lr`` to 0 (default 2e-3 for Adam, 1e-4 for RMSProp).

    ``callback`` gets a ``CriticProgress`` every ``report_every`` iterations (and after the
    last); ``should_stop()`` is asked before every iteration and ends training early, after
    which the critic so far is still measured. ``critic`` continues from a copy of an earlier
    ``W1Estimate.critic`` (the original is left untouched). The same inputs and ``seed`` give
    the same result.

    The ops are tiny (batches of 256 through a 64-wide MLP), so torch's intra-op threads buy
    little on an idle machine, and cost a lot when other processes load the cores: measured
    on 2 cores, 2.4 s with one thread vs 27 s with two. Callers that own their process can
    wrap the call in ``with torch_threads(1):`` as the CLI does.

    The defaults land within 10 % of W1 on the parallel lines, Gaussian shifts and
    translations with W1 in [0.5, 3] given ~40 000 samples per side; see the module docstring
    for the biases (penalties overshoot by W²/(2λ); ``gp`` can lock in the wrong sign;
    ``clip`` returns K·W1).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(METHODS)}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer ≥ 0, got {steps!r}")
    if lr is None:
        lr = _DEFAULT_LR[method]
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not (lambda_gp >= 0 and math.isfinite(lambda_gp)):
        raise ValueError(f"lambda_gp must be ≥ 0, got {lambda_gp!r}")
    if not (clip > 0 and math.isfinite(clip)):
        raise ValueError(f"clip must be > 0, got {clip!r}")
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction!r}")
    if batch_size < 1 or hidden < 1 or report_every < 1:
        raise ValueError("batch_size, hidden and report_every must be ≥ 1")
    p = _as_samples(sample_p, "sample_p")
    q = _as_samples(sample_q, "sample_q")
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"the samples differ in dimension: {p.shape[1]} vs {q.shape[1]}")
    d = p.shape[1]

    gen = torch.Generator().manual_seed(seed)
    p_train, p_hold = _split(p, heldout_fraction, gen)
    q_train, q_hold = _split(q, heldout_fraction, gen)

    if critic is None:
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            f = MLPCritic(d, hidden)
    else:
        if getattr(critic, "in_dim", d) != d:
            raise ValueError(f"the critic takes {critic.in_dim}-D input, the samples are {d}-D")
        f = copy.deepcopy(critic)
    f.train().requires_grad_(True)
    opt = (torch.optim.RMSprop(f.parameters(), lr=lr) if method == "clip"
           else torch.optim.Adam(f.parameters(), lr=lr, betas=(0.5, 0.9)))

    def batch(x: torch.Tensor) -> torch.Tensor:
        return x if batch_size >= len(x) else x[torch.randint(len(x), (batch_size,), generator=gen)]

    history: list[tuple[int, float]] = []
    it = 0
    while it < steps:
        if should_stop is not None and should_stop():
            break
        for group in opt.param_groups:  # linear decay to 0: a fast start, a quiet finish
            group["lr"] = lr * (1 - it / steps)
        it += 1
        xp, xq = batch(p_train), batch(q_train)
        dual = f(xp).mean() - f(xq).mean()
        # the critic ascends E_P f − E_Q f (minus the penalty)
        loss = -dual
        if method != "clip":
            excess = _interpolate_grad_norms(f, xp, xq, gen, create_graph=True) - 1.0
            if method == "lp":
                excess = excess.clamp_min(0.0)  # only slopes above 1 cost anything
            loss = loss + lambda_gp * (excess ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if method == "clip":
            clip_weights(f, clip)
        if it % report_every == 0 or it == steps:
            point = CriticProgress(it, float(dual.detach()))
            history.append((point.iteration, point.dual))
            if callback is not None:
                callback(point)

    f.eval().requires_grad_(False)
    with torch.no_grad():
        w = float(f(p_hold).mean() - f(q_hold).mean())
    with torch.enable_grad():
        grad_norm = float(_interpolate_grad_norms(f, p_hold, q_hold, gen, create_graph=False).mean())
    corrected = w / grad_norm if grad_norm > 1e-12 else None
    log.debug("W1 estimate (%s, %d steps): %.4f, ‖∇f‖ %.4f", method, it, w, grad_norm)
    return W1Estimate(w=w, method=method, grad_norm=grad_norm, corrected=corrected, history=tuple(history),
                      critic=f, iterations=it)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count.

    Process-wide while it lasts: use it where nothing else runs torch work concurrently.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --- views of a trained critic --------------------------------------------------------------
def critic_grid(critic: nn.Module, xlim: tuple[float, float], ylim: tuple[float, float], n: int = 64) -> np.ndarray:
    """f on an n×n grid over xlim × ylim, for a heatmap of a 2-D critic.

    Row i is y = linspace(*ylim, n)[i], column j is x = linspace(*xlim, n)[j] (image layout:
    ``out[i, j] = f(x_j, y_i)``). Returns a float64 array that owns its memory.
    """
    if getattr(critic, "in_dim", 2) != 2:
        raise ValueError(f"critic_grid needs a 2-D critic; this one takes {critic.in_dim}-D input (use critic_curve)")
    xs = torch.linspace(float(xlim[0]), float(xlim[1]), n)
    ys = torch.linspace(float(ylim[0]), float(ylim[1]), n)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (n, n) each
    with torch.no_grad():
        out = critic(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1))
    return out.reshape(n, n).double().numpy().copy()


def critic_curve(critic: nn.Module, xs) -> np.ndarray:
    """f(x) at the points ``xs`` (shape (m,)) for a 1-D critic; float64 (m,)."""
    if getattr(critic, "in_dim", 1) != 1:
        raise ValueError(f"critic_curve needs a 1-D critic; this one takes {critic.in_dim}-D input (use critic_grid)")
    x = torch.as_tensor(np.asarray(xs, dtype=np.float32)).reshape(-1, 1)
    with torch.no_grad():
        return critic(x).reshape(-1).double().numpy().copy()


# --- CLI: python -m engine distances ---------------------------------------------------------
def add_cli(subparsers) -> None:
    """Register ``distances`` on the engine CLI's subparsers."""
    p = subparsers.add_parser(
        "distances", help="exact TV/KL/JS/W1 for a test case and a critic's W1 estimate",
        description="Closed-form TV, KL(P||Q), JS and W1 for a test case, and W1 estimated by a critic "
                    "trained on samples (measured on held-out samples).")
    p.add_argument("--case", choices=list(CASES), required=True)
    p.add_argument("--param", type=float, default=None,
                   help="parallel-lines: theta (default 1); gauss-shift: delta mu, sigma 1 (default 1); "
                        "gauss-scale: sigma2 > 0, sigma1 = 1 (default 2); uniform: b in U[0,1] vs U[0,b] "
                        "(default 2); translate: |v| >= 0 (default 1)")
    p.add_argument("--method", choices=METHODS, default="lp",
                   help="lp: one-sided penalty (default); gp: two-sided; clip: weight clipping")
    p.add_argument("--lambda", dest="lambda_gp", type=float, default=None, metavar="LAMBDA",
                   help="penalty weight of gp and lp (default 100)")
    p.add_argument("--dim", type=int, default=None, help="dimension of the translate case (default 2)")
    p.add_argument("--steps", type=int, default=None, help="critic training steps (default 800)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object; KL is the string \"inf\" when infinite")
    p.set_defaults(func=run_cli)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def run_cli(args) -> int:
    """Print the exact divergences and the critic's estimate. Bad values raise ValueError."""
    name = getattr(args, "case", None)
    if name not in CASES:
        raise ValueError(f"unknown case {name!r}; valid choices: {', '.join(CASES)}")
    dim = getattr(args, "dim", None)
    if dim is not None and name != "translate":
        raise ValueError("--dim applies to --case translate only")
    if dim is not None and (isinstance(dim, bool) or int(dim) != dim or dim < 1):
        raise ValueError(f"--dim must be an integer ≥ 1, got {dim}")
    case = translate_case(dim) if dim is not None else CASES[name]
    param = getattr(args, "param", None)
    param = case.default_param if param is None else float(param)
    try:
        exact = case.exact(param)
    except ValueError as e:
        raise ValueError(f"--param {param:g} is not valid for --case {name}: {e}") from None
    method = getattr(args, "method", None) or "lp"
    kwargs = {"seed": int(getattr(args, "seed", None) or 0)}
    steps = getattr(args, "steps", None)
    if steps is not None:
        if steps < 1:
            raise ValueError(f"--steps must be ≥ 1, got {steps}")
        kwargs["steps"] = steps
    lam = getattr(args, "lambda_gp", None)
    if lam is not None:
        if not (lam >= 0 and math.isfinite(lam)):
            raise ValueError(f"--lambda must be ≥ 0, got {lam:g}")
        kwargs["lambda_gp"] = lam

    gen = torch.Generator().manual_seed(kwargs["seed"])
    p, q = case.sample(DEFAULT_SAMPLES, param, gen)
    with torch_threads(1):  # see estimate_w1: one thread is as fast, and immune to a busy CPU
        est = estimate_w1(p, q, method, **kwargs)

    if getattr(args, "json", False):
        out = {"case": name, "param": param, "method": method, "w_exact": exact.w, "w_critic": est.w,
               "w_corrected": est.corrected, "grad_norm": est.grad_norm, "tv": _json_float(exact.tv),
               "kl": _json_float(exact.kl), "js": _json_float(exact.js)}
        print(json.dumps(out, allow_nan=False))
        return 0
    print(f"{name}, --param {param:g} ({DEFAULT_SAMPLES} samples per side, seed {kwargs['seed']})")
    print(f"  W1  exact {exact.w:.6f}   critic ({method}) {est.w:.6f}   "
          f"mean |grad f| {est.grad_norm:.4f}   critic/|grad f| "
          + (f"{est.corrected:.6f}" if est.corrected is not None else "n/a"))
    for label, v in (("TV", exact.tv), ("KL", exact.kl), ("JS", exact.js)):
        print(f"  {label}  {v:.6f}" if math.isfinite(v) else f"  {label}  inf")
    return 0
