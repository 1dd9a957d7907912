"""The names of the figures a run reports: every key once, with what it means.

The strings are a file format: metrics.jsonl rows, ``ProgressReport.metrics``, ``EvalReport.metrics``
and TensorBoard tags use them, and old run folders are read back with them, so they never change.
Only this module and the modules that produce a figure spell a key.

Directions, as in ``engine.training.step``: G maps A→B (the paper's G), F maps B→A (the paper's F);
the critic D_B judges domain B, D_A judges domain A. The suffix of a per-step key follows the
reference implementation, which is not the same rule for every key:

* losses of a generator (``G_*``, ``idt_*``) and of a cycle (``cycle_*``) are named for the domain
  their images *start* in: ``G_A`` is G's (A→B) loss, ``cycle_A`` the round trip A→B→A;
* figures of a critic (``D_*``, ``w_*``, ``gp_grad_norm_*``) are named for the domain it judges:
  ``w_A`` is D_A's, so it measures the B→A direction (real A against F(b)).

Held-out figures name the direction in full (``AtoB``, ``BtoA``) where they can.
"""

from __future__ import annotations

import math

__all__ = [
    "G_A", "G_B", "D_A", "D_B", "CYCLE_A", "CYCLE_B", "IDT_A", "IDT_B", "LOSS_KEYS",
    "W_A", "W_B", "GP_GRAD_NORM_A", "GP_GRAD_NORM_B",
    "CYCLE_A_VAL", "CYCLE_B_VAL", "W_A_VAL", "W_B_VAL", "GP_GRAD_NORM_A_VAL", "GP_GRAD_NORM_B_VAL",
    "input_change", "saturated", "saturated_real", "BEST_STEP", "best_steps", "describe_best",
]

# --- every step, averaged over a progress report's window ("progress" rows) ----------------------------------
G_A = "G_A"            # adversarial loss of G (A→B) against D_B
G_B = "G_B"            # adversarial loss of F (B→A) against D_A
D_A = "D_A"            # loss of D_A: real a against F(b) (the pool's)
D_B = "D_B"            # loss of D_B: real b against G(a)
CYCLE_A = "cycle_A"    # λ·‖F(G(a)) − a‖₁
CYCLE_B = "cycle_B"    # λ·‖G(F(b)) − b‖₁
IDT_A = "idt_A"        # λ·λ_id·‖G(b) − b‖₁ (0 when λ_id = 0)
IDT_B = "idt_B"        # λ·λ_id·‖F(a) − a‖₁
LOSS_KEYS = (G_A, G_B, D_A, D_B, CYCLE_A, CYCLE_B, IDT_A, IDT_B)  # every objective reports these

# Wasserstein objectives only. The training critic's gap E f(real) − E f(fake) on the batch it was trained
# on (``DLoss.critic_gap``): its own running estimate of W, biased upward by fitting that very batch.
W_A = "w_A"            # D_A's gap: real a against F(b), the B→A direction
W_B = "w_B"            # D_B's gap: real b against G(a), the A→B direction
GP_GRAD_NORM_A = "gp_grad_norm_A"  # wgan-gp: D_A's mean ‖∇f(x̂)‖ at the penalty's interpolates (1 is the aim)
GP_GRAD_NORM_B = "gp_grad_norm_B"  # the same for D_B

# --- held out, at each evaluation ("eval" rows) ------------------------------------------------------------
CYCLE_A_VAL = "cycle_A_val"  # cycle_A on held-out images
CYCLE_B_VAL = "cycle_B_val"
# Wasserstein objectives: the same training critics' gaps on held-out images they never saw
# (``Objective.heldout_w``); unlike w_A/w_B, not inflated by fitting.
W_A_VAL = "w_A_val"    # D_A on held-out real a against F(held-out b): B→A
W_B_VAL = "w_B_val"    # D_B on held-out real b against G(held-out a): A→B
GP_GRAD_NORM_A_VAL = "gp_grad_norm_A_val"  # D_A's mean gradient norm at held-out interpolates
GP_GRAD_NORM_B_VAL = "gp_grad_norm_B_val"


def input_change(way: str) -> str:
    """``gap_AtoB``/``gap_BtoA``: mean |G(x) − x| of the generator of ``way`` on held-out inputs, in [-1, 1] units
    (1/127.5 is one grey level): how far it moves its input. The failure watch reads it."""
    return f"gap_{way}"


def saturated(way: str) -> str:
    """``saturated_AtoB``/``_BtoA``: the share of the generator's held-out output pixels at ±1."""
    return f"saturated_{way}"


def saturated_real(domain: str) -> str:
    """``saturated_real_A``/``_B``: the share of real held-out pixels of ``domain`` at ±1 (what is normal there)."""
    return f"saturated_real_{domain}"


# The independent Wasserstein monitor's readings (``engine.wasserstein.monitor``, which spells them in its
# ``MONITOR_KEYS``: that layer cannot import this one). Per direction ``{key}_{way}``, e.g. ``w_mon_AtoB``: its
# held-out patch W (``WMonitor.measure``), ``w_mon_lo``/``w_mon_hi`` its 95 % interval, ``w_mon_grad`` its critic's
# slope, ``w_mon_start`` the identity's W, ``w_mon_floor`` the target against itself (``w_mon_floor_hi`` the top of
# its 95 % interval), ``w_mon_remaining`` the share of the way still to go (raw: what to show is
# ``Reading.standing``), ``sliced``/``emd``/``structure`` the critic-free cross-checks (``structure``: multi-scale,
# it sees blur; ``structure_lo``/``structure_hi`` its 95 % interval, ``structure_start`` the untranslated sources'
# reading, ``structure_floor``/``structure_floor_hi`` what samples of real target images of the sources' size read:
# the median and the top). Written only where the monitor runs.
BEST_STEP = "w_mon_best_step"  # checkpoints/best.pt's step so far (``BestKeeper``; the later of its two), in each eval
# row; ``w_mon_best_step_AtoB``/``_BtoA``: each direction's own pick, whose generator best.pt holds for it.
_WAY_NAMES = (("AtoB", "A→B"), ("BtoA", "B→A"))


def best_steps(metrics) -> dict[str, int]:
    """Each direction's best.pt step from an evaluation's metrics; {} before any. Runs from before the picks were per
    direction wrote ``BEST_STEP`` only, for both."""
    out = {}
    for way, _ in _WAY_NAMES:
        v = metrics.get(f"{BEST_STEP}_{way}", metrics.get(BEST_STEP))
        if v is not None and math.isfinite(v):
            out[way] = int(v)
    return out


def describe_best(steps) -> str:
    """best.pt's steps in words: "step 900" where the directions agree, else "A→B of step 900, B→A of step 1,200"."""
    if len(set(steps.values())) == 1:
        return f"step {next(iter(steps.values())):,}"
    return ", ".join(f"{name} of step {steps[way]:,}" for way, name in _WAY_NAMES if way in steps)

# With ground truth (the demo data, quality tasks): ``psnr_AtoB``, ``psnr_BtoA``, ``psnr_cycle``, ``psnr_identity``
# and ``moved_*``, written by ``engine.metrics.GroundTruth.score`` (documented there).
