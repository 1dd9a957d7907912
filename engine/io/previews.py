"""Labelled preview grids: real A | G(A) | F(G(A)) and real B | F(B) | G(F(B))."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

ROWS = (
    (("real_A", "real A"), ("fake_B", "G(A)"), ("rec_A", "F(G(A))")),
    (("real_B", "real B"), ("fake_A", "F(B)"), ("rec_B", "G(F(B))")),
)
_LABEL_H = 14


def preview_title(step: int, restored_from: str | None = None) -> str:
    """"step N", and where the drift guard put the best checkpoint's generators back, whose they are (``restored_from``:
    "step 66", or "A→B of step 66, B→A of step 88"): the images were made by those, not by step N's."""
    title = f"step {step:,}"
    return title if restored_from is None else f"{title} · the generators of {restored_from}, restored"


def preview_grid(images: Mapping[str, np.ndarray], step: int | None = None, scale: int = 0, *,
                 restored_from: str | None = None) -> Image.Image:
    """One row per sample and direction; each cell labelled. ``images[k]`` is (N, H, W, 3) uint8. Titled with
    ``preview_title`` where ``step`` is given."""
    n, h, w, _ = images["real_A"].shape
    if scale <= 0:
        scale = max(1, 128 // max(h, 1))  # small crops are enlarged with nearest neighbour: crisp pixels
    ch, cw = h * scale, w * scale
    pad = 4
    title_h = _LABEL_H + 4 if step is not None else 0
    rows = [(row, i) for i in range(n) for row in ROWS]
    grid = Image.new("RGB", (3 * cw + 4 * pad, title_h + len(rows) * (ch + _LABEL_H + pad) + pad), (32, 34, 38))
    draw = ImageDraw.Draw(grid)
    if step is not None:
        draw.text((pad, 2), preview_title(step, restored_from), fill=(235, 235, 235))
    y = title_h + pad
    for row, i in rows:
        x = pad
        for key, label in row:
            draw.text((x + 2, y), label, fill=(200, 205, 215))
            cell = Image.fromarray(images[key][i]).resize((cw, ch), Image.Resampling.NEAREST)
            grid.paste(cell, (x, y + _LABEL_H))
            x += cw + pad
        y += ch + _LABEL_H + pad
    return grid
