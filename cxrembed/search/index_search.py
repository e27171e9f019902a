"""One FAISS search of a batch: complete rows, and the exact re-ranking of a shortlist.

Approximate search can find fewer than ``k`` vectors for a query (IVF with few cells
probed, when those cells hold fewer than ``k`` vectors; HNSW rarely). Only those rows are
searched again. IVF: with four times the cells, until every row is full, then four times
more once (a region that barely holds ``k`` vectors gives a poor k-th neighbour; all cells
at most, which is exhaustive and, for IVF-Flat, exact). HNSW: brute force over the graph's
own stored vectors. Nothing is copied or rebuilt, so the cost grows with the short rows
only (an earlier fallback rebuilt every vector of the index for each batch that held one
short row).

With the full vectors (:class:`~cxrembed.search.rerank.ExactVectors`), the ``k * factor``
best rows by compressed score are re-scored exactly and the best ``k`` kept: IVF-PQ codes
then rank only the shortlist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from cxrembed._deps import require
from cxrembed.errors import VectorInputError
from cxrembed.search.rerank import ExactVectors, rerank
from cxrlabel.vocab import Interval

faiss = require("faiss")

__all__ = [
    "IVF_KINDS",
    "search_rows",
    "complete",
    "faiss_threads",
    "search_params",
    "numpy_search",
    "numpy_method",
]

#: Kinds searched through inverted lists (``nprobe``).
IVF_KINDS = ("ivf", "ivfpq")
#: Each re-search of the short rows probes this many times more cells.
WIDEN = 4


def search_rows(
    index: Any,
    kind: str,
    settings: Mapping[str, Any],
    batch: np.ndarray,
    k: int,
    *,
    vectors: ExactVectors | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and index rows of the ``k`` best vectors of each query; every row complete.

    ``vectors`` turns on exact re-ranking of a shortlist of up to ``k * rerank_factor`` rows
    (what the probed cells hold): FAISS's ``IndexRefine`` when the vectors are in RAM, else
    :func:`~cxrembed.search.rerank.rerank` reading the memory-mapped rows.
    """
    if vectors is None:
        return complete(index, kind, settings, batch, k)
    factor = int(settings.get("rerank_factor", 1))
    if vectors.flat is not None and vectors.flat.ntotal == index.ntotal:
        refine = faiss.IndexRefine(index, vectors.flat)  # borrows both; owns neither
        return complete(refine, kind, settings, batch, k, k_factor=factor)
    depth = min(int(index.ntotal), k * factor)
    _, shortlist = complete(index, kind, settings, batch, depth, need=k)
    return rerank(batch, shortlist, k, vectors)


def complete(
    index: Any,
    kind: str,
    settings: Mapping[str, Any],
    batch: np.ndarray,
    k: int,
    *,
    need: int | None = None,
    k_factor: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS search at the index's setting; rows with fewer than ``need`` (default ``k``)
    hits searched again with more cells (IVF) or by brute force (HNSW).

    ``k_factor``: ``index`` is an ``IndexRefine`` over the IVF index, with this shortlist.
    """
    need = k if need is None else need

    def run(queries: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        params = search_params(kind, {**settings, "nprobe": nprobe}, k)
        if k_factor is not None:
            outer = faiss.IndexRefineSearchParameters(
                k_factor=float(k_factor), base_index_params=params
            )
            params = _holding(outer, params)
        return numpy_search(index)(queries, k, params=params)

    def short_rows(rows: np.ndarray) -> np.ndarray:
        return (rows >= 0).sum(axis=1) < need

    scores, rows = run(batch, settings.get("nprobe"))
    short = np.flatnonzero(short_rows(rows))
    if len(short) and kind in IVF_KINDS:
        nprobe, nlist, margin = int(settings["nprobe"]), int(settings["nlist"]), 1
        while nprobe < nlist:
            nprobe = min(nlist, nprobe * WIDEN)
            scores[short], rows[short] = run(batch[short], nprobe)
            if not short_rows(rows[short]).any():
                if not margin:
                    break
                margin -= 1  # every row full: widen once more, then stop
    elif len(short) and kind == "hnsw":
        scores[short], rows[short] = numpy_search(index.storage)(batch[short], k)
    short = short[short_rows(rows[short])]
    if len(short):  # only if k exceeds the index; VectorIndex refuses that before
        raise RuntimeError(
            f"FAISS found fewer than {need} of {index.ntotal} vectors for {len(short)} queries"
        )
    return scores, rows


@contextlib.contextmanager
def faiss_threads(n_threads: int | None) -> Iterator[None]:
    """Run with ``n_threads`` FAISS (OpenMP) threads, restoring the previous count after."""
    if n_threads is None:
        yield
        return
    Interval(int, 1, None).check(n_threads, "n_threads", VectorInputError)
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
            return _holding(faiss.SearchParametersPreTransform(index_params=params), params)
        return params
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=max(int(settings["ef_search"]), k))
    return None


def _holding(outer: Any, inner: Any) -> Any:
    """``outer`` (search parameters wrapping ``inner``) with a Python reference to ``inner``:
    FAISS keeps only a raw pointer, so ``inner`` must live as long as ``outer``."""
    outer.referenced = inner
    return outer


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
