"""Agreement metrics between predicted and curated labels (numpy only, no tables).

Two gold semantics, one convention for "undefined":

* **positive-only** gold (1 = coded present, 0 = not coded, as in Open-i): per observation
  TP/FP/FN/TN of positive vs not-positive, precision, recall, F1 and Cohen's kappa.
* **full** gold (1 / 0 / -1 / blank): a 4×4 confusion matrix per observation, per-class
  precision/recall/F1 and the support-weighted F1 that CheXbert reports.

A value that cannot be computed (no gold positives, no predicted positives, kappa with a
single class on both sides) is ``NaN``, never 0 or 1; callers print it as "undefined".
Every function works on stacked arrays (leading axes = bootstrap replicates, observations),
so a bootstrap is one matrix product of resampling weights with per-row indicators.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "CLASSES",
    "MENTION_CLASSES",
    "encode_classes",
    "binary_indicators",
    "class_indicators",
    "prf",
    "kappa_binary",
    "kappa_confusion",
    "per_class_scores",
    "weighted_f1",
    "macro_average",
    "bootstrap_weights",
    "percentile_interval",
]

#: The four classes of full gold, in the order of confusion matrix rows/columns.
CLASSES: tuple[str, ...] = ("positive", "negative", "uncertain", "blank")
#: Classes averaged by the support-weighted F1 (CheXbert weighs the mention classes).
MENTION_CLASSES: tuple[str, ...] = ("positive", "negative", "uncertain")


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0`` (undefined), without runtime warnings."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def encode_classes(values: np.ndarray) -> np.ndarray:
    """Map 1 / 0 / -1 / NaN to class codes 0 / 1 / 2 / 3 (the order of :data:`CLASSES`).

    Values must already be validated (only those four occur).

    Examples
    --------
    >>> encode_classes(np.array([1.0, 0.0, -1.0, np.nan])).tolist()
    [0, 1, 2, 3]
    """
    values = np.asarray(values, dtype=np.float64)
    codes = np.full(values.shape, 3, dtype=np.int64)
    codes[values == 1] = 0
    codes[values == 0] = 1
    codes[values == -1] = 2
    return codes


def binary_indicators(
    pred: np.ndarray, gold: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Per-row indicators of TP, FP, FN, TN: shape ``(*pred.shape, 4)``, float64.

    ``pred`` and ``gold`` are boolean (positive or not); rows where ``mask`` is False count
    nowhere. Summing over rows (or multiplying by bootstrap weights) gives the counts.
    """
    pred = np.asarray(pred, dtype=bool)
    gold = np.asarray(gold, dtype=bool)
    keep = np.ones(pred.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    parts = (pred & gold, pred & ~gold, ~pred & gold, ~pred & ~gold)
    return np.stack([p & keep for p in parts], axis=-1).astype(np.float64)


def class_indicators(
    pred_codes: np.ndarray, gold_codes: np.ndarray, n_classes: int = 4
) -> np.ndarray:
    """One-hot (gold, pred) pairs: shape ``(*codes.shape, n_classes, n_classes)``.

    Summed over rows this is the confusion matrix with gold classes as rows.
    """
    eye = np.eye(n_classes, dtype=np.float64)
    return eye[np.asarray(gold_codes)][..., :, None] * eye[np.asarray(pred_codes)][..., None, :]


def prf(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from counts (any matching shapes).

    Precision is undefined without predicted positives; all three are undefined without
    gold positives (support 0), since a score there says nothing about finding positives.
    Undefined values are NaN, never 0 or 1.

    Examples
    --------
    >>> p, r, f = prf(np.array([2.0]), np.array([1.0]), np.array([1.0]))
    >>> round(float(p[0]), 4), round(float(r[0]), 4), round(float(f[0]), 4)
    (0.6667, 0.6667, 0.6667)
    """
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    has_support = tp + fn > 0
    return np.where(has_support, precision, np.nan), recall, np.where(has_support, f1, np.nan)


def kappa_binary(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Cohen's kappa of a 2×2 table; NaN when chance agreement is 1 (one class everywhere)."""
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    cm = np.stack(
        [np.stack([tp, fn], axis=-1), np.stack([fp, tn], axis=-1)], axis=-2
    )  # rows: gold positive / negative; columns: predicted positive / negative
    return kappa_confusion(cm)


def kappa_confusion(cm: np.ndarray) -> np.ndarray:
    """Cohen's kappa from confusion matrices ``(..., C, C)`` (rows gold, columns predicted).

    ``kappa = (p_o - p_e) / (1 - p_e)``; NaN when ``p_e == 1`` or the matrix is empty.
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.sum(axis=(-2, -1))
    p_o = _div(np.trace(cm, axis1=-2, axis2=-1), n)
    p_e = _div((cm.sum(axis=-1) * cm.sum(axis=-2)).sum(axis=-1), n * n)
    den = 1.0 - p_e
    return _div(p_o - p_e, np.where(np.isclose(den, 0.0), 0.0, den))


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and gold support from confusion matrices ``(..., C, C)``.

    Each class is scored one-vs-rest. F1 of a class without gold support is NaN.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    precision, recall, f1 = prf(tp, predicted - tp, support - tp)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def weighted_f1(cm: np.ndarray, classes: Sequence[int] = (0, 1, 2)) -> np.ndarray:
    """Support-weighted mean of per-class F1 over ``classes`` (CheXbert's weighted F1).

    Default: the mention classes positive, negative and uncertain, weighted by their gold
    supports. NaN when none of those classes occurs in the gold labels.
    """
    scores = per_class_scores(cm)
    idx = list(classes)
    f1 = np.nan_to_num(scores["f1"][..., idx], nan=0.0)
    support = scores["support"][..., idx]
    return _div((f1 * support).sum(axis=-1), support.sum(axis=-1))


def macro_average(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Mean over the last axis of ``values`` where ``support > 0`` and the value is defined."""
    values = np.asarray(values, dtype=np.float64)
    keep = (np.asarray(support) > 0) & ~np.isnan(values)
    return _div(np.where(keep, values, 0.0).sum(axis=-1), keep.sum(axis=-1))


def bootstrap_weights(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each of ``n`` rows is drawn in each of ``n_boot`` resamples, shape (n_boot, n).

    Resampling reports with replacement; ``weights @ indicators`` gives resampled counts.
    Seeded locally (no global state).

    Examples
    --------
    >>> w = bootstrap_weights(5, 3, seed=0)
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = (draws + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring replicates where the statistic is undefined.

    All-NaN columns give NaN bounds.
    """
    samples = np.asarray(samples, dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    lo = np.full(samples.shape[1:], np.nan)
    hi = np.full(samples.shape[1:], np.nan)
    defined = ~np.isnan(samples).all(axis=0)
    if defined.any():
        cols = samples[:, defined]
        lo[defined] = np.nanquantile(cols, alpha, axis=0)
        hi[defined] = np.nanquantile(cols, 1.0 - alpha, axis=0)
    return lo, hi
