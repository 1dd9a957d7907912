"""The tables of ``python -m engine quality``: a suite's markdown table, and saved results side by side.

Each reads what ``engine.tools.quality`` wrote (curve.json's and summary.json's dicts) and returns lines.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["suite_table", "compare_suites", "compare_runs", "value_at", "time_to_reach"]


def _marks(results: Sequence[Mapping[str, Any]]) -> list[float]:
    """The whole minutes a table shows: every minute of the shortest run."""
    shortest = min(r["points"][-1]["minutes"] for r in results)
    return [float(m) for m in range(1, int(shortest + 1e-6) + 1)]


def value_at(points: Sequence[Mapping[str, float]], minutes: float, key: str = "psnr_AtoB") -> float:
    """The curve's value at ``minutes`` (linear between points; the last value past the end)."""
    prev = points[0]
    for p in points[1:]:
        if p["minutes"] >= minutes:
            f = (minutes - prev["minutes"]) / max(p["minutes"] - prev["minutes"], 1e-12)
            return prev[key] + f * (p[key] - prev[key])
        prev = p
    return points[-1][key]


def time_to_reach(points: Sequence[Mapping[str, float]], target: float, key: str = "psnr_AtoB") -> float | None:
    """Training minutes at which the curve first reaches ``target`` (linear between points), or None."""
    prev = None
    for p in points:
        if p[key] >= target:
            if prev is None or p[key] == prev[key]:
                return p["minutes"]
            f = (target - prev[key]) / (p[key] - prev[key])
            return prev["minutes"] + f * (p["minutes"] - prev["minutes"])
        prev = p
    return None


def suite_table(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table, one row per task: identity baseline, PSNR(G(x), T(x)) at each minute and at the
    end, its gain over the identity, how far G moved (1 = as far as T), and whether it is stuck there."""
    marks = _marks(results) if all(r["budget"].get("minutes") for r in results) else []
    head = ["task", "kind", "split", "identity"] + [f"{m:g} min" for m in marks] + \
           ["final", "gain", "moved", "stuck", "steps", "steps/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        fin = r["points"][-1]
        row = [r["task"], r.get("kind", ""), r.get("split", ""), f"{r['identity_baseline']:.2f}"]
        row += [f"{value_at(r['points'], m):.2f}" for m in marks]
        ended = f" (drifted: best restored, stopped at {fin['minutes']:.1f} min)" if r.get("ended") == "drifted" else ""
        row += [f"**{fin['psnr_AtoB']:.2f}**{ended}", f"{fin['psnr_AtoB'] - r['identity_baseline']:+.2f}",
                f"{fin['moved']:.2f}", "**yes**" if r["stuck"] else "no", str(r["steps"]), f"{r['steps_per_s']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    gain = [r["points"][-1]["psnr_AtoB"] - r["identity_baseline"] for r in results]
    lines.append(f"\nmean final {np.mean([r['points'][-1]['psnr_AtoB'] for r in results]):.2f} dB, mean gain over the "
                 f"identity {np.mean(gain):+.2f} dB, stuck on {sum(r['stuck'] for r in results)} "
                 f"of {len(results)} tasks")
    return lines


def compare_suites(suites: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table comparing suites (each a summary.json) task by task: final PSNR of each, the first's
    lead over the second (per task and averaged), and the minute marks where both runs have them."""
    labels = [s["label"] for s in suites]
    by_task = [{r["task"]: r for r in s["tasks"]} for s in suites]
    tasks = [t for t in by_task[0] if all(t in b for b in by_task[1:])]
    head = (["task", "identity"] + [f"{lab}" for lab in labels]
            + ([f"{labels[0]} − {labels[1]}"] if len(labels) > 1 else []))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    leads = []
    for t in tasks:
        rs = [b[t] for b in by_task]
        finals = [r["points"][-1]["psnr_AtoB"] for r in rs]
        row = [t, f"{rs[0]['identity_baseline']:.2f}"]
        row += [f"{f:.2f}" + (" (stuck)" if r["stuck"] else "") for f, r in zip(finals, rs)]
        if len(rs) > 1:
            leads.append(finals[0] - finals[1])
            row.append(f"{leads[-1]:+.2f}")
        lines.append("| " + " | ".join(row) + " |")
    if leads:
        lines.append(f"\nmean lead of {labels[0]} over {labels[1]}: {np.mean(leads):+.2f} dB over {len(leads)} tasks; "
                     f"ahead (or within 0.5 dB) on {sum(d >= -0.5 for d in leads)} of {len(leads)}")
    return lines


def compare_runs(curves: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines comparing single-task runs to the first: final PSNR, when each reaches the first's final
    PSNR, and the lead at the first's final time."""
    ref = curves[0]
    ref_final = ref["points"][-1]
    lines = [f"identity baseline PSNR(x, T(x)): {ref['identity_baseline']:.2f} dB  (task {ref['task']})"]
    for c in curves:
        fin = c["points"][-1]
        line = (f"{c.get('label') or '?':>10}: G(x) vs T(x) {fin['psnr_AtoB']:.2f} dB at {fin['minutes']:.2f} min "
                f"(step {fin['step']}, {c['steps_per_s']:.2f} steps/s); F(T(x)) vs x {fin['psnr_BtoA']:.2f} dB; "
                f"cycle {fin['psnr_cycle']:.2f} dB")
        if c is not ref:
            t = time_to_reach(c["points"], ref_final["psnr_AtoB"])
            lead = value_at(c["points"], ref_final["minutes"]) - ref_final["psnr_AtoB"]
            line += (f"\n{'':>10}  reaches {ref.get('label') or 'the reference'}'s final "
                     f"{ref_final['psnr_AtoB']:.2f} dB "
                     + (f"at {t:.2f} min" if t is not None else "never")
                     + f" ({t / ref_final['minutes']:.0%} of its time)" * (t is not None and ref_final["minutes"] > 0)
                     + f"; lead at {ref_final['minutes']:.2f} min: {lead:+.2f} dB")
        lines.append(line)
    return lines
