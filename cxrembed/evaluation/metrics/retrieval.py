"""Retrieval metrics: pytorch-metric-learning's three, fixed-k metrics and graded ones.

Relevance follows :mod:`cxrembed.evaluation.metrics.relevance` (same class, or at least one shared
finding). Queries without any relevant row in their gallery ("lone" queries) are left out of
every average here, as pytorch-metric-learning does; their number is returned as
``n_lone_queries``. Definitions, for a query with R relevant gallery rows and ``rel_i`` = 1
when the i-th nearest is relevant:

- ``precision_at_1``: rel_1.
- ``r_precision``: sum of rel_i over i <= R, divided by R.
- ``mean_average_precision_at_r``: sum over i <= R of precision@i * rel_i, divided by R.
- ``precision_at_k``: sum of rel_i over i <= k, divided by k.
- ``hit_rate_at_k``: 1 if any of the k nearest is relevant.
- ``map_at_k``: sum over i <= k of precision@i * rel_i, divided by min(k, R).
- ``jaccard_at_k``: mean Jaccard similarity of the label sets of the query and its k nearest.
- ``ndcg_at_k``: sum of gain_i / log2(i + 1) over i <= k, divided by the same sum for the
  best possible ranking of the gallery; gain = number of shared findings (linear gain).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.metrics.neighbours import Neighbourhood, Selection, rank_labels
from cxrlabel.vocab import Interval

__all__ = [
    "retrieval_metrics",
    "fixed_k_metrics",
    "graded_metrics",
    "pml_metrics_from",
    "fixed_k_from",
    "graded_from",
    "check_ks",
    "DEFAULT_KS",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)


def retrieval_metrics(
    embeddings: Any,
    labels: Any,
    *,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
) -> dict[str, float]:
    """P@1, R-precision and MAP@R under pytorch-metric-learning's key names.

    With no masks every row is a query against all the other rows, which gives the values of
    ``AccuracyCalculator().get_accuracy(embeddings, labels)`` (cosine similarity, ties aside).
    With masks, the gallery is ``gallery_mask`` minus the query itself; with
    ``exclude_same_group`` also minus the rows of its group (patient).

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
        Compared by cosine similarity.
    labels : array-like, shape (N,) or (N, C)
        One class per row, or 0/1 findings (relevance: at least one shared finding).
    query_mask, gallery_mask : bool array-like, shape (N,), optional
    groups : array-like, shape (N,), optional
        Patient ids; missing values belong to no group.
    exclude_same_group : bool

    Returns
    -------
    dict
        ``precision_at_1``, ``r_precision``, ``mean_average_precision_at_r`` (means over
        non-lone queries; NaN if all queries are lone), ``n_queries``, ``n_lone_queries``.

    Examples
    --------
    >>> x = [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]
    >>> m = retrieval_metrics(x, ["a", "a", "b", "b"])
    >>> m["precision_at_1"], m["mean_average_precision_at_r"]
    (1.0, 1.0)
    """
    where = Selection(query_mask, gallery_mask, groups, exclude_same_group)
    return pml_metrics_from(rank_labels(embeddings, labels, 1, where))


def fixed_k_metrics(
    embeddings: Any,
    labels: Any,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
) -> dict[str, float]:
    """P@k, HitRate@k and mAP@k for each k (definitions in the module docstring).

    Examples
    --------
    >>> x = [[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]]
    >>> fixed_k_metrics(x, ["a", "a", "b", "b"], ks=[2])["precision_at_2"]
    0.5
    """
    ks = check_ks(ks)
    where = Selection(query_mask, gallery_mask, groups, exclude_same_group)
    return fixed_k_from(rank_labels(embeddings, labels, max(ks), where), ks)


def graded_metrics(
    embeddings: Any,
    labels: Any,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
) -> dict[str, float]:
    """Mean Jaccard@k and nDCG@k (gain = shared findings) for each k.

    Examples
    --------
    >>> x = [[1, 0], [0.9, 0.1], [0, 1]]
    >>> graded_metrics(x, [[1, 1], [1, 0], [1, 1]], ks=[1])["jaccard_at_1"]
    0.5
    """
    ks = check_ks(ks)
    where = Selection(query_mask, gallery_mask, groups, exclude_same_group)
    return graded_from(rank_labels(embeddings, labels, max(ks), where), ks)


def pml_metrics_from(nb: Neighbourhood) -> dict[str, float]:
    """The three pytorch-metric-learning metrics from a ranking pass."""
    kept = ~nb.lone
    first = nb.sets.sets[nb.top[:, 0]] & nb.sets.sets[nb.queries]
    return {
        "precision_at_1": _mean(first.any(axis=1)[kept]),
        "r_precision": _mean(nb.r_precision[kept]),
        "mean_average_precision_at_r": _mean(nb.average_precision_at_r[kept]),
        "n_queries": float(len(nb.queries)),
        "n_lone_queries": float((~kept).sum()),
    }


def fixed_k_from(nb: Neighbourhood, ks: Sequence[int]) -> dict[str, float]:
    """P@k, HitRate@k and mAP@k from a ranking pass (lone queries left out)."""
    kept = ~nb.lone
    rel = _relevance(nb)[kept]
    r = nb.relevant_count[kept]
    out: dict[str, float] = {}
    for k in ks:
        hits = rel[:, :k]
        precision_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)[None, :]
        out[f"precision_at_{k}"] = _mean(hits.sum(axis=1) / k)
        out[f"hit_rate_at_{k}"] = _mean(hits.any(axis=1))
        out[f"map_at_{k}"] = _mean((precision_i * hits).sum(axis=1) / np.minimum(k, r))
    return out


def graded_from(nb: Neighbourhood, ks: Sequence[int]) -> dict[str, float]:
    """Mean Jaccard@k and nDCG@k from a ranking pass (lone queries left out)."""
    kept = ~nb.lone
    q = nb.sets.sets[nb.queries][kept][:, None, :]
    neighbours = nb.sets.sets[nb.top[kept]]
    shared = (q & neighbours).sum(axis=2).astype(np.float64)
    union = (q | neighbours).sum(axis=2)
    jaccard = shared / union
    out: dict[str, float] = {}
    for k in ks:
        discount = 1.0 / np.log2(np.arange(2, k + 2))
        dcg = (shared[:, :k] * discount).sum(axis=1)
        idcg = (nb.ideal_gains[kept][:, :k] * discount).sum(axis=1)
        out[f"jaccard_at_{k}"] = _mean(jaccard[:, :k].mean(axis=1))
        out[f"ndcg_at_{k}"] = _mean(dcg / idcg)
    return out


def check_ks(ks: Sequence[int]) -> list[int]:
    """Validate the cut-offs: positive ints, returned sorted and de-duplicated."""
    values = list(ks) if not isinstance(ks, int | np.integer) else [ks]
    bad = [k for k in values if not Interval(int, 1, None).contains(k)]
    if not values or bad:
        raise EvaluationInputError(
            f"ks must be positive integers (e.g. 1, 5, 10); got {list(values)!r}"
        )
    return sorted({int(k) for k in values})


def _relevance(nb: Neighbourhood) -> np.ndarray:
    """bool (Q, depth): is the i-th nearest relevant to the query."""
    return (nb.sets.sets[nb.top] & nb.sets.sets[nb.queries][:, None, :]).any(axis=2)


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
