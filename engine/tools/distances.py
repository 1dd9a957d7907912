"""``python -m engine distances``: exact TV, KL, JS and W1 of a test case beside a critic's W1 estimate."""

from __future__ import annotations

import json
import math

import torch

from engine.wasserstein.critic import DEFAULT_SAMPLES, METHODS, estimate_w1, torch_threads
from engine.wasserstein.distances import CASES, translate_case

__all__ = ["add_cli", "run_cli"]


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
