"""Diagnosis by retrieval: predict a query's findings from its k nearest gallery images.

Each finding's score for a query is the share of its k nearest neighbours that have the
finding (the COVID-19 retrieval paper's diagnosis task). Scores give an AUROC per finding
against the query's own label, and an average precision (AP, the area under the
precision-recall curve as scikit-learn computes it); votes give F1:

- multi-label: a finding is predicted when more than half of the k neighbours have it
  (score > 0.5; a tie at exactly half is not a vote);
- single-label: the predicted class is the most frequent among the k neighbours, a tie
  going to the tied class that appears nearest.

AUROC and AP are undefined (NaN, with a note) when the queries hold only one class for a
finding;
F1 is undefined when there are neither positives nor predicted positives. Macro averages
are over the defined values, with their count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.metrics.neighbours import Neighbourhood, Selection, rank_labels
from cxrlabel.vocab import Interval

__all__ = ["DiagnosisReport", "diagnosis_by_retrieval", "diagnosis_from", "DIAGNOSIS_COLUMNS"]

DIAGNOSIS_COLUMNS = ["finding", "support", "auroc", "ap", "f1", "precision", "recall", "note"]


@dataclass(frozen=True)
class DiagnosisReport:
    """Per-finding diagnosis scores and their summary.

    Attributes
    ----------
    per_finding : pandas.DataFrame
        Columns :data:`DIAGNOSIS_COLUMNS`; ``support`` = positive queries, NaN = undefined
        (``note`` says why).
    summary : dict
        ``k``, ``mode`` (``multi-label`` / ``single-label``), ``n_queries``, ``macro_auroc``,
        ``macro_ap``, ``macro_f1``, ``n_auroc_defined``, ``n_f1_defined`` and, single-label,
        ``accuracy``.
    scores, truth : numpy.ndarray, optional
        ``(Q, C)`` neighbour-vote score and label of each query and finding (the ROC and
        precision-recall curves are drawn from them).
    """

    per_finding: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    scores: np.ndarray | None = field(default=None, repr=False)
    truth: np.ndarray | None = field(default=None, repr=False)


def diagnosis_by_retrieval(
    embeddings: Any,
    labels: Any,
    *,
    names: Sequence[str] | None = None,
    k: int = 10,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
) -> DiagnosisReport:
    """Score each query's findings by a vote of its ``k`` nearest gallery rows.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
    labels : array-like, shape (N,) or (N, C)
        One class per row, or 0/1 findings.
    names : sequence of str, optional
        Finding names for N x C labels.
    k : int
        Neighbours that vote.
    query_mask, gallery_mask, groups, exclude_same_group
        As in :func:`cxrembed.evaluation.metrics.retrieval_metrics`.

    Examples
    --------
    >>> x = [[1, 0], [0.9, 0.1], [0.8, 0.2], [0, 1], [0.1, 0.9]]
    >>> report = diagnosis_by_retrieval(x, [[1], [1], [1], [0], [0]], names=["Edema"], k=1)
    >>> report.per_finding[["auroc", "f1"]].iloc[0].tolist()
    [1.0, 1.0]
    """
    Interval(int, 1, None).check(k, "diagnosis k", EvaluationInputError)
    where = Selection(query_mask, gallery_mask, groups, exclude_same_group)
    return diagnosis_from(rank_labels(embeddings, labels, int(k), where, names), int(k))


def diagnosis_from(nb: Neighbourhood, k: int) -> DiagnosisReport:
    """Diagnosis scores from a ranking pass that kept at least ``k`` neighbours."""
    targets = nb.sets.targets
    truth = targets[nb.queries] > 0.5
    votes = targets[nb.top[:, :k]]  # (Q, k, C)
    scores = votes.mean(axis=1)
    if nb.sets.multilabel:
        predicted = scores > 0.5
    else:
        predicted = _plurality(votes)
    rows = [
        _finding_row(name, truth[:, c], scores[:, c], predicted[:, c])
        for c, name in enumerate(nb.sets.names)
    ]
    table = pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)
    summary: dict[str, Any] = {
        "k": k,
        "mode": "multi-label" if nb.sets.multilabel else "single-label",
        "n_queries": int(len(nb.queries)),
        "macro_auroc": _nanmean(table["auroc"]),
        "macro_ap": _nanmean(table["ap"]),
        "macro_f1": _nanmean(table["f1"]),
        "n_auroc_defined": int(table["auroc"].notna().sum()),
        "n_f1_defined": int(table["f1"].notna().sum()),
    }
    if not nb.sets.multilabel:
        summary["accuracy"] = float((predicted == truth).all(axis=1).mean())
    return DiagnosisReport(table, summary, scores=scores, truth=truth)


def _plurality(votes: np.ndarray) -> np.ndarray:
    """One-hot of the most voted class; ties go to the tied class seen first (nearest)."""
    q, k, c = votes.shape
    counts = votes.sum(axis=1)
    seen = votes > 0.5
    first = np.where(seen.any(axis=1), seen.argmax(axis=1), k)
    # counts differ by whole votes (>= 1 each, scaled by k + 1) and first positions by < k + 1
    winner = np.argmax(counts * (k + 1) - first, axis=1)
    one_hot = np.zeros((q, c), dtype=bool)
    one_hot[np.arange(q), winner] = True
    return one_hot


def _finding_row(
    name: str, truth: np.ndarray, score: np.ndarray, predicted: np.ndarray
) -> list[Any]:
    support = int(truth.sum())
    notes = []
    if 0 < support < len(truth):
        auroc = float(roc_auc_score(truth, score))
        ap = float(average_precision_score(truth, score))
    else:
        auroc = ap = float("nan")
        notes.append(
            f"AUROC undefined: the queries are all {'positive' if support else 'negative'}"
        )
    tp = int((truth & predicted).sum())
    fp = int((~truth & predicted).sum())
    fn = int((truth & ~predicted).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    if np.isnan(f1):
        notes.append("F1 undefined: no positives and none predicted")
    precision = tp / (tp + fp) if (tp + fp) else float("nan")
    recall = tp / (tp + fn) if (tp + fn) else float("nan")
    return [name, support, auroc, ap, f1, precision, recall, "; ".join(notes)]


def _nanmean(values: pd.Series) -> float:
    defined = values.dropna()
    return float(defined.mean()) if len(defined) else float("nan")
