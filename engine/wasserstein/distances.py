"""Distances between probability distributions in closed form, and test cases with known answers.

The Wasserstein GAN paper (Arjovsky et al. 2017) argues with one example: P_0 = (0, Z) and
P_θ = (θ, Z), Z ~ U[0, 1], two parallel vertical segments. For θ ≠ 0 the supports are
disjoint, so TV = 1, KL = ∞ and JS = log 2 whatever θ is; only W1 = |θ| shrinks as the
segments approach. All four are 0 at θ = 0. This module holds that example and four more
with known answers (``CASES``); ``engine.wasserstein.critic`` estimates W1 from samples the way a WGAN critic does.
Each ``Case`` also says how to show it (exact densities of the 1-D cases, whether the parameter
is signed, the slider's range, a short note), so a view needs no knowledge of its own.

Gaussian JS has no closed form: ``gauss_shift`` and ``gauss_scale`` compute it by the
trapezoid rule in numpy on a grid that spans ±12 standard deviations with ≥ 50 points per
standard deviation of the narrower density (it agrees with a grid 8× finer to 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["CASES", "Case", "Divergences", "gauss_scale", "gauss_shift", "parallel_lines", "parallel_lines_curves",
           "translate", "translate_case", "translation_direction", "uniform"]

LOG2 = math.log(2.0)


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
Density = Callable[[np.ndarray, float], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class Case:
    """One test case: how to sample P and Q, and their exact divergences, for a parameter.

    The last fields describe how to show it (the Distances tab draws what they say).
    """

    name: str
    label: str
    param_label: str
    param_range: tuple[float, float]  # for a slider
    default_param: float
    dim: int
    sample: Sampler                    # (n, param, generator) → (p, q), each (n, dim) float32
    exact: Callable[[float], Divergences]
    density: Density | None = None     # 1-D cases: (x, param) → (p(x), q(x)), the exact densities on a grid
    signed: bool = False               # the parameter takes both signs (shown as +0.50 / −0.50)
    display_range: tuple[float, float] | None = None  # the slider's range when narrower than param_range
    note: str = ""                     # what the case shows, in a few words beside its numbers

    @property
    def slider_range(self) -> tuple[float, float]:
        """The parameter range a slider offers: ``display_range``, else ``param_range``."""
        return self.display_range or self.param_range


_SQRT_2PI = math.sqrt(2 * math.pi)


def _normal_pdf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * _SQRT_2PI)


def _uniform_pdf(x: np.ndarray, b: float) -> np.ndarray:
    """The density of U[0, b]."""
    return np.where((x >= 0) & (x <= b), 1.0 / b, 0.0)


def _density_gauss_shift(x, delta_mu):
    return _normal_pdf(x, 0.0, 1.0), _normal_pdf(x, _finite("Δμ", delta_mu), 1.0)


def _density_gauss_scale(x, sigma2):
    return _normal_pdf(x, 0.0, 1.0), _normal_pdf(x, 0.0, _positive("σ₂", sigma2))


def _density_uniform(x, b):
    return _uniform_pdf(x, 1.0), _uniform_pdf(x, _positive("b", b))


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
    # The paper's figure 1 spans θ ∈ [−2, 2]; the slider shows that range.
    "parallel-lines": Case("parallel-lines", "Parallel lines (0, Z) vs (θ, Z)", "θ", (-3.0, 3.0), 1.0, 2,
                           _sample_parallel_lines, parallel_lines, signed=True, display_range=(-2.0, 2.0),
                           note="only W goes smoothly to 0 as the segments meet"),
    "gauss-shift": Case("gauss-shift", "N(0, 1) vs N(Δμ, 1)", "Δμ", (-3.0, 3.0), 1.0, 1,
                        _sample_gauss_shift, gauss_shift, density=_density_gauss_shift, signed=True),
    "gauss-scale": Case("gauss-scale", "N(0, 1) vs N(0, σ₂²)", "σ₂", (0.1, 4.0), 2.0, 1,
                        _sample_gauss_scale, lambda s2: gauss_scale(1.0, s2), density=_density_gauss_scale),
    "uniform": Case("uniform", "U[0, 1] vs U[0, b]", "b", (0.1, 4.0), 2.0, 1, _sample_uniform, uniform,
                    density=_density_uniform),
    "translate": translate_case(2),
}
