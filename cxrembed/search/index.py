"""A FAISS index over L2-normalised embeddings, saved with its id map and display metadata.

Vectors are unit-norm, so the inner product is the cosine similarity and search returns the
``k`` most similar vectors first. Kinds:

``exact``
    ``IndexFlatIP``: brute force, recall 1. The ``auto`` choice below
    :data:`EXACT_MAX_COUNT` vectors.
``ivf``
    ``IndexIVFFlat`` (inverted lists over spherical k-means cells, vectors stored in full):
    the ``auto`` choice for larger collections. It builds in about half a minute per
    million 128-d vectors on 2 cores (k-means on 64 vectors per cell, then assignment) and
    searches a few cells per query. ``nprobe`` (cells searched) is tuned at build time: the
    smallest power of two whose measured recall@10 reaches ``target_recall``.
``hnsw``
    ``IndexHNSWFlat`` (graph). Slower to build; ``efSearch`` tuned the same way.
``ivfpq``
    ``IndexIVFPQ`` (optionally behind an OPQ rotation): the same cells, but each vector
    stored as an ``m``-byte product-quantizer code (32 bytes for 128-d by default, against
    512 in full), so 100M vectors fit in a few GB. The ``auto`` choice when a memory budget
    (``max_memory``) does not hold the full vectors: the largest code that fits. Compressed
    scores lose detail, so by default the full vectors are kept in ``vectors.npy`` (on disk,
    memory-mapped; not counted in the budget) and the best ``k * rerank_factor`` of each
    query are re-scored exactly (``rerank``).

Memory: ``info["bytes_per_vector"]`` and ``info["memory_bytes"]`` give what the loaded
index holds (see :mod:`cxrembed.search.sizing`: exact for all kinds but HNSW).

Vectors can be added after the build (:meth:`VectorIndex.add`); a search can leave out
given ids (``exclude_ids``, e.g. the query itself) or every vector of the query's group
(``exclude_groups`` with a metadata ``group_column``, e.g. the patient), refilling each
list to ``k`` (see :mod:`cxrembed.search.exclusion`).

For approximate kinds, recall@10 against exact search is measured at build time on a
held-out sample of the collection (up to 1,000 vectors, added last, after tuning), stored in
``index.json`` and exposed as :attr:`VectorIndex.recall_at_10`. On data without cluster
structure (e.g. uniform random vectors) approximate search cannot reach high recall at low
cost: nprobe stops at ``nlist / 16`` (efSearch at 512) and a warning gives the recall
reached.

The folder an index is saved to (files, sizes and SHA-256 checksums, the run's config hash
and weights fingerprint) is described in :mod:`cxrembed.search.index_files`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cxrembed._deps import require
from cxrembed._vectors import as_ids, as_vectors, check_unit_norm, normalise
from cxrembed.embeddings.config_hash import check_config_hash
from cxrembed.errors import VectorInputError
from cxrembed.search.exclusion import code_groups, exclusion_rule, search_excluding
from cxrembed.search.index_build import (
    DEFAULT_TARGET_RECALL,
    EXACT_MAX_COUNT,
    KINDS,
    add_rows,
    new_index,
    populate,
    resolve,
)
from cxrembed.search.index_files import FORMAT_VERSION, read_folder, read_info, write_folder
from cxrembed.search.index_search import faiss_threads, search_rows
from cxrembed.search.rerank import ExactVectors
from cxrembed.search.sizing import bytes_per_vector, index_bytes, parse_memory
from cxrlabel.vocab import Interval

faiss = require("faiss")

__all__ = ["VectorIndex", "KINDS", "EXACT_MAX_COUNT", "DEFAULT_TARGET_RECALL"]

_REBUILD = (
    "search with the run that built the index, or rebuild the index for this run "
    "(`cxr embed RUN ... --index DIR`)"
)


class VectorIndex:
    """Nearest-neighbour search over unit-norm vectors, returning the caller's ids.

    Build one with :meth:`build` or read one with :meth:`load`; the constructor only stores
    what those give it.

    Parameters
    ----------
    index : faiss.Index
        The FAISS index; its internal ids are row positions in ``ids``.
    ids : numpy.ndarray
        One unique id (str or int) per vector.
    info : dict
        What ``index.json`` holds (kind, params, dim, count, recall, config hash...).
    metadata : pandas.DataFrame, optional
        Columns to display with results, aligned row for row with ``ids``.
    vectors : ExactVectors, optional
        The full vectors in index order (in RAM or memory-mapped), for exact re-ranking.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(100, 8)).astype("float32")
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> index = VectorIndex.build(x, [f"img{i}" for i in range(100)])
    >>> index.kind, len(index)
    ('exact', 100)
    >>> scores, ids = index.search(x[:2], k=3)
    >>> ids[:, 0].tolist()
    ['img0', 'img1']
    """

    def __init__(
        self,
        index: Any,
        ids: np.ndarray,
        *,
        info: Mapping[str, Any],
        metadata: pd.DataFrame | None = None,
        vectors: ExactVectors | None = None,
    ) -> None:
        self._index = index
        self._ids = ids
        self._info = dict(info)
        self._metadata = metadata
        self._vectors = vectors
        self._lookup: dict[str, Any] = {}  # cached id order and group codes, reset by add()

    # ----------------------------------------------------------------- properties
    @property
    def kind(self) -> str:
        """``"exact"``, ``"ivf"``, ``"hnsw"`` or ``"ivfpq"``."""
        return str(self._info["kind"])

    @property
    def params(self) -> dict[str, Any]:
        """The build and search parameters (nlist, nprobe, M, ef_search...)."""
        return dict(self._info["params"])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._info["dim"])

    @property
    def config_hash(self) -> str | None:
        """Hash of the run configuration that produced the vectors, if given at build."""
        return self._info.get("config_hash")

    @property
    def weights_sha256(self) -> str | None:
        """Fingerprint of the weights that produced the vectors, if given at build."""
        return self._info.get("weights_sha256")

    @property
    def recall_at_10(self) -> float | None:
        """Recall@10 vs exact search measured at build (``None`` for exact indexes)."""
        return self._info.get("recall_at_10")

    @property
    def rerank(self) -> bool:
        """Whether search re-scores a compressed shortlist with the full vectors."""
        return bool(self._info.get("rerank", False))

    @property
    def ids(self) -> np.ndarray:
        """The ids in index order (a copy): the order given, except that an approximate
        index holds its held-out recall sample last."""
        return self._ids.copy()

    @property
    def metadata(self) -> pd.DataFrame | None:
        """The display columns, aligned row for row with :attr:`ids` (a copy), or None."""
        return None if self._metadata is None else self._metadata.copy()

    @property
    def info(self) -> dict[str, Any]:
        """Everything ``index.json`` holds (a copy)."""
        return json.loads(json.dumps(self._info))

    def __len__(self) -> int:
        return int(self._info["count"])

    def __repr__(self) -> str:
        recall = "" if self.recall_at_10 is None else f", recall@10={self.recall_at_10:.3f}"
        return f"VectorIndex(kind={self.kind!r}, count={len(self)}, dim={self.dim}{recall})"

    # ----------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        vectors: Any,
        ids: Sequence[Any] | np.ndarray,
        kind: str = "auto",
        *,
        config_hash: str | None = None,
        weights_sha256: str | None = None,
        metadata: pd.DataFrame | None = None,
        params: Mapping[str, int] | None = None,
        normalize: bool = False,
        target_recall: float = DEFAULT_TARGET_RECALL,
        recall_sample: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: bool | None = None,
        max_memory: int | str | None = None,
        rerank: bool | None = None,
    ) -> VectorIndex:
        """Index ``vectors`` under ``ids``.

        Parameters
        ----------
        vectors : array-like, shape (N, D)
            Unit-norm float vectors (see ``normalize``).
        ids : sequence of str or int, length N
            Unique ids, returned by :meth:`search`.
        kind : {"auto", "exact", "ivf", "hnsw", "ivfpq"}
            ``auto``: exact below :data:`EXACT_MAX_COUNT` vectors, else ``ivf``; ``ivfpq``
            when ``max_memory`` does not hold the full vectors.
        config_hash : str, optional
            The producing run's config hash, stored so a search can refuse another run's index.
        weights_sha256 : str, optional
            Fingerprint of the producing run's weights (:attr:`Encoder.weights_sha256
            <cxrembed.inference.encoder.Encoder.weights_sha256>`), checked the same way.
        metadata : pandas.DataFrame, optional
            Display columns, one row per vector in the same order.
        params : mapping, optional
            Override defaults: ivf ``nlist`` (default: the power of two nearest 2*sqrt(N)),
            ``nprobe`` (default: tuned), ``train_size`` (default 64*nlist); hnsw ``M`` (32),
            ``ef_construction`` (80), ``ef_search`` (default: tuned); ivfpq ``nlist``,
            ``nprobe``, ``train_size`` as ivf, ``m`` (code bytes per vector; default the
            largest that fits ``max_memory``, else dim/4), ``opq`` (False: no OPQ rotation),
            ``rerank_factor`` (shortlist of ``k * rerank_factor`` re-scored; default 10,
            or 20 / 40 when 10 misses ``target_recall``).
        normalize : bool
            Divide each vector by its norm first; otherwise non-unit vectors are an error.
        target_recall : float
            Recall@10 the tuned nprobe / efSearch must reach on the held-out sample.
        recall_sample : int
            Vectors held out as queries to tune and measure recall (at most N / 10).
        seed : int
            Seeds the held-out sample and the k-means training sample.
        n_threads : int, optional
            FAISS threads while building (restored afterwards); default: FAISS's own.
        progress : bool, optional
            Progress bar on stderr while adding vectors (None: only on a terminal).
        max_memory : int or str, optional
            Memory budget of the loaded index (FAISS index, ids and metadata), in bytes or
            as ``"4GB"`` / ``"512MiB"``: ``auto`` picks the kind that fits, and a kind that
            does not fit is refused. The re-ranking vectors stay on disk (memory-mapped) and
            are not counted.
        rerank : bool, optional
            Keep the full vectors and re-score each query's compressed shortlist exactly.
            Default (None): on for ``ivfpq``. The other kinds store full vectors, so their
            scores are exact already and this changes nothing.

        Returns
        -------
        VectorIndex
        """
        start = time.perf_counter()
        id_array, x = _checked(vectors, ids, normalize=normalize)
        meta = _check_metadata(metadata, len(x))
        budget = parse_memory(max_memory)
        held_bytes = id_array.nbytes + _frame_bytes(meta)
        chosen, settings = resolve(
            kind, params, len(x), dim=x.shape[1], budget=budget, extra_bytes=held_bytes
        )
        if not 0.0 < target_recall <= 1.0:
            raise VectorInputError(f"target_recall must be in (0, 1]; got {target_recall!r}")
        keep = chosen == "ivfpq" and rerank is not False
        rng = np.random.default_rng(seed)
        with faiss_threads(n_threads):
            index = new_index(chosen, settings, x, rng)
            order, recall, held, exact = populate(
                index,
                chosen,
                settings,
                x,
                target=target_recall,
                sample=recall_sample,
                rng=rng,
                progress=progress,
                rerank=keep,
            )
        per_vector = bytes_per_vector(chosen, settings, x.shape[1])
        info = {
            "format": FORMAT_VERSION,
            "kind": chosen,
            "requested_kind": kind,
            "params": settings,
            "dim": int(x.shape[1]),
            "count": int(x.shape[0]),
            "metric": "inner_product",
            "config_hash": config_hash,
            "weights_sha256": weights_sha256,
            "recall_at_10": recall,
            "recall_queries": None if recall is None else held,
            "target_recall": None if recall is None else target_recall,
            "build_seconds": round(time.perf_counter() - start, 3),
            "faiss_version": faiss.__version__,
            "id_type": "int" if id_array.dtype.kind == "i" else "str",
            "meta_columns": [] if meta is None else [str(c) for c in meta.columns],
            "rerank": keep,
            "max_memory": budget,
            "bytes_per_vector": per_vector,
            "memory_bytes": index_bytes(chosen, settings, len(x), x.shape[1]) + held_bytes,
            "added": 0,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(
            index,
            id_array[order],
            info=info,
            metadata=None if meta is None else meta.iloc[order].reset_index(drop=True),
            vectors=exact,
        )

    # ----------------------------------------------------------------- add
    def add(
        self,
        vectors: Any,
        ids: Sequence[Any] | np.ndarray,
        metadata: pd.DataFrame | None = None,
        *,
        normalize: bool = False,
    ) -> VectorIndex:
        """Add vectors to this index (in place) and return it.

        The cells (IVF), codebooks (PQ) and tuned settings are kept from the build: adding
        many vectors unlike the first ones lowers recall, and ``recall_at_10`` stays the
        build-time figure (``info["added"]`` counts the vectors added since).

        Parameters
        ----------
        vectors : array-like, shape (N, D)
            Unit-norm vectors of the index's dimension (see ``normalize``).
        ids : sequence of str or int, length N
            New unique ids of the index's id type; an id already indexed is refused.
        metadata : pandas.DataFrame, optional
            One row per new vector with exactly the index's metadata columns (required when
            the index has metadata, refused when it has none).
        normalize : bool
            Divide each vector by its norm first; otherwise non-unit vectors are an error.

        Examples
        --------
        >>> x = np.eye(4, dtype=np.float32)
        >>> index = VectorIndex.build(x[:2], ["a", "b"]).add(x[2:], ["c", "d"])
        >>> len(index), index.search(x[3], k=1)[1].tolist()
        (4, [['d']])
        """
        id_array, x = _checked(vectors, ids, normalize=normalize, name="added vectors")
        if x.shape[1] != self.dim:
            raise VectorInputError(
                f"added vectors have {x.shape[1]} dimensions but the index holds {self.dim}-d "
                "vectors; expected vectors from the model that built the index"
            )
        if (id_array.dtype.kind == "i") != (self._ids.dtype.kind == "i"):
            raise VectorInputError(
                f"the index has {self._info.get('id_type', 'str')} ids but the added ids are "
                f"{'int' if id_array.dtype.kind == 'i' else 'str'}; expected one id type. "
                "Fix: convert the new ids"
            )
        again = np.flatnonzero(self._rows_of(id_array) >= 0)
        if len(again):
            raise VectorInputError(
                f"{len(again)} added ids are already in the index, e.g. "
                f"{id_array[again[0]].item()!r} (added row {int(again[0])}); ids must be unique. "
                "Fix: leave those vectors out, or rebuild the index to replace them"
            )
        meta = self._aligned_metadata(metadata, len(x))
        add_rows(self._index, x, np.arange(len(x)), False)
        self._ids = np.concatenate([self._ids, id_array])
        if meta is not None:
            self._metadata = pd.concat([self._metadata, meta], ignore_index=True)
        if self._vectors is not None:
            self._vectors.extend(x)
        count = int(self._index.ntotal)
        self._info.update(
            count=count,
            added=int(self._info.get("added", 0)) + len(x),
            memory_bytes=index_bytes(self.kind, self._info["params"], count, self.dim)
            + self._ids.nbytes
            + _frame_bytes(self._metadata),
        )
        self._lookup.clear()
        return self

    def _aligned_metadata(self, metadata: pd.DataFrame | None, count: int) -> pd.DataFrame | None:
        columns = [] if self._metadata is None else list(self._metadata.columns)
        if metadata is None and not columns:
            return None
        if metadata is None:
            raise VectorInputError(
                f"the index stores the metadata columns {columns}; give metadata for the added "
                "vectors, one row each with those columns (blank values allowed)"
            )
        meta = _check_metadata(metadata, count)
        if not columns:
            raise VectorInputError(
                "the index was built without metadata, so added vectors cannot carry any "
                f"(got columns {list(meta.columns)}). Fix: rebuild the index with metadata"
            )
        extra = [c for c in meta.columns if c not in columns]
        missing = [c for c in columns if c not in meta.columns]
        if extra or missing:
            raise VectorInputError(
                f"added metadata must have the index's columns {columns}; missing {missing}, "
                f"unknown {extra}. Fix: align the table's columns to the index"
            )
        return meta[columns]

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Index row of each id (-1 when not indexed)."""
        if "order" not in self._lookup:
            order = np.argsort(self._ids, kind="stable")
            self._lookup.update(order=order, sorted=self._ids[order])
        order, sorted_ids = self._lookup["order"], self._lookup["sorted"]
        if not len(ids) or not len(order):
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_ids, ids), len(order) - 1)
        return np.where(sorted_ids[at] == ids, order[at], -1).astype(np.int64)

    # ----------------------------------------------------------------- search
    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        normalize: bool = False,
        batch_size: int = 8192,
        n_threads: int | None = None,
        progress: bool | None = None,
        exclude_ids: Sequence[Any] | None = None,
        exclude_groups: Sequence[Any] | None = None,
        group_column: str | None = None,
        rerank: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` most similar indexed vectors of each query, most similar first.

        Parameters
        ----------
        queries : array-like, shape (Q, D)
            Unit-norm query vectors (see ``normalize``); one vector may be passed as (D,).
        k : int
            Neighbours per query, at most ``len(self)``.
        normalize : bool
            Divide each query by its norm first; otherwise non-unit queries are an error.
        batch_size : int
            Queries per FAISS call (memory bound; FAISS parallelises inside a batch).
        n_threads : int, optional
            FAISS threads during the search (restored afterwards).
        progress : bool, optional
            Progress bar over batches (None: only on a terminal, and only for > 1 batch).
        exclude_ids : sequence, optional
            One entry per query: an id (or a list of ids) to leave out of its neighbours,
            e.g. the query's own id when the queries are indexed vectors; None leaves out
            nothing. Ids not in the index are ignored.
        exclude_groups : sequence, optional
            One group per query (e.g. its patient id; None/blank: no group): every vector
            whose ``group_column`` value is the same (compared as text) is left out.
        group_column : str, optional
            The metadata column holding each vector's group (with ``exclude_groups``).
        rerank : bool, optional
            Re-score the shortlist with the full vectors (None: as built; False: compressed
            scores only, faster; True needs an index built with re-ranking).

        With exclusions, each list is still filled to ``k`` with the next best vectors; a
        query that leaves fewer than ``k`` vectors is refused.

        Returns
        -------
        scores : numpy.ndarray, float32 (Q, k)
            Cosine similarities, decreasing along each row.
        ids : numpy.ndarray, (Q, k)
            The matching ids, with the dtype of the ids given at build.
        """
        q = np.asarray(queries.detach().cpu() if hasattr(queries, "detach") else queries)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        q = as_vectors(q, name="queries")
        if q.shape[1] != self.dim:
            raise VectorInputError(
                f"queries have {q.shape[1]} dimensions but the index holds {self.dim}-d vectors; "
                "expected queries embedded by the same model as the index. Fix: embed the "
                "queries with the run that built the index"
            )
        q = normalise(q, name="queries") if normalize else q
        if not normalize:
            check_unit_norm(q, name="queries")
        k = _check_k(k, len(self))
        Interval(int, 1, None).check(batch_size, "batch_size", VectorInputError)
        exact = self._exact(rerank)
        rule = exclusion_rule(
            len(q),
            k,
            len(self),
            exclude_ids=exclude_ids,
            exclude_groups=exclude_groups,
            group_column=group_column,
            rows_of=self._rows_of,
            integer_ids=self._ids.dtype.kind == "i",
            group_codes=self._group_codes,
        )
        scores = np.empty((len(q), k), dtype=np.float32)
        rows = np.empty((len(q), k), dtype=np.int64)
        starts = range(0, len(q), batch_size)
        show = None if progress is None and len(starts) > 1 else bool(progress)

        def find(batch: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
            return search_rows(
                self._index, self.kind, self._info["params"], batch, depth, vectors=exact
            )

        with faiss_threads(n_threads):
            for s in tqdm(starts, desc="search", unit="batch", disable=_disable(show)):
                batch = q[s : s + batch_size]
                part = slice(s, s + len(batch))
                if rule is None:
                    scores[part], rows[part] = find(batch, k)
                else:
                    scores[part], rows[part] = search_excluding(
                        find, batch, k, rule.part(s, s + len(batch)), len(self)
                    )
        return scores, self._ids[rows]

    def _exact(self, rerank: bool | None) -> ExactVectors | None:
        """The full vectors of index rows, when re-ranking; else None."""
        if not (self.rerank if rerank is None else rerank):
            return None
        if self._vectors is None:
            raise VectorInputError(
                f"this {self.kind} index keeps no full vectors to re-rank with (built with "
                "rerank=False, or a kind whose scores are exact already). Fix: search with "
                "rerank=None, or rebuild with kind='ivfpq' and rerank=True"
            )
        return self._vectors

    def _group_codes(self, column: str) -> tuple[np.ndarray, pd.Index]:
        key = ("groups", column)
        if key not in self._lookup:
            if self._metadata is None or column not in self._metadata.columns:
                have = [] if self._metadata is None else list(self._metadata.columns)
                raise VectorInputError(
                    f"group_column {column!r} is not a metadata column of the index; it has "
                    f"{have or 'no metadata'}. Fix: build the index with metadata holding each "
                    "vector's group (e.g. the patient id)"
                )
            self._lookup[key] = code_groups(self._metadata[column].tolist())
        return self._lookup[key]

    def check_config_hash(
        self,
        expected: str | None,
        *,
        source: str = "the index",
        weights_sha256: str | None = None,
    ) -> None:
        """Raise :class:`ConfigHashMismatchError` if ``expected`` (or the weights
        fingerprint) is given and differs."""
        check_config_hash(
            self.config_hash,
            expected,
            what=source,
            fix=_REBUILD,
            found_weights=self.weights_sha256,
            expected_weights=weights_sha256,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index folder (every file atomically, ``index.json`` last).

        A ``meta.parquet`` or ``vectors.npy`` left from an earlier save without them is
        removed.
        """
        return write_folder(
            path, self._index, self._ids, self._info, metadata=self._metadata, vectors=self._vectors
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        config_hash: str | None = None,
        weights_sha256: str | None = None,
    ) -> VectorIndex:
        """Read an index folder written by :meth:`save`, checking that its files agree.

        Parameters
        ----------
        path : path-like
            The index folder.
        config_hash : str, optional
            Refuse (:class:`ConfigHashMismatchError`) an index built from another run.
        weights_sha256 : str, optional
            Refuse an index embedded with other weights (a run with the same settings but
            trained differently, or further).

        The re-ranking vectors (``vectors.npy``) are read into RAM when the index was built
        with a ``max_memory`` that holds them too; otherwise they are memory-mapped (the
        operating system keeps the pages it has room for in RAM).
        """
        folder = Path(path)
        info = read_info(folder)
        # Before reading the vectors: an index of another run is refused at once.
        check_config_hash(
            info.get("config_hash"),
            config_hash,
            what=f"index {folder}",
            fix=_REBUILD,
            found_weights=info.get("weights_sha256"),
            expected_weights=weights_sha256,
        )
        index, ids, info, meta, vectors = read_folder(folder, info)
        return cls(index, ids, info=info, metadata=meta, vectors=vectors)


# --------------------------------------------------------------------- helpers
def _checked(
    vectors: Any, ids: Sequence[Any] | np.ndarray, *, normalize: bool, name: str = "vectors"
) -> tuple[np.ndarray, np.ndarray]:
    """Ids and float32 unit vectors (normalised if asked), one id per row, or raise."""
    id_array = as_ids(ids)
    x = as_vectors(vectors, ids=id_array, name=name)
    if len(x) != len(id_array):
        raise VectorInputError(
            f"{len(id_array)} ids were given for {len(x)} vectors; expected one id per "
            "vector row, in the same order"
        )
    if normalize:
        x = normalise(x, ids=id_array, name=name)
    else:
        check_unit_norm(x, ids=id_array, name=name)
    return id_array, x


def _frame_bytes(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else int(frame.memory_usage(index=False, deep=True).sum())


def _check_k(k: Any, count: int) -> int:
    if not Interval(int, 1, None).contains(k):
        raise VectorInputError(f"k must be a positive int; got {k!r}")
    if k > count:
        raise VectorInputError(
            f"k={k} is larger than the {count} indexed vectors; expected k <= {count}. "
            f"Fix: ask for at most {count} neighbours"
        )
    return int(k)


def _check_metadata(metadata: pd.DataFrame | None, count: int) -> pd.DataFrame | None:
    if metadata is None:
        return None
    if not isinstance(metadata, pd.DataFrame):
        raise VectorInputError(
            f"metadata must be a pandas DataFrame; got {type(metadata).__name__}"
        )
    if len(metadata) != count:
        raise VectorInputError(
            f"metadata has {len(metadata)} rows but there are {count} vectors; expected one "
            "row per vector, in the same order. Fix: align the table to the ids first"
        )
    return metadata.reset_index(drop=True)


def _disable(show: bool | None) -> bool | None:
    """tqdm's ``disable``: None lets tqdm show the bar only on a terminal."""
    return None if show is None else not show
