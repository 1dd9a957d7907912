"""The auto family search's rule: which generator family to keep, and how to say why.

``FAMILIES`` are ordered by how much of the picture each may change, least first. ``choose`` keeps the
lowest score unless a family earlier in that order is within the intervals; ``describe_choice`` puts the
outcome into lines for a terminal. The search that measures the candidates: ``engine.training.search``.
"""

from __future__ import annotations

import math

from engine.training.reports import FamilyCandidate, FamilyChoiceReport

__all__ = ["FAMILIES", "RESNET_JUDGED_STEPS", "choose", "describe_choice", "unjudged"]

# Every family the search tries, ordered by how much of the picture each may change: least first.
FAMILIES = ("colour", "local", "resnet")
# Fewer ResNet steps than this in its trial show nothing of what it learns: on every task of the suite, trials of
# 11–14 steps (3 minutes on one CPU thread) translated to a grey mush 1.2–3.7 × as far from the target as the
# untranslated images, including the tasks (sketch, demo) where the ResNet is the only family that learns.
RESNET_JUDGED_STEPS = 100


def choose(candidates: list[FamilyCandidate]) -> tuple[str, bool, str]:
    """(family, resolved, reason): the lowest score, or, where the intervals cannot tell it from a family
    that changes the picture less, the least-changing of those. ``candidates`` are in ``FAMILIES`` order.
    Where the ResNet lost after too short a trial to show anything, the reason says so and how to pin it."""
    best = min(candidates, key=lambda c: c.score)
    tied = [c for c in candidates if c.lo <= best.hi and FAMILIES.index(c.family) < FAMILIES.index(best.family)]
    if not tied:
        family, resolved = best.family, True
        reason = f"{best.family} came closest to the target (distance / start {best.score:.2f})"
    else:
        family, resolved = tied[0].family, False
        reason = (f"the search cannot tell {family} ({tied[0].score:.2f}) from {best.family} ({best.score:.2f}) "
                  f"within its interval: keeping {family}, which changes the picture less")
    resnet = unjudged(candidates, family)
    if resnet is not None:
        reason += (f". The resnet trained only {resnet.steps} steps in its trial, too few to show what it learns: "
                   "if your change draws new shapes or textures (summer → winter, photo → sketch), pin it "
                   "(--set netG=resnet; in the app, Model → Generator family)")
    return family, resolved, reason


def unjudged(candidates, chosen: str) -> FamilyCandidate | None:
    """The ResNet's candidate where it lost (``chosen`` is another family) after a trial too short to judge it
    (fewer than ``RESNET_JUDGED_STEPS`` steps); None where it won, was judged fairly, or was not tried."""
    resnet = next((c for c in candidates if c.family == "resnet"), None)
    if chosen == "resnet" or resnet is None or resnet.steps >= RESNET_JUDGED_STEPS:
        return None
    return resnet


def describe_choice(rep: FamilyChoiceReport) -> str:
    """The search's outcome for a terminal: one line per candidate, the one kept marked, and why."""
    lines = ["generator families tried (multi-scale sliced W / start over both directions, 95 % interval; "
             "lower is closer to the target):"]
    for c in rep.candidates:
        mark = "→" if c.family == rep.chosen else " "
        lines.append(f"  {mark} {c.family:<7} {c.score:6.3f}  [{c.lo:.3f}, {c.hi:.3f}]  {c.steps} steps in "
                     f"{c.seconds:.0f} s")
    cost = f"{rep.dropped_s:.0f} s on the families dropped"
    if math.isfinite(rep.dropped_share):
        cost += f" ({100 * rep.dropped_share:.0f} % of the budget)"
    lines.append(f"kept {rep.chosen}: {rep.reason}; {cost}")
    return "\n".join(lines)
