"""The look every pyqtgraph plot of the app shares: colours, pens, axes, titles with their key.

Used by the training plots (``gui.plots``, ``gui.w_plot``) and the Distances tab; written once so
that a plot added later looks like the others without copying a styling function.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

__all__ = ["BACKGROUND", "FOREGROUND", "TITLE", "AXIS", "GRID_ALPHA", "PEN_WIDTH", "A2B", "B2A", "GREY", "title_key",
           "dim", "pen", "style_axis", "style_plot", "add_curve"]

BACKGROUND = "#16181d"
FOREGROUND = "#9aa3b2"  # axis text and labels
TITLE = "#d7dce4"
AXIS = "#3a404b"
GRID_ALPHA = 0.12
# Live curves use cosmetic 1-px pens: Qt strokes wider antialiased pens on noisy data 10–100× slower
# (578 ms vs 2.4 ms for 6 curves of 250 noisy points), and that time blocks the GUI thread.
PEN_WIDTH = 1.0
A2B, B2A, GREY = "#5b9cff", "#ff8a5c", "#8f99a8"  # the two directions, and what is neither


def title_key(color: str, text: str) -> str:
    """One entry of a title's key (rich text): every plot carries its key in its title, since a legend
    would cover the data."""
    return f"<span style='color:{color}'>■ {text}</span>"


def dim(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def pen(color: str | QColor, width: float = PEN_WIDTH, *, dashed: bool = False, dotted: bool = False) -> pg.QtGui.QPen:
    style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.DotLine if dotted else Qt.PenStyle.SolidLine
    return pg.mkPen(color, width=width, style=style)


def style_axis(ax: pg.AxisItem) -> None:
    # The axes draw the grid across the plot, so every curve update repainted their text too;
    # cached, they are re-rendered only when the range changes.
    ax.setCacheMode(ax.CacheMode.DeviceCoordinateCache)
    ax.enableAutoSIPrefix(False)
    ax.setPen(pg.mkPen(AXIS))
    ax.setTextPen(pg.mkPen(FOREGROUND))


def style_plot(pw: pg.PlotWidget | pg.GraphicsLayoutWidget, title: str, xlabel: str, ylabel: str,
               item: pg.PlotItem | None = None, *, downsample: bool = False) -> pg.PlotItem:
    """The dark background, the title, a faint grid, styled axes and no context menu. ``item``: a plot of
    a ``GraphicsLayoutWidget`` (default: the PlotWidget's own). ``downsample``: peak downsampling and
    clip-to-view for every curve of the plot (live plots that grow long)."""
    pw.setBackground(BACKGROUND)
    item = item or pw.getPlotItem()
    item.setTitle(title, color=TITLE, size="10pt")
    item.showGrid(x=True, y=True, alpha=GRID_ALPHA)
    item.setLabel("left", ylabel, color=FOREGROUND)
    item.setLabel("bottom", xlabel, color=FOREGROUND)
    for axis in ("left", "bottom"):
        style_axis(item.getAxis(axis))
    if downsample:
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
    item.setMenuEnabled(False)
    pw.setMinimumHeight(120)
    return item


def add_curve(item: pg.PlotItem, color: str, width: float = 1.8, dashed: bool = False, **kw) -> pg.PlotDataItem:
    """A curve on ``item``, peak-downsampled and clipped to the view."""
    curve = item.plot(pen=pen(color, width, dashed=dashed), **kw)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    return curve
