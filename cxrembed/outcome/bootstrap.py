"""AUROC with a cluster-bootstrap confidence interval, vectorised over the draws.

A bootstrap draw resamples *units* (patients, or rows) with replacement; a row then counts as
many times as its unit was drawn, which is a row weight. :func:`weighted_auroc` computes the
AUROC of one score vector under many such weightings at once (ties count one half), so a
1,000-draw CI for several models costs milliseconds. Draws are shared between models, which
makes differences between models paired.
"""

from __future__ import annotations

import numpy as np

from cxrembed.errors import OutcomeInputError

__all__ = ["bootstrap_weights", "weighted_auroc", "percentile_ci"]

_CHUNK = 256


def bootstrap_weights(units: np.ndarray, n_draws: int, seed: int = 0) -> np.ndarray:
    """Row weights of ``n_draws`` bootstrap draws of the distinct ``units`` (float B x N).

    Examples
    --------
    >>> w = bootstrap_weights(np.array(["p1", "p1", "p2"]), 4, seed=0)
    >>> w.shape, bool((w[:, 0] == w[:, 1]).all())
    ((4, 3), True)
    """
    _, inverse = np.unique(np.asarray(units), return_inverse=True)
    n_units = int(inverse.max()) + 1 if len(inverse) else 0
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_units, size=(n_draws, n_units))
    counts = np.zeros((n_draws, n_units))
    np.add.at(counts, (np.arange(n_draws)[:, None], draws), 1.0)
    return counts[:, inverse]


def weighted_auroc(scores: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
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
        raise OutcomeInputError(f"scores {scores.shape} and targets {y.shape} must be 1-D, "
                                "the same length")
    if not np.isfinite(scores).all():
        raise OutcomeInputError("scores must be finite to compute an AUROC")
    w = np.ones((1, len(y))) if weights is None else np.atleast_2d(np.asarray(weights, float))
    _, group = np.unique(scores, return_inverse=True)  # tie groups, in increasing score
    n_groups = int(group.max()) + 1
    pos, neg = y == 1, y == 0
    out = np.empty(len(w))
    for start in range(0, len(w), _CHUNK):
        block = w[start:start + _CHUNK]
        neg_by_group = np.zeros((len(block), n_groups))
        np.add.at(neg_by_group.T, group[neg], block[:, neg].T)
        below = np.cumsum(neg_by_group, axis=1) - neg_by_group
        credit = below[:, group[pos]] + 0.5 * neg_by_group[:, group[pos]]
        numerator = (block[:, pos] * credit).sum(axis=1)
        denominator = block[:, pos].sum(axis=1) * block[:, neg].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + _CHUNK] = np.where(denominator > 0, numerator / denominator,
                                                 np.nan)
    return out


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, int]:
    """(low, high, number of defined draws) of the finite ``values``; NaN when none.

    Examples
    --------
    >>> low, high, n = percentile_ci(np.array([0.5, 0.6, np.nan, 0.7]), level=0.5)
    >>> round(low, 3), round(high, 3), n
    (0.55, 0.65, 3)
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return float("nan"), float("nan"), 0
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high), len(finite)
