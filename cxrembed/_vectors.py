"""Checks for embedding vectors and their ids, shared by the index and the metrics.

Vectors enter cxrembed here: as a float32, C-contiguous N x D array with finite values. A bad
row is reported by position and id, with the count of such rows, so nothing is dropped
silently and the user knows what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cxrembed.errors import VectorInputError

__all__ = ["as_vectors", "as_ids", "check_unit_norm", "normalise", "describe_row"]

#: Largest allowed deviation of a vector's L2 norm from 1.
UNIT_NORM_TOLERANCE = 1e-3


def describe_row(row: int, ids: np.ndarray | None) -> str:
    """``row 3 (id 'a.png')``: how error messages name a row."""
    if ids is None:
        return f"row {row}"
    return f"row {row} (id {ids[row].item()!r})"


def as_vectors(
    values: Any, *, name: str = "vectors", ids: np.ndarray | None = None, error: type = VectorInputError
) -> np.ndarray:
    """Return ``values`` as a finite float32 C-contiguous N x D array, or raise ``error``.

    Examples
    --------
    >>> as_vectors([[1, 0], [0, 1]]).dtype
    dtype('float32')
    """
    if hasattr(values, "detach"):  # a torch tensor, possibly on GPU or requiring grad
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{name} must be a numeric N x D array; could not convert it ({exc}). "
            "Fix: pass a numpy array or a CPU tensor of floats"
        ) from exc
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise error(
            f"{name} must be a non-empty 2-D array (N rows x D dimensions); got shape "
            f"{array.shape}. Fix: stack one vector per row (use reshape(1, -1) for one vector)"
        )
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise error(
            f"{name} {describe_row(int(rows[0]), ids)} contains NaN or infinite values "
            f"({len(rows)} such rows in all); expected finite floats. Fix: re-create those "
            "embeddings (a NaN usually means a diverged model or an unreadable image) or drop "
            "the rows together with their ids"
        )
    return np.ascontiguousarray(array)


def as_ids(ids: Sequence[Any] | np.ndarray, *, source: str = "ids") -> np.ndarray:
    """Return ``ids`` as a 1-D array of unique str or int ids (one per vector).

    Examples
    --------
    >>> as_ids(["a", "b"]).tolist()
    ['a', 'b']
    """
    if not isinstance(ids, np.ndarray):
        ids = _typed(list(ids), source)
    array = np.asarray(ids)
    if array.ndim != 1:
        raise VectorInputError(f"{source} must be 1-D (one id per vector); got shape {array.shape}")
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind == "O":
        array = _typed(array.tolist(), source)
    elif array.dtype.kind != "U":
        raise VectorInputError(
            f"{source} must all be strings or all integers; got an array of dtype {array.dtype}. "
            "Fix: convert the ids to str"
        )
    values, counts = np.unique(array, return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1]
        again = int(np.flatnonzero(array == dup[0])[1])
        raise VectorInputError(
            f"{source} must be unique; {len(dup)} ids are repeated, e.g. {dup[0].item()!r} "
            f"again at row {again}. Fix: de-duplicate the table before embedding (one row "
            "per image)"
        )
    return array


def _typed(values: list[Any], source: str) -> np.ndarray:
    """A str or int64 array from Python values, refusing mixed or other types (numpy would
    silently turn ``[1, "a"]`` into ``["1", "a"]``)."""
    kinds = {"str" if isinstance(v, str) else
             "int" if isinstance(v, int | np.integer) and not isinstance(v, bool) else
             type(v).__name__ for v in values}
    if len(kinds) > 1 or not kinds <= {"str", "int"}:
        raise VectorInputError(
            f"{source} must all be strings or all integers; found types {sorted(kinds)}. "
            "Fix: convert the ids to str"
        )
    if kinds == {"int"}:
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=str)


def check_unit_norm(
    vectors: np.ndarray, *, name: str = "vectors", ids: np.ndarray | None = None
) -> None:
    """Raise unless every row has L2 norm 1 (inner product = cosine similarity)."""
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.abs(norms - 1.0) > UNIT_NORM_TOLERANCE
    if bad.any():
        rows = np.flatnonzero(bad)
        raise VectorInputError(
            f"{name} must be L2-normalised (norm 1, so inner product = cosine); "
            f"{describe_row(int(rows[0]), ids)} has norm {norms[rows[0]]:.4g} ({len(rows)} such "
            "rows). Fix: pass normalize=True, or divide each vector by its norm"
        )


def normalise(
    vectors: np.ndarray, *, name: str = "vectors", ids: np.ndarray | None = None,
    error: type = VectorInputError,
) -> np.ndarray:
    """Divide each row by its L2 norm; a zero row has no direction and is an error."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        rows = np.flatnonzero(zero)
        raise error(
            f"{name} {describe_row(int(rows[0]), ids)} is all zeros ({len(rows)} such rows); "
            "a zero vector has no direction, so cosine similarity is undefined. Fix: re-create "
            "those embeddings or drop them"
        )
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
