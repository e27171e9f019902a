"""Metric maths against hand-computed values, sklearn and slow reference loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, precision_recall_fscore_support

from cxrlabel.validation import metrics as M


def test_prf_hand_values():
    # TP=2, FP=1, FN=1: precision 2/3, recall 2/3, F1 = 4 / (4 + 1 + 1) = 2/3
    p, r, f = M.prf(np.array([2.0]), np.array([1.0]), np.array([1.0]))
    assert (
        p[0] == pytest.approx(2 / 3)
        and r[0] == pytest.approx(2 / 3)
        and f[0] == pytest.approx(2 / 3)
    )


def test_prf_undefined_is_nan_not_zero_or_one():
    # no gold positives (support 0): everything undefined, even with false positives
    p, r, f = M.prf(np.array([0.0, 0.0]), np.array([3.0, 0.0]), np.array([0.0, 0.0]))
    assert np.isnan(p).all() and np.isnan(r).all() and np.isnan(f).all()
    # gold positives but nothing predicted: precision undefined, recall and F1 are 0
    p, r, f = M.prf(np.array([0.0]), np.array([0.0]), np.array([4.0]))
    assert math.isnan(p[0]) and r[0] == 0.0 and f[0] == 0.0


def test_binary_kappa_matches_sklearn_on_random_tables():
    rng = np.random.default_rng(1)
    for _ in range(20):
        gold = rng.random(40) < 0.3
        pred = rng.random(40) < 0.4
        tp, fp, fn, tn = M.binary_indicators(pred, gold).sum(axis=0)
        expected = cohen_kappa_score(gold, pred)
        assert M.kappa_binary(tp, fp, fn, tn) == pytest.approx(expected)


def test_kappa_undefined_when_one_class_everywhere():
    assert math.isnan(float(M.kappa_binary(0.0, 0.0, 0.0, 10.0)))


def test_multiclass_scores_match_sklearn():
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, gold, rng.integers(0, 4, 200))
    cm = M.class_indicators(pred, gold).sum(axis=0)
    assert cm.sum() == 200 and cm[1, 2] == np.sum((gold == 1) & (pred == 2))
    scores = M.per_class_scores(cm)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=[0, 1, 2, 3], zero_division=0)
    np.testing.assert_allclose(scores["precision"], p)
    np.testing.assert_allclose(scores["recall"], r)
    np.testing.assert_allclose(scores["f1"], f)
    np.testing.assert_allclose(scores["support"], s)
    assert M.weighted_f1(cm) == pytest.approx(
        f1_score(gold, pred, labels=[0, 1, 2], average="weighted")
    )
    assert M.kappa_confusion(cm) == pytest.approx(cohen_kappa_score(gold, pred))


def test_weighted_f1_hand_example():
    # gold [pos, neg, unc, blank, pos, neg]; pred [pos, unc, unc, neg, blank, neg]
    gold = M.encode_classes(np.array([1, 0, -1, np.nan, 1, 0]))
    pred = M.encode_classes(np.array([1, -1, -1, 0, np.nan, 0]))
    cm = M.class_indicators(pred, gold).sum(axis=0)
    f1 = M.per_class_scores(cm)["f1"]
    # pos: TP1 FN1 -> 2/3; neg: TP1 FP1 FN1 -> 1/2; unc: TP1 FP1 -> 2/3; blank: TP0 FP1 FN1 -> 0
    np.testing.assert_allclose(f1, [2 / 3, 1 / 2, 2 / 3, 0.0])
    # weighted over pos/neg/unc with supports 2, 2, 1: (4/3 + 1 + 2/3) / 5 = 0.6
    assert M.weighted_f1(cm) == pytest.approx(0.6)
    # p_o = 3/6, p_e = (2*1 + 2*2 + 1*2 + 1*1) / 36 = 1/4 -> kappa = 1/3
    assert M.kappa_confusion(cm) == pytest.approx(1 / 3)


def test_macro_average_skips_unsupported_and_undefined():
    values = np.array([0.5, np.nan, 1.0, 0.0])
    support = np.array([3, 0, 2, 0])
    assert M.macro_average(values, support) == pytest.approx(0.75)
    assert math.isnan(float(M.macro_average(np.array([np.nan]), np.array([0]))))


def test_bootstrap_weights_equal_explicit_resampling_loop():
    rng = np.random.default_rng(3)
    n, n_boot = 30, 25
    pred, gold = rng.random((n, 2)) < 0.5, rng.random((n, 2)) < 0.4
    ind = M.binary_indicators(pred, gold)
    fast = (M.bootstrap_weights(n, n_boot, seed=7) @ ind.reshape(n, -1)).reshape(n_boot, 2, 4)
    draws = np.random.default_rng(7).integers(0, n, size=(n_boot, n))
    for b in range(n_boot):
        rows = draws[b]
        for j in range(2):
            p, g = pred[rows, j], gold[rows, j]
            slow = [np.sum(p & g), np.sum(p & ~g), np.sum(~p & g), np.sum(~p & ~g)]
            np.testing.assert_array_equal(fast[b, j], slow)


def test_bootstrap_weights_seeded_and_local():
    a = M.bootstrap_weights(10, 5, seed=1)
    np.random.seed(123)  # global state must not matter
    b = M.bootstrap_weights(10, 5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, M.bootstrap_weights(10, 5, seed=2))
    assert (a.sum(axis=1) == 10).all()


def test_percentile_interval_matches_quantiles_and_ignores_nan():
    samples = np.column_stack([np.arange(101, dtype=float), np.full(101, np.nan)])
    samples[:10, 0] = np.nan
    lo, hi = M.percentile_interval(samples)
    defined = np.arange(10, 101, dtype=float)
    assert lo[0] == pytest.approx(np.quantile(defined, 0.025))
    assert hi[0] == pytest.approx(np.quantile(defined, 0.975))
    assert np.isnan(lo[1]) and np.isnan(hi[1])
