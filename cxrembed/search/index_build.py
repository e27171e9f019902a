"""Choosing, creating and tuning the FAISS index behind :class:`cxrembed.search.index.VectorIndex`.

``auto`` is exact (``IndexFlatIP``) below :data:`EXACT_MAX_COUNT` vectors and IVF-Flat above;
with a memory budget (``max_memory``) that the full vectors do not fit, it is IVF-PQ with the
largest code that fits (see :mod:`cxrembed.search.sizing`).
On this project's benchmark (1M x 128-d clustered vectors, 2 shared cores) IVF-Flat with
nlist 2048 tuned itself to nprobe 1 and searched about 20,000 queries/s at recall@10 0.98,
about 400 times exact search in the same run; HNSW builds several times slower for a similar
speed (100k-vector run); see ``benchmarks/search_speed.py``. ``nprobe`` (IVF) or ``efSearch`` (HNSW) is tuned at build
time: the smallest candidate whose recall@10 reaches the target on a held-out sample of the
collection (see :func:`populate`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cxrembed._deps import require
from cxrembed.errors import VectorInputError
from cxrembed.search.index_search import (
    IVF_KINDS,
    numpy_method,
    numpy_search,
    search_params,
    search_rows,
)
from cxrembed.search.rerank import ExactVectors
from cxrembed.search.sizing import PQ_NBITS, format_bytes, index_bytes, pq_m_choices

faiss = require("faiss")

__all__ = [
    "KINDS",
    "EXACT_MAX_COUNT",
    "DEFAULT_TARGET_RECALL",
    "resolve",
    "default_nlist",
    "new_index",
    "populate",
    "add_rows",
    "tune",
    "exact_top",
    "recall_at",
    "search_params",
    "numpy_search",
    "numpy_method",
    "IVF_KINDS",
    "MIN_PQ_TRAIN",
    "DEFAULT_RERANK_FACTOR",
]

KINDS: tuple[str, ...] = ("auto", "exact", "ivf", "hnsw", "ivfpq")
#: Training vectors an IVF-PQ index needs: 39 per centroid of each 256-centroid codebook.
MIN_PQ_TRAIN = 39 * 2**PQ_NBITS
#: Default shortlist of an IVF-PQ index with exact re-ranking: ``k * rerank_factor``.
DEFAULT_RERANK_FACTOR = 10
#: ``kind="auto"`` builds an exact index below this many vectors, IVF from there on.
EXACT_MAX_COUNT = 50_000
#: Recall@10 that the tuned nprobe / efSearch must reach on the build-time sample.
DEFAULT_TARGET_RECALL = 0.95

_PARAMS: dict[str, tuple[str, ...]] = {
    "exact": (),
    "ivf": ("nlist", "nprobe", "train_size"),
    "hnsw": ("M", "ef_construction", "ef_search"),
    "ivfpq": ("nlist", "nprobe", "train_size", "m", "opq", "rerank_factor"),
}
_BOOL_PARAMS = ("opq",)
_RECALL_K = 10
#: Fewer vectors than this cannot hold out a recall sample and still be worth approximating.
MIN_APPROXIMATE_COUNT = 100
_ADD_CHUNK = 100_000
#: Training points per PQ centroid (FAISS default 256): k-means on 2-4-d sub-vectors is slow.
_PQ_POINTS_PER_CENTROID = 64
#: OPQ rotation updates (FAISS's default; each trains a PQ, so OPQ builds slowly).
_OPQ_ITERATIONS = 50
#: Shortlists (k times) tried when the default one misses the target recall.
_LARGER_FACTORS = (20, 40)
#: IVF-PQ tuning stops when doubling nprobe gains less recall@10 than this.
_PLATEAU = 0.002


def resolve(
    kind: str,
    params: Mapping[str, Any] | None,
    count: int,
    *,
    dim: int | None = None,
    budget: int | None = None,
    extra_bytes: int = 0,
) -> tuple[str, dict]:
    """The concrete kind and its full parameter set (defaults filled, unknown keys refused).

    ``budget`` (bytes, optional) bounds the FAISS index plus ``extra_bytes`` (the ids):
    ``auto`` turns to IVF-PQ when the full vectors do not fit, and an explicit kind that
    does not fit is refused. ``dim`` is needed with a budget and for IVF-PQ.
    """
    if kind not in KINDS:
        raise VectorInputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    chosen = kind if kind != "auto" else ("exact" if count < EXACT_MAX_COUNT else "ivf")
    if kind == "auto" and budget is not None and dim is not None:
        full = _settings(chosen, {}, count, dim)
        if index_bytes(chosen, full, count, dim) + extra_bytes > budget:
            chosen = "ivfpq"
    given = dict(params or {})
    unknown = sorted(set(given) - set(_PARAMS[chosen]))
    if unknown:
        raise VectorInputError(
            f"unknown parameters {unknown} for a {chosen!r} index; expected some of "
            f"{list(_PARAMS[chosen]) or 'none'}"
        )
    for key, value in given.items():
        if key in _BOOL_PARAMS:
            if not isinstance(value, bool | np.bool_):
                raise VectorInputError(
                    f"index parameter {key!r} must be True or False; got {value!r}"
                )
        elif not isinstance(value, int | np.integer) or value < 1:
            raise VectorInputError(f"index parameter {key!r} must be a positive int; got {value!r}")
    if chosen != "exact" and count < MIN_APPROXIMATE_COUNT:
        raise VectorInputError(
            f"an approximate ({chosen}) index needs at least {MIN_APPROXIMATE_COUNT} vectors; got "
            f"{count}. Fix: use kind='exact' (or 'auto'), which is also faster at this size"
        )
    if chosen in IVF_KINDS and int(given.get("nlist", default_nlist(count))) > count:
        raise VectorInputError(
            f"nlist={given['nlist']} exceeds the {count} vectors; expected at most one cell per "
            "vector"
        )
    settings = _settings(chosen, given, count, dim, budget=budget, extra_bytes=extra_bytes)
    if budget is not None and dim is not None:
        _check_budget(chosen, settings, count, dim, budget, extra_bytes)
    return chosen, settings


def _settings(
    kind: str,
    given: Mapping[str, Any],
    count: int,
    dim: int | None,
    *,
    budget: int | None = None,
    extra_bytes: int = 0,
) -> dict:
    if kind == "hnsw":
        return {
            "M": int(given.get("M", 32)),
            "ef_construction": int(given.get("ef_construction", 80)),
            "ef_search": _maybe_int(given.get("ef_search")),
        }
    if kind not in IVF_KINDS:
        return {}
    nlist = int(given.get("nlist", default_nlist(count)))
    settings: dict[str, Any] = {
        "nlist": nlist,
        "nprobe": _maybe_int(given.get("nprobe")),
        "train_size": int(given.get("train_size", min(count, 64 * nlist))),
    }
    if kind == "ivf":
        return settings
    if dim is None:
        raise VectorInputError("an ivfpq index needs the vector dimension to size its codes")
    settings["train_size"] = int(given.get("train_size", min(count, max(64 * nlist, MIN_PQ_TRAIN))))
    if settings["train_size"] < MIN_PQ_TRAIN:
        raise VectorInputError(
            f"an ivfpq index trains {2**PQ_NBITS} centroids per sub-vector and needs at least "
            f"{MIN_PQ_TRAIN:,} training vectors; got {settings['train_size']:,}. Fix: use "
            "kind='ivf' or 'exact' for this collection, or a larger train_size"
        )
    settings["opq"] = bool(given.get("opq", False))
    settings["rerank_factor"] = _maybe_int(given.get("rerank_factor"))  # None: tuned
    choices = pq_m_choices(dim)
    if "m" in given:
        if dim % int(given["m"]):
            raise VectorInputError(
                f"ivfpq m={given['m']} must divide the {dim} dimensions into equal sub-vectors; "
                f"expected one of {choices}"
            )
        settings["m"] = int(given["m"])
    elif budget is None:
        settings["m"] = next((m for m in choices if m <= max(1, dim // 4)), choices[-1])
    else:  # the largest code that fits (or the smallest, refused by _check_budget)
        settings["m"] = choices[-1]
        for m in choices:
            if index_bytes(kind, {**settings, "m": m}, count, dim) + extra_bytes <= budget:
                settings["m"] = m
                break
    return settings


def _check_budget(
    kind: str, settings: dict, count: int, dim: int, budget: int, extra_bytes: int
) -> None:
    need = index_bytes(kind, settings, count, dim) + extra_bytes
    if need <= budget:
        return
    smallest = {
        **settings,
        "nlist": 1,
        "m": pq_m_choices(dim)[-1],
        "opq": False,
        "rerank_factor": DEFAULT_RERANK_FACTOR,
    }
    floor = index_bytes("ivfpq", smallest, count, dim) + extra_bytes
    hint = (
        f"the smallest index of these vectors (ivfpq, m={smallest['m']}) needs "
        f"{format_bytes(floor)}"
        if floor > budget
        else "kind='auto' picks an ivfpq index that fits"
    )
    raise VectorInputError(
        f"a {kind} index of {count:,} x {dim}-d vectors needs {format_bytes(need)} "
        f"({format_bytes(extra_bytes)} of it ids), more than max_memory={format_bytes(budget)}. "
        f"Fix: raise max_memory, or use fewer bytes per vector ({hint})"
    )


def _maybe_int(value: Any) -> int | None:
    return None if value is None else int(value)


def default_nlist(count: int) -> int:
    """Power of two nearest 2*sqrt(N), with at least 39 training points per cell (FAISS's
    minimum, below which it prints a warning)."""
    target = 2.0 * math.sqrt(count)
    nlist = 2 ** max(0, round(math.log2(max(target, 1.0))))
    while nlist > 1 and count < 39 * nlist:
        nlist //= 2
    return nlist


def new_index(kind: str, settings: dict, x: np.ndarray, rng: np.random.Generator) -> Any:
    """An empty FAISS index of ``kind``, trained (IVF kinds) on a sample of ``x``."""
    d = x.shape[1]
    if kind == "exact":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, settings["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings["ef_construction"]
        return index
    if kind == "ivf":
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, settings["nlist"], faiss.METRIC_INNER_PRODUCT)
        ivf = index
    else:  # the factory owns every part (quantizer, rotation) of the index it returns
        spec = f"IVF{settings['nlist']},PQ{settings['m']}x{PQ_NBITS}"
        if settings["opq"]:
            spec = f"OPQ{settings['m']},{spec}"
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.do_polysemous_training = False  # Hamming filtering is not used; it trains 6x longer
        ivf.pq.cp.max_points_per_centroid = _PQ_POINTS_PER_CENTROID
        ivf.pq.cp.seed = int(rng.integers(2**31 - 1))
        if settings["opq"]:
            faiss.downcast_VectorTransform(index.chain.at(0)).niter = _OPQ_ITERATIONS
    ivf.cp.spherical = True  # centroids on the unit sphere, like the data
    ivf.cp.seed = int(rng.integers(2**31 - 1))
    size = min(settings["train_size"], len(x))
    if size < 39 * settings["nlist"]:  # FAISS would print its own warning to stderr
        warnings.warn(
            f"IVF with nlist={settings['nlist']} trained on {size} vectors (< 39 per cell): the "
            "cells are poorly placed. Use a smaller nlist or a larger train_size",
            stacklevel=4,
        )
        ivf.cp.min_points_per_centroid = max(1, size // settings["nlist"])
    sample = x if size >= len(x) else x[np.sort(rng.choice(len(x), size, replace=False))]
    index.train(sample)
    return index


def populate(
    index: Any,
    kind: str,
    settings: dict,
    x: np.ndarray,
    *,
    target: float,
    sample: int,
    rng: np.random.Generator,
    progress: bool | None,
    rerank: bool = False,
) -> tuple[np.ndarray, float | None, int, ExactVectors | None]:
    """Add ``x`` to ``index``; for approximate kinds, tune it on held-out vectors first.

    With ``rerank``, the full vectors are copied in index order and tuning searches as
    :class:`~cxrembed.search.index.VectorIndex` will: the shortlist re-scored with them.

    The recall sample is held out: the other vectors are added, nprobe / ef_search is tuned
    with the sample as new queries against exact search over what is indexed, then the sample
    is added last. (Querying with vectors already in the index overstates recall, for HNSW a
    lot: 0.97 measured where new queries get 0.91.)

    Returns
    -------
    order : numpy.ndarray
        Row of ``x`` held at each FAISS position (the sample comes last).
    recall : float or None
        Recall@10 of the kept setting (None for exact indexes).
    held : int
        Number of held-out queries the recall was measured on.
    vectors : ExactVectors or None
        The full vectors in index order, with ``rerank``.
    """
    n = len(x)
    if kind == "exact":
        add_rows(index, x, np.arange(n), progress)
        return np.arange(n), None, 0, None
    held = np.sort(rng.choice(n, min(sample, max(1, n // 10)), replace=False))
    others = np.setdiff1d(np.arange(n), held, assume_unique=True)
    add_rows(index, x, others, progress)
    vectors = ExactVectors.in_memory(x, others) if rerank else None
    recall = tune(index, kind, settings, x, held, others, target, vectors=vectors)
    add_rows(index, x, held, False)
    if vectors is not None:
        vectors.extend(x[held])
    return np.concatenate([others, held]), recall, len(held), vectors


def add_rows(index: Any, x: np.ndarray, rows: np.ndarray, progress: bool | None) -> None:
    """Add ``x[rows]`` in chunks (bounded extra memory), with a progress bar when asked."""
    starts = range(0, len(rows), _ADD_CHUNK)
    show = None if progress is None and len(starts) > 1 else bool(progress)
    for s in tqdm(starts, desc="index", unit="chunk", disable=None if show is None else not show):
        index.add(x[rows[s : s + _ADD_CHUNK]])


def tune(
    index: Any,
    kind: str,
    settings: dict,
    x: np.ndarray,
    held: np.ndarray,
    indexed: np.ndarray,
    target: float,
    *,
    vectors: ExactVectors | None = None,
) -> float:
    """Set nprobe / ef_search (unless given) to the cheapest candidate whose recall@10 on the
    held-out queries reaches ``target``; return the recall of the value kept.

    IVF-PQ stops early when a wider search gains nothing (its codes bound the recall); with
    re-ranking, the shortlist (``rerank_factor``, unless given) then grows instead."""
    k = min(_RECALL_K, len(indexed))
    truth = exact_top(x, held, indexed, k)
    grow = kind == "ivfpq" and settings["rerank_factor"] is None and vectors is not None
    if kind == "ivfpq" and settings["rerank_factor"] is None:
        settings["rerank_factor"] = DEFAULT_RERANK_FACTOR
    key = "nprobe" if kind in IVF_KINDS else "ef_search"
    if settings[key] is not None:
        candidates = [int(settings[key])]
    elif kind in IVF_KINDS:
        top = max(1, settings["nlist"] // 16)
        candidates = [2**i for i in range(int(math.log2(top)) + 1)]
    else:
        candidates = [16, 32, 64, 128, 256, 512]
    recall, previous = 0.0, None
    for value in candidates:
        settings[key] = value
        _, found = search_rows(index, kind, settings, x[held], k, vectors=vectors)
        recall = recall_at(found, truth)
        if recall >= target:
            break
        if kind == "ivfpq" and previous is not None and recall < previous[1] + _PLATEAU:
            settings[key], recall = previous
            break
        previous = (value, recall)
    for factor in _LARGER_FACTORS if grow and recall < target else ():
        kept = (settings["rerank_factor"], recall)
        settings["rerank_factor"] = factor
        _, found = search_rows(index, kind, settings, x[held], k, vectors=vectors)
        recall = recall_at(found, truth)
        if recall >= target:
            break
        if recall < kept[1] + _PLATEAU:
            settings["rerank_factor"], recall = kept
            break
    if recall < target and (len(candidates) > 1 or grow):
        if kind == "ivfpq" and vectors is not None:
            why = (
                f"its {settings['m']}-byte codes lose detail and a k x "
                f"{settings['rerank_factor']} shortlist misses neighbours. Use a larger "
                "rerank_factor, m or max_memory"
            )
        elif kind == "ivfpq":
            why = (
                f"its {settings['m']}-byte codes lose detail. Build with rerank=True (exact "
                "re-scoring of a shortlist), a larger m or a larger max_memory"
            )
        else:
            why = (
                "the vectors have little cluster structure. Use kind='exact' if recall "
                "matters more than speed"
            )
        warnings.warn(
            f"approximate {kind} index reaches recall@10 {recall:.3f} at {key}={settings[key]}, "
            f"below the target {target}: {why}",
            stacklevel=4,
        )
    return round(float(recall), 4)


def exact_top(x: np.ndarray, queries: np.ndarray, indexed: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k of ``x[queries]`` among ``x[indexed]``, as positions in ``indexed``
    (= FAISS ids while only those are indexed); chunked, so nothing large is copied."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    q = x[queries]
    for s in range(0, len(indexed), _ADD_CHUNK):
        scores, found = faiss.knn(
            q, x[indexed[s : s + _ADD_CHUNK]], k, metric=faiss.METRIC_INNER_PRODUCT
        )
        heap.add_result(scores, np.where(found >= 0, found + s, -1))
    heap.finalize()
    return heap.I


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` present in the same row of ``found``."""
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size if truth.size else 1.0
