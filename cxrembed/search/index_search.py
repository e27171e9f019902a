"""One FAISS search of a batch: complete rows, and the exact re-ranking of a shortlist.

Approximate search can find fewer than ``k`` vectors for a query (IVF with few cells
probed, when those cells hold fewer than ``k`` vectors; HNSW rarely). Only those rows are
searched again. IVF: with four times the cells, until every row is full, then four times
more once (a region that barely holds ``k`` vectors gives a poor k-th neighbour; all cells
at most, which is exhaustive and, for IVF-Flat, exact). HNSW: brute force over the graph's
own stored vectors. Nothing is copied or rebuilt, so the cost grows with the short rows
only (an earlier fallback rebuilt every vector of the index for each batch that held one
short row).

With ``take`` (a function from index rows to full vectors, kept in RAM or memory-mapped),
the ``k * factor`` best rows by compressed score are re-scored exactly and the best ``k``
kept: IVF-PQ codes then rank only the shortlist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from cxrembed._deps import require
from cxrembed.errors import VectorInputError

faiss = require("faiss")

__all__ = [
    "IVF_KINDS",
    "search_rows",
    "complete",
    "rerank",
    "take_rows",
    "faiss_threads",
    "search_params",
    "numpy_search",
    "numpy_method",
]

#: Kinds searched through inverted lists (``nprobe``).
IVF_KINDS = ("ivf", "ivfpq")
#: Queries re-ranked at once (bounds the gathered vectors to RERANK_CHUNK * k * factor rows).
RERANK_CHUNK = 1024
#: Each re-search of the short rows probes this many times more cells.
WIDEN = 4

Take = Callable[[np.ndarray], np.ndarray]


def search_rows(
    index: Any,
    kind: str,
    settings: Mapping[str, Any],
    batch: np.ndarray,
    k: int,
    *,
    take: Take | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and index rows of the ``k`` best vectors of each query; every row complete.

    ``take`` turns on exact re-ranking of a ``k * settings["rerank_factor"]`` shortlist.
    """
    if take is None:
        return complete(index, kind, settings, batch, k)
    depth = min(int(index.ntotal), k * int(settings.get("rerank_factor", 1)))
    _, shortlist = complete(index, kind, settings, batch, depth)
    return rerank(batch, shortlist, k, take)


def complete(
    index: Any, kind: str, settings: Mapping[str, Any], batch: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search at the index's setting; rows with fewer than ``k`` hits searched again
    with more cells (IVF) or by brute force (HNSW), so every row holds ``k`` rows."""
    scores, rows = numpy_search(index)(batch, k, params=search_params(kind, settings, k))
    short = np.flatnonzero((rows < 0).any(axis=1))
    if len(short) and kind in IVF_KINDS:
        nprobe, nlist, margin = int(settings["nprobe"]), int(settings["nlist"]), 1
        while nprobe < nlist:
            nprobe = min(nlist, nprobe * WIDEN)
            wider = search_params(kind, {**settings, "nprobe": nprobe}, k)
            scores[short], rows[short] = numpy_search(index)(batch[short], k, params=wider)
            if not (rows[short] < 0).any():
                if not margin:
                    break
                margin -= 1  # every row full: widen once more, then stop
    elif len(short) and kind == "hnsw":
        scores[short], rows[short] = numpy_search(index.storage)(batch[short], k)
    short = short[(rows[short] < 0).any(axis=1)]
    if len(short):  # only if k exceeds the index; VectorIndex refuses that before
        raise RuntimeError(f"FAISS found fewer than {k} of {index.ntotal} vectors for "
                           f"{len(short)} queries")
    return scores, rows


def rerank(
    batch: np.ndarray, shortlist: np.ndarray, k: int, take: Take
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner products of each query with its shortlist; the best ``k``, best first.

    Examples
    --------
    >>> x = np.eye(4, dtype=np.float32)
    >>> scores, rows = rerank(x[:1], np.array([[3, 0, 2]]), 2, lambda r: x[r])
    >>> rows.tolist(), scores.tolist()
    ([[0, 3]], [[1.0, 0.0]])
    """
    scores = np.empty((len(batch), k), dtype=np.float32)
    rows = np.empty((len(batch), k), dtype=np.int64)
    for s in range(0, len(batch), RERANK_CHUNK):
        part = shortlist[s : s + RERANK_CHUNK]
        q = batch[s : s + RERANK_CHUNK]
        vectors = take(part.ravel()).reshape(*part.shape, -1)
        exact = np.matmul(vectors, q[:, :, None])[:, :, 0]
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores[s : s + len(q)] = np.take_along_axis(exact, best, axis=1)
        rows[s : s + len(q)] = np.take_along_axis(part, best, axis=1)
    return scores, rows


def take_rows(vectors: np.ndarray) -> Take:
    """``rows -> vectors[rows]``; for a memory-mapped file, each row read once, in order."""
    if not isinstance(vectors, np.memmap):
        return vectors.__getitem__

    def take(rows: np.ndarray) -> np.ndarray:
        unique, where = np.unique(rows, return_inverse=True)
        return np.asarray(vectors[unique])[where]

    return take


@contextlib.contextmanager
def faiss_threads(n_threads: int | None) -> Iterator[None]:
    """Run with ``n_threads`` FAISS (OpenMP) threads, restoring the previous count after."""
    if n_threads is None:
        yield
        return
    if n_threads < 1:
        raise VectorInputError(f"n_threads must be at least 1; got {n_threads}")
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n_threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def search_params(kind: str, settings: Mapping[str, Any], k: int) -> Any:
    """FAISS search parameters of ``kind`` at ``settings`` (None for exact search)."""
    if kind in IVF_KINDS:
        params = faiss.SearchParametersIVF(nprobe=int(settings["nprobe"]))
        if settings.get("opq"):  # the IVF index sits behind the OPQ rotation
            outer = faiss.SearchParametersPreTransform(index_params=params)
            outer.referenced = params  # FAISS keeps a raw pointer: keep the object alive
            return outer
        return params
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=max(int(settings["ef_search"]), k))
    return None


def numpy_search(index: Any) -> Any:
    """The index's numpy ``search`` method, even when ``faiss.contrib.torch_utils`` is loaded."""
    return numpy_method(index, "search")


def numpy_method(owner: Any, name: str) -> Any:
    """``owner.<name>`` as faiss ships it, even when ``faiss.contrib.torch_utils`` is loaded.

    Importing that module (pytorch-metric-learning does) replaces ``Index.search``,
    ``reconstruct_n`` and ``faiss.knn`` process-wide by torch-aware wrappers with other
    signatures; the originals are kept under ``<name>_numpy``.
    """
    return getattr(owner, f"{name}_numpy", getattr(owner, name))
