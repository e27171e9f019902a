"""The full vectors of a compressed index, and the exact re-scoring of a shortlist.

IVF-PQ ranks by approximate scores; re-ranking asks it for ``k * rerank_factor`` rows per
query, scores those exactly against the full vectors and keeps the best ``k``.
:class:`ExactVectors` holds the full vectors either in RAM, inside a FAISS flat index (its
C++ ``compute_distance_subset`` scores a shortlist about five times faster than gathering
the rows in numpy), or memory-mapped from ``vectors.npy`` (nothing read until a row is
needed; the operating system keeps the pages it has room for). Vectors added to a mapped
store stay in RAM next to it, so adding never reads the whole file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from cxrembed._deps import require

faiss = require("faiss")

__all__ = ["ExactVectors", "rerank", "RERANK_CHUNK"]

#: Queries re-scored at once (bounds the gathered rows to RERANK_CHUNK * shortlist length).
RERANK_CHUNK = 1024
_ADD_CHUNK = 100_000


class ExactVectors:
    """Full float32 vectors in index order: in RAM (a FAISS flat index) or memory-mapped.

    Build with :meth:`in_memory` or :meth:`mapped`.

    Examples
    --------
    >>> store = ExactVectors.in_memory(np.eye(3, dtype=np.float32))
    >>> store.scores(np.eye(3, dtype=np.float32)[:1], np.array([[2, 0]])).tolist()
    [[0.0, 1.0]]
    """

    def __init__(
        self, flat: Any = None, mapped: np.ndarray | None = None, tail: np.ndarray | None = None
    ) -> None:
        self._flat = flat
        self._mapped = mapped
        self._tail = tail

    @classmethod
    def in_memory(cls, vectors: np.ndarray, rows: np.ndarray | None = None) -> ExactVectors:
        """Copy ``vectors`` (or ``vectors[rows]``; an array or a memory map, read in chunks)
        into RAM."""
        flat = faiss.IndexFlatIP(vectors.shape[1])
        count = len(vectors) if rows is None else len(rows)
        for s in range(0, count, _ADD_CHUNK):
            chunk = (
                vectors[s : s + _ADD_CHUNK] if rows is None else vectors[rows[s : s + _ADD_CHUNK]]
            )
            flat.add(np.ascontiguousarray(chunk, dtype=np.float32))
        return cls(flat=flat)

    @classmethod
    def mapped(cls, vectors: np.ndarray) -> ExactVectors:
        """Use a memory-mapped ``(N, D)`` float32 array as it is."""
        return cls(mapped=vectors)

    @property
    def flat(self) -> Any:
        """The FAISS flat index holding the vectors in RAM (None when memory-mapped)."""
        return self._flat

    @property
    def is_mapped(self) -> bool:
        """Whether the vectors are read from a memory-mapped file."""
        return self._mapped is not None

    @property
    def shape(self) -> tuple[int, int]:
        if self._flat is not None:
            return int(self._flat.ntotal), int(self._flat.d)
        tail = 0 if self._tail is None else len(self._tail)
        return len(self._mapped) + tail, int(self._mapped.shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held in RAM (a mapped file counts only its added tail)."""
        if self._flat is not None:
            return self.shape[0] * self.shape[1] * 4
        return 0 if self._tail is None else int(self._tail.nbytes)

    def extend(self, vectors: np.ndarray) -> None:
        """Append rows (in RAM; a mapped file is left as it is)."""
        if self._flat is not None:
            self._flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
        else:
            self._tail = (
                vectors.copy() if self._tail is None else np.concatenate([self._tail, vectors])
            )

    def scores(self, batch: np.ndarray, shortlist: np.ndarray) -> np.ndarray:
        """Exact inner products of each query with the rows of its shortlist, ``(B, L)``."""
        if self._flat is not None:
            out = np.empty(shortlist.shape, dtype=np.float32)
            rows = np.ascontiguousarray(shortlist, dtype=np.int64)
            self._flat.compute_distance_subset(
                len(batch),
                faiss.swig_ptr(batch),
                shortlist.shape[1],
                faiss.swig_ptr(out),
                faiss.swig_ptr(rows),
            )
            return out
        vectors = self._rows(shortlist.ravel()).reshape(*shortlist.shape, -1)
        return np.matmul(vectors, batch[:, :, None])[:, :, 0]

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        unique, where = np.unique(rows, return_inverse=True)  # the file read once, in order
        base = len(self._mapped)
        out = np.empty((len(unique), self._mapped.shape[1]), dtype=np.float32)
        inside = unique < base
        out[inside] = self._mapped[unique[inside]]
        if not inside.all():
            out[~inside] = self._tail[unique[~inside] - base]
        return out[where]

    def save(self, file: str | os.PathLike[str]) -> None:
        """Write the vectors as a ``.npy`` file (streamed; nothing copied whole)."""
        rows, dim = self.shape
        out = np.lib.format.open_memmap(file, mode="w+", dtype=np.float32, shape=(rows, dim))
        if self._flat is not None:
            out[:] = faiss.rev_swig_ptr(self._flat.get_xb(), rows * dim).reshape(rows, dim)
        else:
            for s in range(0, len(self._mapped), _ADD_CHUNK):
                chunk = self._mapped[s : s + _ADD_CHUNK]
                out[s : s + len(chunk)] = chunk
            if self._tail is not None:
                out[len(self._mapped) :] = self._tail
        out.flush()
        del out


def rerank(
    batch: np.ndarray, shortlist: np.ndarray, k: int, vectors: ExactVectors
) -> tuple[np.ndarray, np.ndarray]:
    """Exact scores of each query's shortlist; the best ``k`` rows, best first.

    Shortlist rows of -1 (fewer hits than asked) rank last.

    Examples
    --------
    >>> x = ExactVectors.in_memory(np.eye(4, dtype=np.float32))
    >>> scores, rows = rerank(np.eye(4, dtype=np.float32)[:1], np.array([[3, 0, 2]]), 2, x)
    >>> rows.tolist(), scores.tolist()
    ([[0, 3]], [[1.0, 0.0]])
    """
    scores = np.empty((len(batch), k), dtype=np.float32)
    rows = np.empty((len(batch), k), dtype=np.int64)
    for s in range(0, len(batch), RERANK_CHUNK):
        part = shortlist[s : s + RERANK_CHUNK]
        exact = vectors.scores(
            np.ascontiguousarray(batch[s : s + RERANK_CHUNK]), np.maximum(part, 0)
        )
        exact[part < 0] = -np.inf
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        scores[s : s + len(part)] = np.take_along_axis(exact, best, axis=1)
        rows[s : s + len(part)] = np.take_along_axis(part, best, axis=1)
    return scores, rows
