"""ROC and precision-recall curves of diagnosis by retrieval: one curve per finding with both
classes, AUROC / AP in the legend equal to the table's, scikit-learn's points, any format."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from cxrembed.evaluation.curves import curves_figure, diagnosis_curves
from cxrembed.evaluation.evaluate import evaluate_embeddings
from cxrembed.evaluation.metrics.diagnosis import diagnosis_by_retrieval
from cxrlabel.figures import FigureStyle
from tests._figures import file_format, inside, overlapping, png_size, text_boxes

NAMES = ["Edema", "Enlarged Cardiomediastinum", "Pneumothorax", "Fracture"]


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 4)) < [0.3, 0.2, 0.4, 0.0]).astype(int)  # Fracture: no positive
    x = y @ rng.normal(size=(4, 16)) + rng.normal(size=(n, 16))
    return x, y


def _curve_lines(figure):
    return [line for line in figure.axes[0].get_lines() if line.get_label() != "chance"]


@pytest.mark.parametrize("kind", ["roc", "pr"])
def test_one_curve_per_finding_with_both_classes_and_its_score_in_the_legend(kind):
    x, y = _data()
    report = diagnosis_by_retrieval(x, y, names=NAMES, k=5)
    figure = curves_figure(report, kind)
    lines = _curve_lines(figure)
    assert len(lines) == 3  # Fracture has no positive query: no curve
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    table = report.per_finding.set_index("finding")
    metric = "auroc" if kind == "roc" else "ap"
    name = "AUROC" if kind == "roc" else "AP"
    for finding in NAMES[:3]:
        entry = next(t for t in legend if t.startswith(finding + " ("))
        assert f"{name} {table.loc[finding, metric]:.3f}" in entry
        assert f"n+ {table.loc[finding, 'support']}" in entry
    assert not any(t.startswith("Fracture") for t in legend)
    words = " ".join(t.get_text() for t in figure.texts).split()
    assert "1 finding(s) without both classes have no curve" in " ".join(words)
    boxes = text_boxes(figure, [*figure.texts, *figure.axes[0].get_legend().get_texts()])
    assert overlapping(boxes) == [] and inside(figure, boxes) == []


def test_table_ap_and_auroc_are_scikit_learns_on_the_vote_scores():
    x, y = _data(seed=3)
    report = diagnosis_by_retrieval(x, y, names=NAMES, k=7)
    for c, finding in enumerate(NAMES[:3]):
        row = report.per_finding.set_index("finding").loc[finding]
        assert row["ap"] == pytest.approx(
            average_precision_score(report.truth[:, c], report.scores[:, c])
        )
        assert row["auroc"] == pytest.approx(roc_auc_score(report.truth[:, c], report.scores[:, c]))
    assert np.isnan(report.per_finding.set_index("finding").loc["Fracture", "ap"])
    # scores are vote shares: multiples of 1 / k
    assert np.allclose(report.scores * 7, np.round(report.scores * 7))
    roc = {c.finding: c for c in diagnosis_curves(report, "roc")}
    assert np.trapezoid(roc["Edema"].y, roc["Edema"].x) == pytest.approx(
        report.per_finding.loc[0, "auroc"]
    )


def test_single_label_classes_get_one_vs_rest_curves():
    rng = np.random.default_rng(1)
    labels = np.repeat(["covid", "normal", "other"], 10)
    x = np.repeat(np.eye(3, 8), 10, axis=0) + 0.8 * rng.normal(size=(30, 8))
    report = diagnosis_by_retrieval(x, labels, k=3)
    assert [c.finding for c in diagnosis_curves(report, "pr")] == ["covid", "normal", "other"]


@pytest.mark.parametrize("kind", ["png", "svg", "pdf"])
def test_evaluation_writes_roc_and_pr_in_the_format_asked(tmp_path, kind):
    x, y = _data()
    result = evaluate_embeddings(x, y, names=NAMES, ks=[1], diagnosis_k=5, map_method="pca")
    paths = result.write(tmp_path, FigureStyle(kind, dpi=100))
    for name in ("roc", "pr", "map"):
        assert file_format(paths[name]) == kind and paths[name].suffix == f".{kind}"
    assert sorted(p.name for p in tmp_path.glob(f"*.{kind}")) == [
        f"embedding_map.{kind}",
        f"pr.{kind}",
        f"roc.{kind}",
    ]


def test_dpi_scales_the_curves_png(tmp_path):
    x, y = _data()
    result = evaluate_embeddings(x, y, names=NAMES, ks=[1], diagnosis_k=5, map_method=None)
    low = result.write(tmp_path / "a", FigureStyle(dpi=100))["roc"]
    high = result.write(tmp_path / "b", FigureStyle(dpi=200))["roc"]
    (w1, h1), (w2, h2) = png_size(low), png_size(high)
    assert abs(w2 - 2 * w1) <= 1 and abs(h2 - 2 * h1) <= 1
