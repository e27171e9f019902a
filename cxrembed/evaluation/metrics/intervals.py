"""Retrieval metrics with patient-bootstrap 95% intervals, for single-label collections.

Queries (e.g. test patients) rank a gallery (e.g. training patients) once
(:func:`cxrembed.evaluation.metrics.neighbours.scan_neighbours`); then per query: average precision
at R, P@1 and R-precision on the class label (pytorch-metric-learning's definitions),
whether the plurality vote of the ``k`` nearest gallery images gives the query's class,
and, for a binary grouping of the classes (e.g. pneumonia = bacteria or virus), the share
of the ``k`` nearest in the positive group (scored by AUROC against the query's group).

Intervals resample **query patients** with replacement (a patient's images stay together,
so follow-up images do not shrink the interval), draws shared by all metrics and by every
call with the same query patients and seed, so methods are compared on the same draws.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = np.repeat(np.eye(3, 8), 6, axis=0) + 0.3 * rng.normal(size=(18, 8))
>>> classes = np.repeat(["normal", "bacteria", "virus"], 6)
>>> query = np.tile([True, False], 9)
>>> table = retrieval_with_intervals(x, classes, query, ~query, groups=np.arange(18),
...                                  positive=("bacteria", "virus"), k=3, draws=200)
>>> list(table.index)
['MAP@R', 'P@1', 'R-precision', 'vote accuracy', 'vote AUROC']
>>> bool((table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.evaluation.metrics.neighbours import Selection, rank_labels
from cxrembed.outcome.bootstrap import bootstrap_weights, percentile_ci, weighted_auroc

__all__ = ["retrieval_with_intervals", "paired_difference", "format_interval", "METRIC_NAMES"]

#: Row names of :func:`retrieval_with_intervals`, in order.
METRIC_NAMES: tuple[str, ...] = ("MAP@R", "P@1", "R-precision", "vote accuracy", "vote AUROC")


def retrieval_with_intervals(
    embeddings: Any,
    classes: Sequence[Any],
    query_mask: Any,
    gallery_mask: Any,
    *,
    groups: Sequence[Any],
    positive: Sequence[Any],
    k: int = 10,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Metrics of ``query_mask`` rows against ``gallery_mask`` rows, with intervals.

    Parameters
    ----------
    embeddings : array-like, shape (N, D)
        Compared by cosine similarity.
    classes : sequence, length N
        One class per row.
    query_mask, gallery_mask : bool array-like, shape (N,)
    groups : sequence, length N
        Patient of each row: a query's own patient is left out of its gallery, and the
        bootstrap resamples query patients.
    positive : sequence
        The classes of the positive group for the vote AUROC (e.g. the pneumonia classes).
    k : int
        Neighbours that vote.
    draws : int
        Bootstrap draws (0: no intervals, ``low``/``high`` NaN).
    seed, level
        Bootstrap seed and interval level.

    Returns
    -------
    pandas.DataFrame
        Index :data:`METRIC_NAMES`; columns ``value``, ``low``, ``high``, ``queries``.
    """
    where = _selection(query_mask, gallery_mask, groups)
    per_query, score, y, query_groups = _per_query(embeddings, classes, where, positive, k)
    weights = bootstrap_weights(query_groups, draws, seed) if draws else None
    rows = {}
    for name, values in per_query.items():
        kept = np.isfinite(values)
        rows[name] = _mean_row(values[kept], None if weights is None else weights[:, kept], level)
    value = float(weighted_auroc(score, y)[0]) if 0 < y.sum() < len(y) else float("nan")
    low = high = float("nan")
    if weights is not None and np.isfinite(value):
        low, high, _ = percentile_ci(weighted_auroc(score, y, weights), level)
    rows["vote AUROC"] = {"value": value, "low": low, "high": high, "queries": len(y)}
    return pd.DataFrame.from_dict(rows, orient="index").loc[list(METRIC_NAMES)]


def paired_difference(
    embeddings_a: Any,
    embeddings_b: Any,
    classes: Sequence[Any],
    query_mask: Any,
    gallery_mask: Any,
    *,
    groups: Sequence[Any],
    metric: str = "MAP@R",
    k: int = 10,
    draws: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """``metric`` of embedding A minus that of B on the same queries, with a paired interval.

    Both methods are scored per query, and every bootstrap draw resamples the same query
    patients for both, so the interval is that of the difference itself: narrower than
    comparing two separate intervals (whose overlap is a conservative test), and the
    honest one for "A beats B". Per-query metrics only (``MAP@R``, ``P@1``,
    ``R-precision``, ``vote accuracy``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> classes = np.repeat(["normal", "bacteria", "virus"], 8)
    >>> good = np.repeat(np.eye(3, 4), 8, axis=0) + 0.3 * rng.normal(size=(24, 4))
    >>> bad = good + 2.0 * rng.normal(size=(24, 4))
    >>> query = np.tile([True, False], 12)
    >>> d = paired_difference(good, bad, classes, query, ~query, groups=np.arange(24), draws=200)
    >>> bool(d["low"] <= d["value"] <= d["high"]) and d["value"] > 0
    True
    """
    if metric not in METRIC_NAMES[:-1]:
        raise ValueError(f"metric must be one of {list(METRIC_NAMES[:-1])}; got {metric!r}")
    args = (classes, _selection(query_mask, gallery_mask, groups), (), k)
    a, _, _, query_groups = _per_query(embeddings_a, *args)
    b = _per_query(embeddings_b, *args)[0]
    diff = a[metric] - b[metric]
    kept = np.isfinite(diff)
    weights = bootstrap_weights(query_groups, draws, seed)[:, kept] if draws else None
    row = _mean_row(diff[kept], weights, level)
    return {name: float(row[name]) for name in ("value", "low", "high")}


def format_interval(row: pd.Series, digits: int = 3) -> str:
    """``0.712 [0.690, 0.735]`` (the value alone when there is no interval).

    Examples
    --------
    >>> format_interval(pd.Series({"value": 0.7123, "low": 0.69, "high": 0.7351}))
    '0.712 [0.690, 0.735]'
    """
    value = f"{row['value']:.{digits}f}"
    if not (np.isfinite(row["low"]) and np.isfinite(row["high"])):
        return value
    return f"{value} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]"


def _selection(query_mask: Any, gallery_mask: Any, groups: Sequence[Any]) -> Selection:
    """The query / gallery choice of this module: masks taken as booleans, patients as
    given, and a query's own patient always left out of its gallery."""
    return Selection(
        query_mask=np.asarray(query_mask, dtype=bool),
        gallery_mask=np.asarray(gallery_mask, dtype=bool),
        groups=np.asarray(groups, dtype=object),
        exclude_same_group=True,
    )


def _per_query(
    embeddings: Any, classes: Sequence[Any], where: Selection, positive: Sequence[Any], k: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Per-query metrics, the positive-share scores and truth, and the query patients."""
    classes = np.asarray(classes, dtype=object)
    nb = rank_labels(embeddings, classes, max(int(k), 1), where)
    q = nb.queries
    truth = classes[q]
    neighbours = classes[nb.top[:, :k]]
    vote = np.array([_plurality(row) for row in neighbours], dtype=object)
    is_positive = np.isin(classes, list(positive))
    per_query = {
        "MAP@R": nb.average_precision_at_r,
        "P@1": (neighbours[:, 0] == truth).astype(float),
        "R-precision": nb.r_precision,
        "vote accuracy": (vote == truth).astype(float),
    }
    score = is_positive[nb.top[:, :k]].mean(axis=1)
    return per_query, score, is_positive[q].astype(int), where.groups[q]


def _plurality(row: np.ndarray) -> Any:
    """Most frequent class of the neighbours, ties to the one seen first (nearest)."""
    values, first, counts = np.unique(row, return_index=True, return_counts=True)
    best = counts.max()
    tied = [i for i in range(len(values)) if counts[i] == best]
    return values[min(tied, key=lambda i: first[i])]


def _mean_row(values: np.ndarray, weights: np.ndarray | None, level: float) -> dict[str, Any]:
    value = float(values.mean()) if len(values) else float("nan")
    low = high = float("nan")
    if weights is not None and len(values):
        totals = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (weights @ values) / totals
        low, high, _ = percentile_ci(means, level)
    return {"value": value, "low": low, "high": high, "queries": len(values)}
