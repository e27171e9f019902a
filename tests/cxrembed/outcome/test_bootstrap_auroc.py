"""Tests of the vectorised weighted AUROC and the cluster bootstrap (cxrembed.outcome.bootstrap)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrembed.outcome.bootstrap import bootstrap_weights, percentile_ci, weighted_auroc


def _pairwise_auroc(scores, y, w):
    """Slow reference: weighted share of (positive, negative) pairs ranked right, ties 1/2."""
    num = den = 0.0
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            pair = w[i] * w[j]
            den += pair
            num += pair * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0)
    return num / den if den else np.nan


def test_matches_pairwise_loop_and_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=40).astype(float)  # many ties
    y = rng.integers(0, 2, size=40)
    weights = rng.integers(0, 4, size=(7, 40)).astype(float)
    got = weighted_auroc(scores, y, weights)
    for b in range(7):
        assert got[b] == pytest.approx(_pairwise_auroc(scores, y, weights[b]))
        assert got[b] == pytest.approx(roc_auc_score(y, scores, sample_weight=weights[b]))
    assert weighted_auroc(scores, y)[0] == pytest.approx(roc_auc_score(y, scores))


def test_one_class_weighting_is_nan():
    y = np.array([0, 0, 1, 1])
    got = weighted_auroc(np.array([0.1, 0.2, 0.3, 0.4]), y, np.array([[1, 1, 0, 0], [1, 0, 1, 0]]))
    assert np.isnan(got[0]) and got[1] == 1.0


def test_many_draws_are_chunked_consistently():
    rng = np.random.default_rng(1)
    scores, y = rng.normal(size=30), rng.integers(0, 2, size=30)
    w = rng.integers(0, 3, size=(600, 30)).astype(float)
    np.testing.assert_allclose(
        weighted_auroc(scores, y, w)[[0, 300, 599]],
        [weighted_auroc(scores, y, w[i])[0] for i in (0, 300, 599)],
    )


def test_bootstrap_weights_resample_whole_units():
    units = np.array(["p1", "p1", "p2", "p3", "p3", "p3"])
    w = bootstrap_weights(units, 500, seed=3)
    assert w.shape == (500, 6)
    # rows of one patient always share a weight; each draw picks 3 patients
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 5]).all()
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()
    np.testing.assert_array_equal(w, bootstrap_weights(units, 500, seed=3))  # seeded
    assert w[:, 2].mean() == pytest.approx(1.0, abs=0.15)  # each unit drawn once on average


def test_percentile_ci():
    low, high, n = percentile_ci(np.r_[np.arange(101.0), np.nan])
    assert (low, high, n) == (pytest.approx(2.5), pytest.approx(97.5), 101)
    assert np.isnan(percentile_ci(np.array([np.nan]))[0])
