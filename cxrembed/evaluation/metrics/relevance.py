"""Label sets and the relevance rule, defined once for every retrieval metric.

Labels come in two forms:

* **single-label**: a 1-D array of class values (any hashable: str, int). A gallery item is
  relevant to a query when it has the same class (pytorch-metric-learning's rule).
* **multi-label**: an N x C 0/1 array of findings. A gallery item is relevant to a query when
  they share at least one finding. A row without any finding ("no finding") gets an implicit
  extra finding, ``none``, so it is relevant only to other rows without findings.

Each row becomes a *label set* (a boolean row over the classes, or over the findings plus
``none``). Then, for a query ``a`` and an item ``b``: relevant = ``|a & b| >= 1``, graded gain
(nDCG) = ``|a & b|`` (number of shared findings, ``none`` included) and Jaccard =
``|a & b| / |a | b|``. With single-label data all three reduce to "same class" (0 or 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.errors import EvaluationInputError

__all__ = ["RelevanceLabels", "label_sets", "RELEVANCE_RULE"]

RELEVANCE_RULE = (
    "relevant = same class (single-label) or at least one shared finding (multi-label; rows "
    "without findings are relevant only to each other)"
)


@dataclass(frozen=True)
class RelevanceLabels:
    """Labels as boolean sets, plus what the diagnosis metrics need.

    (Named ``LabelSets`` before; that name now means only the training losses'
    :class:`cxrembed.losses.pairs.LabelSets`. The old name still imports, with a warning.)

    Attributes
    ----------
    sets : numpy.ndarray
        bool N x S: the label set of each row (classes, or findings + ``none``).
    targets : numpy.ndarray
        float32 N x C 0/1 targets scored by diagnosis (one-hot classes or the findings).
    names : list of str
        The C target names (classes in sorted order, or the finding names).
    multilabel : bool
        True for N x C findings, False for one class per row.
    """

    sets: np.ndarray
    targets: np.ndarray
    names: list[str]
    multilabel: bool


def label_sets(labels: Any, names: list[str] | None = None) -> RelevanceLabels:
    """Validate ``labels`` (1-D classes or N x C 0/1 findings) and build their label sets.

    Examples
    --------
    >>> s = label_sets([[1, 0], [0, 0]], names=["Edema", "Effusion"])
    >>> s.sets.astype(int).tolist()  # the last column is the implicit "none"
    [[1, 0, 0], [0, 0, 1]]
    >>> label_sets(["b", "a", "b"]).names
    ['a', 'b']
    """
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim == 1:
        return _single(array)
    if array.ndim != 2 or array.shape[1] == 0:
        raise EvaluationInputError(
            f"labels must be 1-D (one class per row) or 2-D (rows x findings, 0/1); got shape "
            f"{array.shape}"
        )
    return _multi(array, names)


def _single(array: np.ndarray) -> RelevanceLabels:
    missing = pd.isna(pd.Series(array, dtype=object)).to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise EvaluationInputError(
            f"labels row {int(rows[0])} has no class ({len(rows)} such rows); every row needs a "
            "class. Fix: drop unlabelled rows from both the embeddings and the labels, or give "
            "them a class"
        )
    codes, uniques = pd.factorize(pd.Series(array, dtype=object), sort=True)
    one_hot = np.zeros((len(array), len(uniques)), dtype=bool)
    one_hot[np.arange(len(array)), codes] = True
    return RelevanceLabels(one_hot, one_hot.astype(np.float32), [str(u) for u in uniques], False)


def _multi(array: np.ndarray, names: list[str] | None) -> RelevanceLabels:
    try:
        values = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise EvaluationInputError(
            f"multi-label labels must be numbers 0/1; could not convert them ({exc})"
        ) from exc
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise EvaluationInputError(
            f"multi-label labels must be 0 or 1; found {values[row, col]} at row {row}, column "
            f"{col} ({int(bad.sum())} such values). Fix: resolve uncertain (-1) and blank labels "
            "first (evaluate_embeddings does this with its uncertain= policy)"
        )
    if names is None:
        names = [f"finding_{i}" for i in range(values.shape[1])]
    if len(names) != values.shape[1]:
        raise EvaluationInputError(
            f"{len(names)} finding names were given for {values.shape[1]} label columns"
        )
    found = values.astype(bool)
    sets = np.concatenate([found, ~found.any(axis=1, keepdims=True)], axis=1)
    return RelevanceLabels(sets, values.astype(np.float32), [str(n) for n in names], True)


def __getattr__(name: str) -> Any:
    if name == "LabelSets":
        warnings.warn(
            "cxrembed.evaluation.metrics LabelSets is now RelevanceLabels (LabelSets names the "
            "losses' label sets)",
            DeprecationWarning,
            stacklevel=2,
        )
        return RelevanceLabels
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
