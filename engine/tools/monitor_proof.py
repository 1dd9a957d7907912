"""Does a signal without ground truth track quality? The W monitor judged against PSNR on tasks with a known answer.

``python -m engine quality --monitor`` evaluates the run at every scoring point as the trainer
would (held-out split, the W monitor, the training critic's own estimate for the Wasserstein
objectives) next to PSNR(G(x), T(x)). For each signal and direction this module then gives:

- the Spearman rank correlation between the signal and the PSNR across the evaluations, signed so
  that +1 is perfect: a distance should fall as the PSNR rises, so it is ρ(−signal, PSNR);
- the PSNR of the evaluation the signal would pick (its lowest reading) next to the best PSNR of
  the run. The signal "best.pt" is what the run's best checkpoint ranks by, and its pick is made by
  ``BestKeeper``, the same bookkeeping that keeps ``best.pt``: per direction, a tie within the reading's
  noise going to the later step. (Tables written before best.pt picked per direction gave its joint pick in
  the "monitor W" rows.)

The issue's bar: ρ ≥ 0.8 on every task whose PSNR moves by ≥ 2 dB, and the pick within 0.5 dB.

Points scored during an ``auto`` run's family search (``searching``) are left out: they read candidates on trial,
which the run does not evaluate and the user never sees.

``standing_series`` replays what the app and the CLI told the user at each evaluation ("x % of the way left", or
words where no share means anything: ``Reading.standing``), and ``standing_table`` checks it against the truth: the
share must not read ≤ 5 % ("done") while the PSNR is still more than 0.5 dB below its final value.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from engine.config import PER_PIXEL_FAMILIES
from engine.metrics import spearman
from engine.training.saving import BestKeeper
from engine.wasserstein.monitor import NEAR_DONE, Reading

__all__ = ["spearman", "SIGNALS", "proof_of", "proof_table", "RHO_BAR", "PICK_BAR", "MOVES_BY", "standing_series",
           "done_early", "standing_table"]

RHO_BAR, PICK_BAR, MOVES_BY = 0.8, 0.5, 2.0

# signal name → the evaluation key per direction (lower = closer to the target)
SIGNALS: dict[str, str] = {
    "monitor W": "w_mon_{way}",
    "sliced W": "sliced_{way}",
    "exact W (4×4)": "emd_{way}",
    "structure": "structure_{way}",        # multi-scale sliced W (engine.wasserstein.structure)
    "training critic": "w_{target}_val",   # wgan-clip / wgan-gp only
}
_WAYS = (("AtoB", "B"), ("BtoA", "A"))


def _best_pt(points: Sequence[Mapping[str, float]], by_structure: bool) -> dict[str, dict[str, Any]]:
    """Per direction, what ``best.pt`` ranks by (``BestKeeper.way_score``) at each point and the point it picks."""
    keeper = BestKeeper(None, patience=10**9, stop=False, by_structure=by_structure)
    ranked: dict[str, list[tuple[int, float]]] = {way: [] for way, _ in _WAYS}
    for i, p in enumerate(points):
        for way, _ in _WAYS:
            scored = keeper.way_score(dict(p), way)
            if scored is not None:
                ranked[way].append((i, scored[0]))
        keeper.observe(i, dict(p))
    return {way: {"ranked": ranked[way], "pick": keeper.steps[way]} for way, _ in _WAYS if way in keeper.steps}


def proof_of(points: Sequence[Mapping[str, float]], family: str | None = None) -> dict[str, dict[str, Any]]:
    """Per signal and direction: ρ(−signal, PSNR), the PSNR's range over the run, the PSNR of the evaluation the
    signal would pick (its lowest reading) and the best PSNR. Evaluations without the signal are left out; signals
    with fewer than 3 readings are not reported. The signal "best.pt" is what the run's best checkpoint ranks by
    (the structure reading for a ResNet, ``family`` "resnet"; the monitor's W for the per-pixel families), and
    its pick is ``BestKeeper``'s: each direction's own, a tie within the reading's noise going to the later step."""
    points = [p for p in points if not p.get("searching")]
    out: dict[str, dict[str, Any]] = {}

    def entry(name: str, way: str, rows: Sequence[tuple[int, float]], pick: int) -> None:
        q = [points[i][f"psnr_{way}"] for i, _ in rows]
        out[f"{name} {way}"] = {"signal": name, "way": way, "n": len(rows),
                                "rho": spearman([-v for _, v in rows], q), "psnr_range": max(q) - min(q),
                                "picked_psnr": points[pick][f"psnr_{way}"], "picked_step": points[pick]["step"],
                                "best_psnr": max(q)}

    for name, pattern in SIGNALS.items():
        for way, target in _WAYS:
            key, psnr = pattern.format(way=way, target=target), f"psnr_{way}"
            rows = [(i, p[key]) for i, p in enumerate(points) if math.isfinite(p.get(key, math.nan)) and psnr in p]
            if len(rows) >= 3:
                entry(name, way, rows, rows[int(np.argmin([v for _, v in rows]))][0])
    for way, picked in _best_pt(points, family is not None and family not in PER_PIXEL_FAMILIES).items():
        rows = [(i, v) for i, v in picked["ranked"] if f"psnr_{way}" in points[i]]
        if len(rows) >= 3:
            entry("best.pt", way, rows, picked["pick"])
    return out


def proof_table(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table: one row per task, signal and direction, with the verdict against the bars."""
    head = ["task", "signal", "way", "evals", "PSNR moves", "ρ(−W, PSNR)", "picked", "best", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for e in proof_of(r["points"], r.get("family")).values():
            moves = e["psnr_range"] >= MOVES_BY
            ok_rho = e["rho"] >= RHO_BAR if moves else True
            ok_pick = e["best_psnr"] - e["picked_psnr"] <= PICK_BAR
            verdict = ("met" if ok_rho and ok_pick else
                       "; ".join(m for m, bad in (("ρ below 0.8", not ok_rho), ("pick > 0.5 dB off", not ok_pick))
                                 if bad))
            lines.append("| " + " | ".join([
                r["task"], e["signal"], e["way"], str(e["n"]),
                f"{e['psnr_range']:.2f} dB" + ("" if moves else " (< 2)"),
                f"{e['rho']:+.2f}", f"{e['picked_psnr']:.2f} (step {e['picked_step']})", f"{e['best_psnr']:.2f}",
                verdict]) + " |")
    return lines


def standing_series(points: Sequence[Mapping[str, float]], way: str) -> list[tuple[Mapping[str, float], float, str]]:
    """(point, share of the way left or nan, words) at every evaluation with a monitor reading of ``way``, each read
    against the evaluation before, as the app's W plot and the CLI read them."""
    out: list[tuple[Mapping[str, float], float, str]] = []
    previous = None
    for p in points:
        if p.get("searching"):
            continue
        reading = Reading.from_metrics(p, way)
        if reading is None or not math.isfinite(reading.w):
            continue
        share, words = reading.standing(previous)
        out.append((p, share, words))
        previous = reading
    return out


def done_early(points: Sequence[Mapping[str, float]], way: str) -> Mapping[str, float] | None:
    """The first evaluation where the share left read ≤ ``NEAR_DONE`` while the PSNR of ``way`` was still more than
    ``PICK_BAR`` below its final value (a "done" that was not); None where that never happened."""
    series = standing_series(points, way)
    if not series:
        return None
    final = points[-1][f"psnr_{way}"]
    for p, share, _ in series:
        if share <= NEAR_DONE and final - p[f"psnr_{way}"] > PICK_BAR:
            return p
    return None


def standing_table(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table: per task and direction, how often the share left was shown, its lowest value, and whether
    it read "done" (≤ 5 %) before the PSNR was within 0.5 dB of its final value."""
    head = ["task", "way", "evals", "share shown", "lowest share", "final PSNR", "read done early?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for way, _ in _WAYS:
            series = standing_series(r["points"], way)
            if not series:
                continue
            shares = [share for _, share, _ in series if math.isfinite(share)]
            early = done_early(r["points"], way)
            verdict = "no" if early is None else (f"**yes**, at step {early['step']} "
                                                  f"({early[f'psnr_{way}']:.2f} dB)")
            lines.append("| " + " | ".join([
                r["task"], way, str(len(series)), str(len(shares)),
                f"{100 * min(shares):.0f} %" if shares else "—", f"{r['points'][-1][f'psnr_{way}']:.2f} dB",
                verdict]) + " |")
    return lines
