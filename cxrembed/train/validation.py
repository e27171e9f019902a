"""The per-epoch validation metric: retrieval among validation images.

Every validation image is a query against the other validation images (leave-one-out),
minus those of the same patient when patients are known, ranked by cosine similarity.
Relevance is :mod:`cxrembed.evaluation.metrics.relevance`'s rule on the run's labels (0/1 after the
uncertain policy): at least one shared positive label, images without any positive label
relevant to each other only. For a categorical label column this is "same class".
Metrics are pytorch-metric-learning's MAP@R, P@1 and R-precision, plus P@5; queries with
no relevant image in their gallery are left out of the means (their count is returned).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cxrembed.evaluation.metrics.neighbours import query_gallery, scan_neighbours
from cxrembed.evaluation.metrics.relevance import label_sets
from cxrembed.evaluation.metrics.retrieval import fixed_k_from, pml_metrics_from

__all__ = ["VALIDATION_KEYS", "BEST_METRIC", "validation_metrics"]

#: Keys returned by :func:`validation_metrics` (``val_`` prefixed in metrics.csv).
VALIDATION_KEYS: tuple[str, ...] = (
    "mean_average_precision_at_r",
    "precision_at_1",
    "precision_at_5",
    "r_precision",
    "queries",
    "lone_queries",
)
#: The metric that picks the best checkpoint.
BEST_METRIC = "mean_average_precision_at_r"


def validation_metrics(
    embeddings: np.ndarray,
    relevance: np.ndarray,
    groups: Sequence[object] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, float]:
    """MAP@R, P@1, P@5, R-precision of leave-one-out retrieval among ``embeddings``.

    Parameters
    ----------
    embeddings : numpy.ndarray
        (N, D) validation embeddings.
    relevance : numpy.ndarray
        (N, C) 0/1 labels.
    groups : sequence, optional
        Patient of each row; a query's own patient is left out of its gallery.
    names : sequence of str, optional
        Label names (for error messages).

    Returns
    -------
    dict
        :data:`VALIDATION_KEYS`; NaN where undefined (fewer than 2 images, a gallery
        smaller than 5 for P@5, every query lone).

    Examples
    --------
    >>> x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.2, 0.8], [1, 0.1]])
    >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0]])
    >>> m = validation_metrics(x, y)
    >>> m["mean_average_precision_at_r"], m["precision_at_1"], round(m["precision_at_5"], 3)
    (1.0, 1.0, 0.4)
    """
    out = dict.fromkeys(VALIDATION_KEYS, float("nan"))
    n = len(embeddings)
    if n < 2:
        out["queries"], out["lone_queries"] = float(n), float(n)
        return out
    sets = label_sets(
        np.asarray(relevance, dtype=np.float32), None if names is None else list(names)
    )
    exclude = groups is not None
    gallery = _smallest_gallery(n, groups)
    if gallery < 1:
        out["queries"], out["lone_queries"] = float(n), float(n)
        return out
    qg = query_gallery(
        n, groups=None if groups is None else list(groups), exclude_same_group=exclude
    )
    nb = scan_neighbours(embeddings, sets, qg, depth=min(5, gallery))
    pml = pml_metrics_from(nb)
    out.update(
        {k: pml[k] for k in ("mean_average_precision_at_r", "precision_at_1", "r_precision")}
    )
    if gallery >= 5:
        out["precision_at_5"] = fixed_k_from(nb, [5])["precision_at_5"]
    out["queries"], out["lone_queries"] = pml["n_queries"], pml["n_lone_queries"]
    return out


def _smallest_gallery(n: int, groups: Sequence[object] | None) -> int:
    """Fewest images any query can be compared with (itself and its patient left out)."""
    if groups is None:
        return n - 1
    codes = pd.factorize(pd.Series(list(groups), dtype=object))[0]
    grouped = codes[codes >= 0]
    largest = int(np.bincount(grouped).max()) if len(grouped) else 1
    return n - max(largest, 1)
