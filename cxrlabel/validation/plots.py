"""``f1.png``: per-observation F1 with bootstrap confidence intervals.

Uses matplotlib's object API with the Agg canvas (no pyplot, so no global figure state and
no display needed). Undefined F1 (no gold positives) is drawn as a label, not as a zero bar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from cxrlabel.atomic import atomic_path

__all__ = ["plot_f1"]


def plot_f1(
    names: Sequence[str],
    f1: Sequence[float],
    lo: Sequence[float],
    hi: Sequence[float],
    path: str | Path,
    *,
    title: str = "F1 per observation",
    xlabel: str = "F1",
) -> Path:
    """Draw a horizontal bar per observation with its 95% interval and write a PNG atomically.

    NaN F1 is shown as "undefined"; NaN interval bounds draw no error bar.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(names)
    fig = Figure(figsize=(7.0, 1.2 + 0.35 * max(n, 1)), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(n))[::-1]
    for y, value, low, high in zip(ys, f1, lo, hi, strict=True):
        if math.isnan(value):
            ax.text(0.01, y, "undefined (no gold positives)", va="center", fontsize=8, color="0.4")
            continue
        ax.barh(y, value, color="#4C72B0", height=0.6)
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
        ax.text(min(value, 0.9) + 0.02, y + 0.25, f"{value:.2f}", fontsize=7)
    ax.set_yticks(ys, list(names), fontsize=8)
    ax.set_xlim(0.0, 1.05)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
