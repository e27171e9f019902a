"""ROC and precision-recall curves of diagnosis by retrieval, one curve per finding.

The score of a finding for a query is the share of its k nearest gallery images that have
it (:mod:`cxrembed.evaluation.metrics.diagnosis`), so each curve has at most k + 1 distinct
thresholds. A finding whose queries are all positive or all negative has no curve (its AUROC
is undefined); the figure says how many were left out. The legend gives each finding's AUROC
or average precision (AP) and its positives, as in the diagnosis table. Single-label data
get one-vs-rest curves per class.

Examples
--------
>>> import numpy as np
>>> from cxrembed.evaluation.metrics.diagnosis import diagnosis_by_retrieval
>>> x = [[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9], [0.2, 0.8]]
>>> report = diagnosis_by_retrieval(x, [[1], [1], [0], [0], [0], [1]], names=["Edema"], k=2)
>>> [len(c.x) >= 2 for c in diagnosis_curves(report, "roc")]
[True]
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxrembed.evaluation.metrics.diagnosis import DiagnosisReport
from cxrlabel.figures import FigureStyle, figure_heading, new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Curve", "diagnosis_curves", "curves_figure", "plot_diagnosis_curves"]

# Layout in inches: the square plot, its margins, and the legend right of it.
_WIDTH = 8.4
_LEFT = 0.7
_PLOT = 3.4
_BOTTOM = 0.55
_KINDS = {
    "roc": ("ROC", "false positive rate (1 - specificity)", "true positive rate (sensitivity)"),
    "pr": ("precision-recall", "recall (sensitivity)", "precision (PPV)"),
}


@dataclass(frozen=True)
class Curve:
    """One finding's curve: points ``(x, y)`` and its legend label."""

    finding: str
    x: np.ndarray
    y: np.ndarray
    label: str
    baseline: float  # chance level of a PR curve (the prevalence); 0 for ROC


def diagnosis_curves(report: DiagnosisReport, kind: str) -> list[Curve]:
    """ROC (``kind="roc"``) or precision-recall (``"pr"``) curves of every finding with both
    positive and negative queries."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    if report.scores is None or report.truth is None:
        return []
    table = report.per_finding.set_index("finding")
    curves = []
    for c, name in enumerate(table.index):
        truth, score = report.truth[:, c], report.scores[:, c]
        positives = int(truth.sum())
        if not 0 < positives < len(truth):
            continue
        if kind == "roc":
            x, y, _ = roc_curve(truth, score)
            label = f"{name} (AUROC {table.loc[name, 'auroc']:.3f}, n+ {positives})"
            baseline = 0.0
        else:
            y, x, _ = precision_recall_curve(truth, score)
            baseline = positives / len(truth)
            label = (
                f"{name} (AP {table.loc[name, 'ap']:.3f}, n+ {positives}, "
                f"prevalence {baseline:.2f})"
            )
        curves.append(Curve(str(name), np.asarray(x), np.asarray(y), label, baseline))
    return curves


def curves_figure(report: DiagnosisReport, kind: str) -> Figure:
    """The ROC or precision-recall figure of ``report`` (a legend entry per finding)."""
    from matplotlib import colormaps

    title, xlabel, ylabel = _KINDS[kind]
    curves = diagnosis_curves(report, kind)
    names = list(report.per_finding["finding"])
    summary = report.summary
    left_out = len(names) - len(curves)
    sub = (
        f"score = share of the k = {summary.get('k')} nearest gallery images with the "
        f"finding; {summary.get('n_queries')} queries ({summary.get('mode')})"
    )
    if left_out:
        sub += f"; {left_out} finding(s) without both classes have no curve"
    lines = textwrap.wrap(sub, int((_WIDTH - 0.3) / 0.065))
    top = 0.45 + 0.16 * len(lines)
    legend = 0.2 + 0.16 * (len(curves) + (kind == "roc"))
    height = top + max(_PLOT + _BOTTOM, legend + 0.2)
    fig = new_figure(_WIDTH, height)
    ax = fig.add_axes(
        (_LEFT / _WIDTH, (height - top - _PLOT) / height, _PLOT / _WIDTH, _PLOT / height)
    )
    cmap = colormaps["tab10" if len(curves) <= 10 else "tab20"]
    styles = ("-", "--", ":", "-.")
    for i, curve in enumerate(curves):
        colour = cmap(i % cmap.N)
        ax.plot(
            curve.x,
            curve.y,
            color=colour,
            linestyle=styles[(i // cmap.N) % 4],
            linewidth=1.4,
            label=curve.label,
            drawstyle="steps-post" if kind == "pr" else "default",
        )
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1, label="chance")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.04, 1.0),
            frameon=False,
            borderaxespad=0.0,
        )
    figure_heading(fig, f"Diagnosis by retrieval: {title} curve per finding", lines)
    return fig


def plot_diagnosis_curves(
    report: DiagnosisReport, out_dir: str | os.PathLike[str], style: FigureStyle | None = None
) -> dict[str, Path]:
    """Write ``roc.<format>`` and ``pr.<format>`` into ``out_dir``; return ``{"roc", "pr"}``
    paths."""
    style = style or FigureStyle()
    return {
        kind: save_figure(curves_figure(report, kind), style.path(out_dir, kind), style)
        for kind in _KINDS
    }
