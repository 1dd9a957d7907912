"""Pictures for the quality tool, drawn with PIL alone: comparison grids, PSNR curves, and the W monitor's share left
over the PSNR."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from engine.io.atomic import save_png
from engine.metrics import psnr

__all__ = ["comparison_grid", "plot_curves", "plot_monitor"]


_BG, _FG, _DIM = (32, 34, 38), (235, 235, 235), (200, 205, 215)
_LINE_H = 14


def comparison_grid(images: Mapping[str, np.ndarray], title: str = "", n: int = 4, scale: int = 2) -> Image.Image:
    """Rows of held-out examples: x | T(x) (truth) | G(x) | F(T(x)), labelled, enlarged with nearest
    neighbour so single-pixel patterns (checkerboards) stay visible. ``images[k]``: uint8 (N, H, W, 3)."""
    cols = [("x", "x (held out)"), ("tx", "T(x) truth"), ("gx", "G(x)"), ("ftx", "F(T(x))")]
    cols = [(k, label) for k, label in cols if k in images]
    n = min(n, images["x"].shape[0])
    h, w = images["x"].shape[1:3]
    ch, cw, pad = h * scale, w * scale, 4
    title_h = (_LINE_H + 4) if title else 0
    grid = Image.new("RGB", (len(cols) * (cw + pad) + pad, title_h + n * (ch + _LINE_H + pad) + pad), _BG)
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((pad, 3), title, fill=_FG)
    y = title_h + pad
    for i in range(n):
        x = pad
        for key, label in cols:
            if key == "gx" and "tx" in images:
                label += f"  {psnr(images['gx'][i], images['tx'][i]):.1f} dB"
            elif key == "ftx":
                label += f"  {psnr(images['ftx'][i], images['x'][i]):.1f} dB"
            draw.text((x + 2, y), label, fill=_DIM)
            grid.paste(Image.fromarray(images[key][i]).resize((cw, ch), Image.Resampling.NEAREST), (x, y + _LINE_H))
            x += cw + pad
        y += ch + _LINE_H + pad
    return grid


_PALETTE = [(67, 209, 158), (177, 140, 255), (255, 170, 60), (90, 170, 255), (255, 99, 120), (230, 220, 90)]


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def plot_curves(curves: Mapping[str, Sequence[tuple[float, float]]], baseline: float | None, path,
                *, title: str = "", xlabel: str = "training minutes", ylabel: str = "PSNR (dB)",
                size: tuple[int, int] = (760, 460)) -> Path:
    """Draw ``{label: [(minutes, psnr), …]}`` as lines on simple axes, with the identity baseline
    as a dashed grey line and a legend, into the PNG ``path``. PIL only (no matplotlib)."""
    label = f"identity baseline PSNR(x, T(x)) {baseline:.2f} dB" if baseline is not None else ""
    return save_png(_curves_image(curves, baseline, label, title=title, xlabel=xlabel, ylabel=ylabel, size=size), path)


def plot_monitor(points: Sequence[Mapping[str, float]], shares: Mapping[str, Sequence[tuple[float, float]]],
                 baseline: float | None, path, *, title: str = "", near_done: float = 0.05) -> Path:
    """The curve pair of a ``quality --monitor`` run, one over the other on a shared time axis: the PSNR of each
    direction against the truth, and the W monitor's share of the way left (``{way: [(minutes, share)]}``, nan
    where the app showed words instead of a share) with the level that reads as done, dashed."""
    psnr_curves = {f"PSNR {way}": [(p["minutes"], p[f"psnr_{way}"]) for p in points] for way in shares}
    top = _curves_image(psnr_curves, baseline,
                        f"identity baseline {baseline:.2f} dB" if baseline is not None else "", title=title,
                        xlabel="", size=(760, 300))
    share_curves = {f"share left {way}": [(m, 100 * v) for m, v in c]
                    for way, c in shares.items()}
    bottom = _curves_image(share_curves, 100 * near_done, f"{100 * near_done:g} %: reads as done",
                           ylabel="% of the way left (a gap: the app showed words, not a share)",
                           size=(760, 300), x_max=max(p["minutes"] for p in points),
                           y_min=0.0)
    img = Image.new("RGB", (760, 600), _BG)
    img.paste(top, (0, 0))
    img.paste(bottom, (0, 300))
    return save_png(img, path)


def _curves_image(curves: Mapping[str, Sequence[tuple[float, float]]], baseline: float | None, baseline_label: str,
                  *, title: str = "", xlabel: str = "training minutes", ylabel: str = "PSNR (dB)",
                  size: tuple[int, int] = (760, 460), x_max: float | None = None, y_min: float | None = None
                  ) -> Image.Image:
    W, H = size
    left, right, top, bottom = 58, 18, 44 if title else 26, 44
    img = Image.new("RGB", (W, H), _BG)
    draw = ImageDraw.Draw(img)
    pts = [(float(x), float(y)) for c in curves.values() for x, y in c if math.isfinite(y)]
    ys = [y for _, y in pts] + ([baseline] if baseline is not None and math.isfinite(baseline) else [])
    x_max = max([x for x, _ in pts] + [x_max or 1e-9])
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if y_min is not None:
        y_lo = min(y_lo, y_min)
    if y_hi - y_lo < 1.0:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    y_step = _nice_step(y_hi - y_lo)
    y_lo, y_hi = math.floor(y_lo / y_step) * y_step, math.ceil(y_hi / y_step) * y_step
    x_step = _nice_step(x_max)
    x_hi = math.ceil(x_max / x_step) * x_step
    px = lambda x: left + (W - left - right) * x / x_hi  # noqa: E731
    py = lambda y: H - bottom - (H - top - bottom) * (y - y_lo) / (y_hi - y_lo)  # noqa: E731
    if title:
        draw.text((left, 8), title, fill=_FG)
    for k in range(int(round((y_hi - y_lo) / y_step)) + 1):  # horizontal grid and y ticks
        y = y_lo + k * y_step
        draw.line([(left, py(y)), (W - right, py(y))], fill=(52, 55, 62))
        draw.text((6, py(y) - 6), f"{y:g}", fill=_DIM)
    for k in range(int(round(x_hi / x_step)) + 1):
        x = k * x_step
        draw.line([(px(x), H - bottom), (px(x), H - bottom + 4)], fill=_DIM)
        draw.text((px(x) - 8, H - bottom + 6), f"{x:g}", fill=_DIM)
    draw.line([(left, top), (left, H - bottom), (W - right, H - bottom)], fill=_DIM)
    draw.text((W // 2 - 40, H - 18), xlabel, fill=_DIM)
    draw.text((6, top - 16), ylabel, fill=_DIM)
    legend: list[tuple[str, tuple[int, int, int], bool]] = []
    if baseline is not None and math.isfinite(baseline):
        x0, x1 = left, W - right
        for xa in range(int(x0), int(x1), 10):  # dashed
            draw.line([(xa, py(baseline)), (min(xa + 5, x1), py(baseline))], fill=(143, 153, 168), width=1)
        legend.append((baseline_label, (143, 153, 168), True))
    for i, (label, c) in enumerate(curves.items()):
        colour = _PALETTE[i % len(_PALETTE)]
        for run in _finite_runs(c):  # a nan breaks the line
            if len(run) > 1:
                draw.line([(px(x), py(y)) for x, y in run], fill=colour, width=2)
        xy = [(px(x), py(y)) for x, y in c if math.isfinite(y)]
        for x, y in xy:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        legend.append((label, colour, False))
    lx, ly = left + 10, top + 6  # legend, top left inside the axes
    box_w = 26 + 6 * max((len(t) for t, _, _ in legend), default=0)
    draw.rectangle([lx - 4, ly - 3, lx + box_w, ly + _LINE_H * len(legend) + 1],
                   fill=(40, 42, 48), outline=(70, 74, 82))
    for k, (text, colour, dashed) in enumerate(legend):
        yy = ly + k * _LINE_H + 6
        if dashed:
            draw.line([(lx, yy), (lx + 6, yy)], fill=colour)
            draw.line([(lx + 11, yy), (lx + 17, yy)], fill=colour)
        else:
            draw.line([(lx, yy), (lx + 17, yy)], fill=colour, width=2)
        draw.text((lx + 24, yy - 6), text, fill=_FG)
    return img


def _finite_runs(curve: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """The stretches of ``curve`` between its nan values."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in curve:
        if math.isfinite(y):
            runs[-1].append((float(x), float(y)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]
