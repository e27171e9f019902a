"""``f1.png`` (or ``.svg`` / ``.pdf``): per-observation F1 with bootstrap confidence intervals.

One row per observation: a bar to the F1, a whisker over its 95% interval, and, right of
the plot so that nothing overlaps a whisker, the value with its interval and the row's
counts (gold positives / reports scored). The title says what was scored and how uncertain
labels counted. Undefined F1 (no gold positives) is written as such, never drawn as a zero
bar. Drawn with matplotlib's object API (:func:`cxrlabel.figures.new_figure`).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cxrlabel.figures import FigureStyle, figure_heading, new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Transform

__all__ = ["plot_f1", "f1_figure"]

# Fixed layout in inches: rows, margins above (title, subtitle, headers) and below, the
# plot and the two text columns right of it.
_ROW_INCHES = 0.3
_TOP_INCHES = 0.7
_BOTTOM_INCHES = 0.5
_PLOT_INCHES = 3.0
_VALUE_INCHES = 1.75
_COUNT_INCHES = 1.0
_BAR = "#4C72B0"


def f1_figure(
    names: Sequence[str],
    f1: Sequence[float],
    lo: Sequence[float],
    hi: Sequence[float],
    *,
    support: Sequence[int] | None = None,
    n: Sequence[int] | None = None,
    title: str = "F1 per observation",
    subtitle: str | None = None,
    xlabel: str = "F1",
    column: str = "F1",
) -> Figure:
    """The F1 figure (see the module docstring); :func:`plot_f1` writes it.

    ``support`` (gold positives) and ``n`` (reports scored) per row fill the counts column;
    NaN F1 is "undefined"; NaN interval bounds draw no whisker; ``column`` heads the value
    column (a short name of the metric); a long ``subtitle`` wraps. The layout is fixed in
    inches (names, plot, value column, counts column), so columns never overlap.
    """
    rows = len(names)
    counts = _counts(rows, support, n)
    fig, ax, sub = _figure_and_axes(names, subtitle, counted=any(counts))
    value_x = 1 + 0.12 / _PLOT_INCHES  # axes fraction of the columns right of the plot
    count_x = 1 + (0.12 + _VALUE_INCHES) / _PLOT_INCHES
    columns = ax.get_yaxis_transform()  # x in axes fraction, y in data
    ys = list(range(rows))[::-1]
    for y, value, low, high, count in zip(ys, f1, lo, hi, counts, strict=True):
        _column_text(ax, value_x, y, _draw_row(ax, y, value, low, high), columns)
        if count:
            _column_text(ax, count_x, y, count, columns)
    header = rows - 0.3 + 0.1
    ax.text(
        value_x,
        header,
        f"{column} [95% CI]",
        transform=columns,
        va="bottom",
        fontsize=8,
        weight="bold",
    )
    if any(counts):
        ax.text(
            count_x, header, "gold+ / n", transform=columns, va="bottom", fontsize=8, weight="bold"
        )
    ax.set_yticks(ys, [str(name) for name in names], fontsize=8)
    ax.set_xlim(0.0, 1.04)  # room for a whisker cap at 1
    ax.set_xticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylim(-0.7, rows - 0.3)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    figure_heading(fig, title, sub, subtitle_top=0.33)
    return fig


def plot_f1(
    names: Sequence[str],
    f1: Sequence[float],
    lo: Sequence[float],
    hi: Sequence[float],
    path: str | Path,
    *,
    support: Sequence[int] | None = None,
    n: Sequence[int] | None = None,
    title: str = "F1 per observation",
    subtitle: str | None = None,
    xlabel: str = "F1",
    column: str = "F1",
    style: FigureStyle | None = None,
) -> Path:
    """Draw :func:`f1_figure` and write it atomically (format from ``style`` or the suffix)."""
    figure = f1_figure(
        names,
        f1,
        lo,
        hi,
        support=support,
        n=n,
        title=title,
        subtitle=subtitle,
        xlabel=xlabel,
        column=column,
    )
    return save_figure(figure, path, style)


def _counts(rows: int, support: Sequence[int] | None, n: Sequence[int] | None) -> list[str]:
    """``"12 / 340"`` per row (gold positives / reports scored), blank when not given."""
    if support is None and n is None:
        return [""] * rows
    sup = list(support) if support is not None else [None] * rows
    tot = list(n) if n is not None else [None] * rows
    return [
        f"{'—' if s is None else int(s)} / {'—' if t is None else int(t)}"
        for s, t in zip(sup, tot, strict=True)
    ]


def _figure_and_axes(
    names: Sequence[str], subtitle: str | None, *, counted: bool
) -> tuple[Figure, Axes, list[str]]:
    """The figure sized in inches for the rows, names, subtitle and text columns, its plot
    axes, and the subtitle's wrapped lines."""
    rows = len(names)
    left = 0.2 + 0.062 * max((len(str(name)) for name in names), default=4)
    widths = (left, _PLOT_INCHES, _VALUE_INCHES, _COUNT_INCHES if counted else 0.0, 0.15)
    width = max(sum(widths), 6.0)
    sub = textwrap.wrap(subtitle, int((width - 0.25) / 0.065)) if subtitle else []
    top = _TOP_INCHES + 0.15 * len(sub)
    height = top + _BOTTOM_INCHES + _ROW_INCHES * max(rows, 1)
    fig = new_figure(width, height)
    ax = fig.add_axes(
        (
            left / width,
            _BOTTOM_INCHES / height,
            _PLOT_INCHES / width,
            _ROW_INCHES * max(rows, 1) / height,
        )
    )
    return fig, ax, sub


def _draw_row(ax: Axes, y: int, value: float, low: float, high: float) -> str:
    """One observation's bar and whisker (or "undefined"); returns its value column text."""
    if math.isnan(value):
        ax.text(0.01, y, "undefined (no gold positives)", va="center", fontsize=8, color="0.4")
        return "undefined"
    ax.barh(y, value, color=_BAR, height=0.6)
    text = f"{value:.2f}"
    if not (math.isnan(low) or math.isnan(high)):
        ax.errorbar(
            value,
            y,
            xerr=[[max(value - low, 0.0)], [max(high - value, 0.0)]],
            fmt="none",
            ecolor="black",
            capsize=3,
            linewidth=1,
        )
        text += f" [{low:.2f}, {high:.2f}]"
    return text


def _column_text(ax: Axes, x: float, y: int, text: str, transform: Transform) -> None:
    """A row's entry in a text column right of the plot (``x`` in axes fraction)."""
    ax.text(
        x,
        y,
        text,
        transform=transform,
        va="center",
        fontsize=8,
        family="monospace",
        clip_on=False,
    )
