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

For approximate kinds, recall@10 against exact search is measured at build time on a
held-out sample of the collection (up to 1,000 vectors, added last, after tuning), stored in
``index.json`` and exposed as :attr:`VectorIndex.recall_at_10`. On data without cluster
structure (e.g. uniform random vectors) approximate search cannot reach high recall at low
cost: nprobe stops at ``nlist / 16`` (efSearch at 512) and a warning gives the recall
reached.

An index folder holds ``index.faiss``, ``ids.json``, ``meta.parquet`` (optional) and
``index.json`` (kind, parameters, dim, count, metric, config hash, recall, faiss version and
the byte size of each file, so a folder mixing two saves is detected). Every file is written
atomically and ``index.json`` last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cxrembed._deps import require
from cxrembed._vectors import as_ids, as_vectors, check_unit_norm, normalise
from cxrembed.errors import ConfigHashMismatchError, IndexFileError, VectorInputError
from cxrembed.search.index_build import (
    DEFAULT_TARGET_RECALL,
    EXACT_MAX_COUNT,
    KINDS,
    new_index,
    numpy_method,
    numpy_search,
    populate,
    resolve,
    search_params,
)
from cxrlabel.atomic import atomic_open, atomic_path

faiss = require("faiss")

__all__ = ["VectorIndex", "KINDS", "EXACT_MAX_COUNT", "DEFAULT_TARGET_RECALL"]

FORMAT_VERSION = 1

_FILES = ("index.faiss", "ids.json", "meta.parquet")


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
    ) -> None:
        self._index = index
        self._ids = ids
        self._info = dict(info)
        self._metadata = metadata

    # ----------------------------------------------------------------- properties
    @property
    def kind(self) -> str:
        """``"exact"``, ``"ivf"`` or ``"hnsw"``."""
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
    def recall_at_10(self) -> float | None:
        """Recall@10 vs exact search measured at build (``None`` for exact indexes)."""
        return self._info.get("recall_at_10")

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
        metadata: pd.DataFrame | None = None,
        params: Mapping[str, int] | None = None,
        normalize: bool = False,
        target_recall: float = DEFAULT_TARGET_RECALL,
        recall_sample: int = 1000,
        seed: int = 0,
        n_threads: int | None = None,
        progress: bool | None = None,
    ) -> VectorIndex:
        """Index ``vectors`` under ``ids``.

        Parameters
        ----------
        vectors : array-like, shape (N, D)
            Unit-norm float vectors (see ``normalize``).
        ids : sequence of str or int, length N
            Unique ids, returned by :meth:`search`.
        kind : {"auto", "exact", "ivf", "hnsw"}
            ``auto``: exact below :data:`EXACT_MAX_COUNT` vectors, else ``ivf``.
        config_hash : str, optional
            The producing run's config hash, stored so a search can refuse another run's index.
        metadata : pandas.DataFrame, optional
            Display columns, one row per vector in the same order.
        params : mapping, optional
            Override defaults: ivf ``nlist`` (default: the power of two nearest 2*sqrt(N)),
            ``nprobe`` (default: tuned), ``train_size`` (default 64*nlist); hnsw ``M`` (32),
            ``ef_construction`` (80), ``ef_search`` (default: tuned).
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

        Returns
        -------
        VectorIndex
        """
        start = time.perf_counter()
        id_array = as_ids(ids)
        x = as_vectors(vectors, ids=id_array)
        if len(x) != len(id_array):
            raise VectorInputError(
                f"{len(id_array)} ids were given for {len(x)} vectors; expected one id per "
                "vector row, in the same order"
            )
        if normalize:
            x = normalise(x, ids=id_array)
        else:
            check_unit_norm(x, ids=id_array)
        meta = _check_metadata(metadata, len(x))
        chosen, settings = resolve(kind, params, len(x))
        if not 0.0 < target_recall <= 1.0:
            raise VectorInputError(f"target_recall must be in (0, 1]; got {target_recall!r}")
        rng = np.random.default_rng(seed)
        with _threads(n_threads):
            index = new_index(chosen, settings, x, rng)
            order, recall, held = populate(index, chosen, settings, x, target=target_recall,
                                           sample=recall_sample, rng=rng, progress=progress)
        info = {
            "format": FORMAT_VERSION,
            "kind": chosen,
            "requested_kind": kind,
            "params": settings,
            "dim": int(x.shape[1]),
            "count": int(x.shape[0]),
            "metric": "inner_product",
            "config_hash": config_hash,
            "recall_at_10": recall,
            "recall_queries": None if recall is None else held,
            "target_recall": None if recall is None else target_recall,
            "build_seconds": round(time.perf_counter() - start, 3),
            "faiss_version": faiss.__version__,
            "id_type": "int" if id_array.dtype.kind == "i" else "str",
            "meta_columns": [] if meta is None else [str(c) for c in meta.columns],
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(index, id_array[order], info=info,
                   metadata=None if meta is None else meta.iloc[order].reset_index(drop=True))

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
        if batch_size < 1:
            raise VectorInputError(f"batch_size must be at least 1; got {batch_size}")
        scores = np.empty((len(q), k), dtype=np.float32)
        rows = np.empty((len(q), k), dtype=np.int64)
        starts = range(0, len(q), batch_size)
        show = None if progress is None and len(starts) > 1 else bool(progress)
        with _threads(n_threads):
            for s in tqdm(starts, desc="search", unit="batch", disable=_disable(show)):
                batch = q[s : s + batch_size]
                scores[s : s + len(batch)], rows[s : s + len(batch)] = self._search_rows(batch, k)
        return scores, self._ids[rows]

    def check_config_hash(self, expected: str | None, *, source: str = "the index") -> None:
        """Raise :class:`ConfigHashMismatchError` if ``expected`` is given and differs."""
        if expected is not None and self.config_hash != expected:
            raise ConfigHashMismatchError(
                f"{source} was built from run config {self.config_hash!r} but run config "
                f"{expected!r} was asked for; its vectors come from another model. Fix: rebuild "
                "the index with `cxr embed` for this run, or search with the run that built it"
            )

    def _search_rows(self, batch: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        params = search_params(self.kind, self._info["params"], k)
        scores, rows = numpy_search(self._index)(batch, k, params=params)
        missing = (rows < 0).any(axis=1)
        if missing.any():  # approximate search found fewer than k: search those exhaustively
            scores[missing], rows[missing] = numpy_method(faiss, "knn")(
                batch[missing], self._vectors(), k, metric=faiss.METRIC_INNER_PRODUCT
            )
        return scores, rows

    def _vectors(self) -> np.ndarray:
        if self.kind == "ivf":
            faiss.extract_index_ivf(self._index).make_direct_map()
        return numpy_method(self._index, "reconstruct_n")(0, len(self))

    # ----------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index folder (every file atomically, ``index.json`` last).

        A ``meta.parquet`` left from an earlier save without metadata is removed.
        """
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise IndexFileError(f"cannot save the index to {folder}: it is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self._index, str(tmp))
        with atomic_open(folder / "ids.json") as fh:
            json.dump(self._ids.tolist(), fh)
        if self._metadata is not None:
            with atomic_path(folder / "meta.parquet") as tmp:
                try:
                    self._metadata.to_parquet(tmp, index=False)
                except (ValueError, TypeError, ImportError) as exc:
                    raise IndexFileError(
                        f"cannot write the metadata columns to {folder / 'meta.parquet'}: {exc}. "
                        "Fix: give those columns one type each (e.g. convert them to str)"
                    ) from exc
        else:
            with contextlib.suppress(FileNotFoundError):
                (folder / "meta.parquet").unlink()
        info = dict(self._info)
        info["files"] = {
            name: (folder / name).stat().st_size if (folder / name).exists() else None
            for name in _FILES
        }
        with atomic_open(folder / "index.json") as fh:
            json.dump(info, fh, indent=2)
        return folder

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, config_hash: str | None = None
    ) -> VectorIndex:
        """Read an index folder written by :meth:`save`, checking that its files agree.

        Parameters
        ----------
        path : path-like
            The index folder.
        config_hash : str, optional
            Refuse (:class:`ConfigHashMismatchError`) an index built from another run.
        """
        folder = Path(path)
        info = _read_info(folder)
        for name, size in info["files"].items():
            file = folder / name
            if size is None:
                continue
            if not file.is_file():
                raise IndexFileError(
                    f"index folder {folder} lacks {name}, which index.json lists. Fix: rebuild "
                    "the index (cxr embed), or copy the whole folder"
                )
            if file.stat().st_size != size:
                raise IndexFileError(
                    f"{file} has {file.stat().st_size} bytes but index.json expects {size}: the "
                    "folder mixes files from two saves or a copy was cut short. Fix: rebuild the "
                    "index"
                )
        try:
            index = faiss.read_index(str(folder / "index.faiss"))
        except RuntimeError as exc:
            raise IndexFileError(f"cannot read {folder / 'index.faiss'}: {exc}") from exc
        ids = _read_ids(folder / "ids.json")
        meta = None
        if info["files"].get("meta.parquet") is not None:
            meta = pd.read_parquet(folder / "meta.parquet")
        count = int(info["count"])
        found = {"index.faiss vectors": index.ntotal, "ids.json ids": len(ids)}
        if meta is not None:
            found["meta.parquet rows"] = len(meta)
        wrong = {name: n for name, n in found.items() if n != count}
        if wrong or index.d != int(info["dim"]):
            raise IndexFileError(
                f"index folder {folder} is inconsistent: index.json says {count} vectors of "
                f"dimension {info['dim']}, found {found} and dimension {index.d}. Fix: rebuild "
                "the index"
            )
        loaded = cls(index, ids, info=info, metadata=meta)
        loaded.check_config_hash(config_hash, source=f"index {folder}")
        return loaded


# --------------------------------------------------------------------- helpers
def _check_k(k: Any, count: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
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


def _read_info(folder: Path) -> dict[str, Any]:
    file = folder / "index.json"
    if not folder.is_dir():
        raise IndexFileError(f"index folder {folder} does not exist. Fix: build it with cxr embed")
    if not file.is_file():
        raise IndexFileError(
            f"{folder} has no index.json, so it is not a complete index folder (a save may have "
            "been interrupted). Fix: rebuild the index"
        )
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"cannot parse {file}: {exc}") from exc
    required = ("format", "kind", "params", "dim", "count", "files")
    missing = [key for key in required if key not in info] if isinstance(info, dict) else required
    if missing:
        raise IndexFileError(f"{file} lacks the keys {list(missing)}; it was not written by cxrkit")
    if info["format"] != FORMAT_VERSION:
        raise IndexFileError(
            f"{file} has format {info['format']!r}; this cxrkit reads format {FORMAT_VERSION}. "
            "Fix: rebuild the index or use the cxrkit version that wrote it"
        )
    return info


def _read_ids(file: Path) -> np.ndarray:
    try:
        values = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"cannot parse {file}: {exc}") from exc
    if not isinstance(values, list):
        raise IndexFileError(f"{file} must hold a JSON list of ids; found {type(values).__name__}")
    try:
        return as_ids(values, source=str(file))
    except VectorInputError as exc:
        raise IndexFileError(str(exc)) from exc


@contextlib.contextmanager
def _threads(n_threads: int | None) -> Iterator[None]:
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


def _disable(show: bool | None) -> bool | None:
    """tqdm's ``disable``: None lets tqdm show the bar only on a terminal."""
    return None if show is None else not show
