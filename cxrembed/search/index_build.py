"""Choosing, creating and tuning the FAISS index behind :class:`cxrembed.search.index.VectorIndex`.

``auto`` is exact (``IndexFlatIP``) below :data:`EXACT_MAX_COUNT` vectors and IVF-Flat above.
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
]

KINDS: tuple[str, ...] = ("auto", "exact", "ivf", "hnsw")
#: ``kind="auto"`` builds an exact index below this many vectors, IVF from there on.
EXACT_MAX_COUNT = 50_000
#: Recall@10 that the tuned nprobe / efSearch must reach on the build-time sample.
DEFAULT_TARGET_RECALL = 0.95

_PARAMS: dict[str, tuple[str, ...]] = {
    "exact": (),
    "ivf": ("nlist", "nprobe", "train_size"),
    "hnsw": ("M", "ef_construction", "ef_search"),
}
_RECALL_K = 10
#: Fewer vectors than this cannot hold out a recall sample and still be worth approximating.
MIN_APPROXIMATE_COUNT = 100
_ADD_CHUNK = 100_000


def resolve(kind: str, params: Mapping[str, int] | None, count: int) -> tuple[str, dict]:
    """The concrete kind and its full parameter set (defaults filled, unknown keys refused)."""
    if kind not in KINDS:
        raise VectorInputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    chosen = kind if kind != "auto" else ("exact" if count < EXACT_MAX_COUNT else "ivf")
    given = dict(params or {})
    unknown = sorted(set(given) - set(_PARAMS[chosen]))
    if unknown:
        raise VectorInputError(
            f"unknown parameters {unknown} for a {chosen!r} index; expected some of "
            f"{list(_PARAMS[chosen]) or 'none'}"
        )
    for key, value in given.items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise VectorInputError(f"index parameter {key!r} must be a positive int; got {value!r}")
    if chosen != "exact" and count < MIN_APPROXIMATE_COUNT:
        raise VectorInputError(
            f"an approximate ({chosen}) index needs at least {MIN_APPROXIMATE_COUNT} vectors; got "
            f"{count}. Fix: use kind='exact' (or 'auto'), which is also faster at this size"
        )
    if chosen == "ivf":
        nlist = int(given.get("nlist", default_nlist(count)))
        if nlist > count:
            raise VectorInputError(
                f"nlist={nlist} exceeds the {count} vectors; expected at most one cell per vector"
            )
        settings = {"nlist": nlist, "nprobe": _maybe_int(given.get("nprobe")),
                    "train_size": int(given.get("train_size", min(count, 64 * nlist)))}
    elif chosen == "hnsw":
        settings = {"M": int(given.get("M", 32)),
                    "ef_construction": int(given.get("ef_construction", 80)),
                    "ef_search": _maybe_int(given.get("ef_search"))}
    else:
        settings = {}
    return chosen, settings


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
    d = x.shape[1]
    if kind == "exact":
        return faiss.IndexFlatIP(d)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, settings["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings["ef_construction"]
        return index
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, settings["nlist"], faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # centroids on the unit sphere, like the data
    index.cp.seed = int(rng.integers(2**31 - 1))
    size = min(settings["train_size"], len(x))
    if size < 39 * settings["nlist"]:  # FAISS would print its own warning to stderr
        warnings.warn(
            f"IVF with nlist={settings['nlist']} trained on {size} vectors (< 39 per cell): the "
            "cells are poorly placed. Use a smaller nlist or a larger train_size",
            stacklevel=4,
        )
        index.cp.min_points_per_centroid = max(1, size // settings["nlist"])
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
) -> tuple[np.ndarray, float | None, int]:
    """Add ``x`` to ``index``; for approximate kinds, tune it on held-out vectors first.

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
    """
    n = len(x)
    if kind == "exact":
        add_rows(index, x, np.arange(n), progress)
        return np.arange(n), None, 0
    held = np.sort(rng.choice(n, min(sample, max(1, n // 10)), replace=False))
    others = np.setdiff1d(np.arange(n), held, assume_unique=True)
    add_rows(index, x, others, progress)
    recall = tune(index, kind, settings, x, held, others, target)
    add_rows(index, x, held, False)
    return np.concatenate([others, held]), recall, len(held)


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
) -> float:
    """Set nprobe / ef_search (unless given) to the cheapest candidate whose recall@10 on the
    held-out queries reaches ``target``; return the recall of the value kept."""
    k = min(_RECALL_K, len(indexed))
    truth = exact_top(x, held, indexed, k)
    key = "nprobe" if kind == "ivf" else "ef_search"
    if settings[key] is not None:
        candidates = [int(settings[key])]
    elif kind == "ivf":
        top = max(1, settings["nlist"] // 16)
        candidates = [2**i for i in range(int(math.log2(top)) + 1)]
    else:
        candidates = [16, 32, 64, 128, 256, 512]
    recall = 0.0
    for value in candidates:
        settings[key] = value
        _, found = numpy_search(index)(x[held], k, params=search_params(kind, settings, k))
        recall = recall_at(found, truth)
        if recall >= target:
            break
    if recall < target and len(candidates) > 1:
        warnings.warn(
            f"approximate {kind} index reaches recall@10 {recall:.3f} at {key}={settings[key]}, "
            f"below the target {target}: the vectors have little cluster structure. Use "
            "kind='exact' if recall matters more than speed",
            stacklevel=4,
        )
    return round(float(recall), 4)


def exact_top(x: np.ndarray, queries: np.ndarray, indexed: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k of ``x[queries]`` among ``x[indexed]``, as positions in ``indexed``
    (= FAISS ids while only those are indexed); chunked, so nothing large is copied."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    q = x[queries]
    for s in range(0, len(indexed), _ADD_CHUNK):
        scores, found = faiss.knn(q, x[indexed[s : s + _ADD_CHUNK]], k,
                                  metric=faiss.METRIC_INNER_PRODUCT)
        heap.add_result(scores, np.where(found >= 0, found + s, -1))
    heap.finalize()
    return heap.I


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of ``truth`` present in the same row of ``found``."""
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size if truth.size else 1.0


def search_params(kind: str, settings: Mapping[str, Any], k: int) -> Any:
    if kind == "ivf":
        return faiss.SearchParametersIVF(nprobe=int(settings["nprobe"]))
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
