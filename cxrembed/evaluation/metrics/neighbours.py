"""One exact ranking pass shared by every retrieval metric.

Each query ranks its *gallery* by cosine similarity (exact, numpy matmul: evaluation sets are
small). The gallery of a query is the rows in ``gallery_mask``, minus the query itself
(leave-one-out, as pytorch-metric-learning does when queries and references are the same
set), minus, with ``exclude_same_group``, every row of the same group (patient), so that a
follow-up image of the same patient cannot count as a correct match.

Queries are processed in blocks; per query the pass keeps the ``depth`` nearest gallery rows
(for fixed-k metrics and diagnosis), R (relevant rows in its gallery), R-precision, average
precision at R, and the ``depth`` best graded gains (the ideal ranking of nDCG). Ties in
similarity are broken by row order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cxrembed._vectors import as_vectors, normalise
from cxrembed.errors import EvaluationInputError
from cxrembed.evaluation.metrics.relevance import RelevanceLabels, label_sets

__all__ = [
    "Neighbourhood",
    "QueryGallery",
    "Selection",
    "query_gallery",
    "rank_labels",
    "scan_neighbours",
]

_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class QueryGallery:
    """Which rows are queries, which can be returned, and which rows share a patient.

    Attributes
    ----------
    queries : numpy.ndarray
        int64 row positions of the queries.
    gallery : numpy.ndarray
        bool N: rows that may be returned (a query never returns itself).
    groups : numpy.ndarray or None
        int64 N group codes (-1: no group), used when ``exclude_same_group``.
    exclude_same_group : bool
    leave_one_out : bool
        True when neither mask was given (every row is a query against all others).
    """

    queries: np.ndarray
    gallery: np.ndarray
    groups: np.ndarray | None
    exclude_same_group: bool
    leave_one_out: bool


@dataclass(frozen=True)
class Neighbourhood:
    """Per-query results of the ranking pass (Q queries, ``depth`` neighbours each).

    Attributes
    ----------
    queries : numpy.ndarray
        int64 (Q,) row positions of the queries.
    top : numpy.ndarray
        int64 (Q, depth) row positions of the nearest gallery rows, nearest first.
    relevant_count : numpy.ndarray
        int64 (Q,) R, relevant rows in each query's gallery (0: a "lone" query).
    gallery_size : numpy.ndarray
        int64 (Q,) rows in each query's gallery.
    r_precision : numpy.ndarray
        float64 (Q,) relevant share of the R nearest (NaN for lone queries).
    average_precision_at_r : numpy.ndarray
        float64 (Q,) sum over the R nearest of precision@i at relevant ranks, over R.
    ideal_gains : numpy.ndarray
        float64 (Q, depth) the largest graded gains in each gallery, decreasing.
    sets : RelevanceLabels
        The labels the pass used.
    """

    queries: np.ndarray
    top: np.ndarray
    relevant_count: np.ndarray
    gallery_size: np.ndarray
    r_precision: np.ndarray
    average_precision_at_r: np.ndarray
    ideal_gains: np.ndarray
    sets: RelevanceLabels

    @property
    def lone(self) -> np.ndarray:
        """bool (Q,): queries without any relevant row in their gallery."""
        return self.relevant_count == 0


class Selection(NamedTuple):
    """The query / gallery keywords of the public metric functions, passed on as one value.

    Fields as for :func:`query_gallery`.
    """

    query_mask: Any = None
    gallery_mask: Any = None
    groups: Any = None
    exclude_same_group: bool = False


def rank_labels(
    embeddings: Any,
    labels: Any,
    depth: int,
    selection: Selection,
    names: Any = None,
) -> Neighbourhood:
    """Label sets, the query / gallery choice and the ranking pass, keeping ``depth``.

    What every metric entry point runs first, so it is spelt once.

    Examples
    --------
    >>> nb = rank_labels([[1, 0], [0.9, 0.1], [0, 1]], ["a", "a", "b"], 1, Selection())
    >>> nb.top[:, 0].tolist()
    [1, 0, 1]
    """
    sets = label_sets(labels, None if names is None else list(names))
    qg = query_gallery(len(sets.sets), **selection._asdict())
    return scan_neighbours(embeddings, sets, qg, depth=depth)


def query_gallery(
    count: int,
    *,
    query_mask: Any = None,
    gallery_mask: Any = None,
    groups: Any = None,
    exclude_same_group: bool = False,
) -> QueryGallery:
    """Validate the query / gallery choice for ``count`` rows.

    Examples
    --------
    >>> qg = query_gallery(4, query_mask=[True, True, False, False])
    >>> qg.queries.tolist(), qg.gallery.tolist(), qg.leave_one_out
    ([0, 1], [True, True, True, True], False)
    """
    queries = _mask(query_mask, count, "query_mask")
    gallery = _mask(gallery_mask, count, "gallery_mask")
    if not queries.any():
        raise EvaluationInputError("query_mask selects no rows; expected at least one query")
    if not gallery.any():
        raise EvaluationInputError("gallery_mask selects no rows; expected a non-empty gallery")
    codes = None
    if groups is not None:
        values = pd.Series(np.asarray(groups, dtype=object))
        if len(values) != count:
            raise EvaluationInputError(
                f"groups has {len(values)} entries for {count} embeddings; expected one group "
                "(patient id) per row"
            )
        codes = pd.factorize(values)[0].astype(np.int64)  # NaN -> -1: in no group
    elif exclude_same_group:
        raise EvaluationInputError("exclude_same_group=True needs groups= (one patient id per row)")
    return QueryGallery(
        queries=np.flatnonzero(queries).astype(np.int64),
        gallery=gallery,
        groups=codes,
        exclude_same_group=bool(exclude_same_group),
        leave_one_out=query_mask is None and gallery_mask is None,
    )


def scan_neighbours(
    embeddings: Any, sets: RelevanceLabels, qg: QueryGallery, *, depth: int
) -> Neighbourhood:
    """Rank every query's gallery once; raise if a gallery is smaller than ``depth``.

    ``embeddings`` are L2-normalised here, so the similarity is the cosine.
    """
    x = normalise(
        as_vectors(embeddings, name="embeddings", error=EvaluationInputError),
        name="embeddings",
        error=EvaluationInputError,
    )
    n = len(x)
    if len(sets.sets) != n:
        raise EvaluationInputError(
            f"{len(sets.sets)} label rows were given for {n} embeddings; expected one label row "
            "per embedding, in the same order"
        )
    sets_f = sets.sets.astype(np.float32)
    nq = len(qg.queries)
    top = np.empty((nq, depth), dtype=np.int64)
    ideal = np.empty((nq, depth), dtype=np.float64)
    count_r = np.empty(nq, dtype=np.int64)
    size = np.empty(nq, dtype=np.int64)
    r_prec = np.full(nq, np.nan)
    ap_r = np.full(nq, np.nan)
    block = max(1, _BLOCK_ELEMENTS // n)
    for s in range(0, nq, block):
        rows = qg.queries[s : s + block]
        valid = _valid(rows, qg, n)
        size[s : s + len(rows)] = valid.sum(axis=1)
        small = np.flatnonzero(size[s : s + len(rows)] < depth)
        if small.size:
            _too_small(int(rows[small[0]]), int(size[s + small[0]]), depth, qg)
        sims = x[rows] @ x.T
        sims[~valid] = -np.inf
        gains = (sets_f[rows] @ sets_f.T) * valid
        rel = gains > 0
        r = rel.sum(axis=1)
        count_r[s : s + len(rows)] = r
        order = _top(sims, max(depth, int(r.max())))
        top[s : s + len(rows)] = order[:, :depth]
        ideal[s : s + len(rows)] = -np.sort(-gains, axis=1)[:, :depth]
        ranked = np.take_along_axis(rel, order, axis=1)
        within = np.arange(order.shape[1])[None, :] < r[:, None]
        hits = ranked & within
        with np.errstate(invalid="ignore", divide="ignore"):
            r_prec[s : s + len(rows)] = hits.sum(axis=1) / r
            precision = np.cumsum(hits, axis=1) / np.arange(1, order.shape[1] + 1)[None, :]
            ap_r[s : s + len(rows)] = (precision * hits).sum(axis=1) / r
    lone = count_r == 0
    r_prec[lone] = np.nan
    ap_r[lone] = np.nan
    return Neighbourhood(qg.queries, top, count_r, size, r_prec, ap_r, ideal, sets)


def _valid(rows: np.ndarray, qg: QueryGallery, n: int) -> np.ndarray:
    valid = np.repeat(qg.gallery[None, :], len(rows), axis=0)
    valid[np.arange(len(rows)), rows] = False
    if qg.exclude_same_group and qg.groups is not None:
        g = qg.groups[rows]
        same = (qg.groups[None, :] == g[:, None]) & (g[:, None] >= 0)
        valid &= ~same
    return valid


def _top(sims: np.ndarray, depth: int) -> np.ndarray:
    """Row-wise indices of the ``depth`` largest similarities, largest first (ties: lower
    index first)."""
    n = sims.shape[1]
    if depth >= n:
        return np.argsort(-sims, axis=1, kind="stable")
    part = np.argpartition(-sims, depth - 1, axis=1)[:, :depth]
    part.sort(axis=1)  # row order, so the stable sort below breaks ties by index
    vals = np.take_along_axis(sims, part, axis=1)
    return np.take_along_axis(part, np.argsort(-vals, axis=1, kind="stable"), axis=1)


def _mask(mask: Any, count: int, name: str) -> np.ndarray:
    if mask is None:
        return np.ones(count, dtype=bool)
    array = np.asarray(mask)
    if array.shape != (count,) or array.dtype != bool:
        raise EvaluationInputError(
            f"{name} must be a boolean array with one entry per embedding ({count}); got dtype "
            f"{array.dtype} and shape {array.shape}"
        )
    return array


def _too_small(row: int, size: int, depth: int, qg: QueryGallery) -> None:
    why = " after leaving out the query" + (" and its group" if qg.exclude_same_group else "")
    raise EvaluationInputError(
        f"k={depth} is larger than the gallery of query row {row}, which has {size} rows{why}; "
        f"expected k <= {size}. Fix: use a smaller k or a larger gallery"
    )
