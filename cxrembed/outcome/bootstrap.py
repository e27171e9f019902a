"""AUROC with a cluster-bootstrap confidence interval, vectorised over the draws.

A bootstrap draw resamples *units* (patients, or rows) with replacement; a row then counts as
many times as its unit was drawn, which is a row weight. :func:`weighted_auroc` computes the
AUROC of one score vector under many such weightings at once (ties count one half), so a
1,000-draw CI for several models costs milliseconds. Draws are shared between models, which
makes differences between models paired. The draws and the percentile interval are
:mod:`cxrlabel.stats` (shared with ``cxr validate``), re-exported here.
"""

from __future__ import annotations

import numpy as np

from cxrembed.errors import OutcomeInputError
from cxrlabel.stats import bootstrap_weights, percentile_ci

__all__ = ["bootstrap_weights", "weighted_auroc", "percentile_ci"]

_CHUNK = 256


def weighted_auroc(
    scores: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """AUROC of ``scores`` against 0/1 ``y`` under each row of ``weights`` (B x N).

    Equals ``sklearn.metrics.roc_auc_score(y, scores, sample_weight=w)`` for each row ``w``;
    NaN where a weighting leaves one class. ``weights=None`` gives the plain AUROC (shape (1,)).

    Examples
    --------
    >>> weighted_auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])).tolist()
    [0.75]
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if scores.shape != y.shape or scores.ndim != 1:
        raise OutcomeInputError(
            f"scores {scores.shape} and targets {y.shape} must be 1-D, the same length"
        )
    if not np.isfinite(scores).all():
        raise OutcomeInputError("scores must be finite to compute an AUROC")
    w = np.ones((1, len(y))) if weights is None else np.atleast_2d(np.asarray(weights, float))
    _, group = np.unique(scores, return_inverse=True)  # tie groups, in increasing score
    n_groups = int(group.max()) + 1
    pos, neg = y == 1, y == 0
    out = np.empty(len(w))
    for start in range(0, len(w), _CHUNK):
        block = w[start : start + _CHUNK]
        neg_by_group = np.zeros((len(block), n_groups))
        np.add.at(neg_by_group.T, group[neg], block[:, neg].T)
        below = np.cumsum(neg_by_group, axis=1) - neg_by_group
        credit = below[:, group[pos]] + 0.5 * neg_by_group[:, group[pos]]
        numerator = (block[:, pos] * credit).sum(axis=1)
        denominator = block[:, pos].sum(axis=1) * block[:, neg].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + _CHUNK] = np.where(denominator > 0, numerator / denominator, np.nan)
    return out
