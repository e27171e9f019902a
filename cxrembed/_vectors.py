"""Checks for embedding vectors and their ids: the one place they are validated.

Vectors enter cxrembed here: as a float32, C-contiguous N x D array with finite values. A bad
row is reported by position and id, with the count of such rows, so nothing is dropped
silently and the user knows what to fix. Ids come in three forms, each checked here: the ids
of an index or a metric (unique str or int, :func:`as_ids`), the text ids of an embeddings
file (:func:`text_ids`), and the id column of a table (:func:`check_table_ids`). Every check
takes the error class of its caller (embeddings files, index, evaluation, joins).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from cxrembed.errors import VectorInputError

__all__ = [
    "as_vectors",
    "nonfinite_rows",
    "as_ids",
    "text_ids",
    "check_table_ids",
    "first_repeat",
    "check_unit_norm",
    "normalise",
    "describe_row",
]

#: Largest allowed deviation of a vector's L2 norm from 1.
UNIT_NORM_TOLERANCE = 1e-3


def describe_row(row: int, ids: np.ndarray | None) -> str:
    """``row 3 (id 'a.png')``: how error messages name a row."""
    if ids is None:
        return f"row {row}"
    return f"row {row} (id {ids[row].item()!r})"


def as_vectors(
    values: Any,
    *,
    name: str = "vectors",
    ids: np.ndarray | None = None,
    error: type = VectorInputError,
    allow_empty: bool = False,
    finite: bool = True,
) -> np.ndarray:
    """Return ``values`` as a float32 C-contiguous N x D array (finite unless ``finite=False``),
    or raise ``error``. ``allow_empty`` accepts N = 0 (an embeddings file may be empty).

    Examples
    --------
    >>> as_vectors([[1, 0], [0, 1]]).dtype
    dtype('float32')
    >>> as_vectors([[1.0, float("nan")]])
    Traceback (most recent call last):
    ...
    cxrembed.errors.VectorInputError: vectors row 0 contains NaN or infinite values (1 such rows in all); expected finite floats. ...
    """
    if hasattr(values, "detach"):  # a torch tensor, possibly on GPU or requiring grad
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise error(
            f"{name} must be a numeric N x D array; could not convert it ({exc}). "
            "Fix: pass a numpy array or a CPU tensor of floats"
        ) from None
    if array.ndim != 2 or array.shape[1] == 0 or (array.shape[0] == 0 and not allow_empty):
        what = (
            "a 2-D array (N rows x D dimensions, D >= 1)"
            if allow_empty
            else "a non-empty 2-D array (N rows x D dimensions)"
        )
        raise error(
            f"{name} must be {what}; got shape {array.shape}. Fix: stack one vector per row "
            "(use reshape(1, -1) for one vector)"
        )
    rows = nonfinite_rows(array) if finite else ()
    if len(rows):
        raise error(
            f"{name} {describe_row(int(rows[0]), ids)} contains NaN or infinite values "
            f"({len(rows)} such rows in all); expected finite floats. Fix: re-create those "
            "embeddings (a NaN usually means a diverged model or an unreadable image) or drop "
            "the rows together with their ids"
        )
    return np.ascontiguousarray(array)


def nonfinite_rows(array: np.ndarray) -> np.ndarray:
    """Positions of the rows holding NaN or infinite values."""
    return np.flatnonzero(~np.isfinite(array).all(axis=1))


def as_ids(
    ids: Sequence[Any] | np.ndarray, *, source: str = "ids", error: type = VectorInputError
) -> np.ndarray:
    """Return ``ids`` as a 1-D array of unique str or int ids (one per vector).

    Examples
    --------
    >>> as_ids(["a", "b"]).tolist()
    ['a', 'b']
    """
    if not isinstance(ids, np.ndarray):
        ids = _typed(list(ids), source, error)
    array = np.asarray(ids)
    if array.ndim != 1:
        raise error(f"{source} must be 1-D (one id per vector); got shape {array.shape}")
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind == "O":
        array = _typed(array.tolist(), source, error)
    elif array.dtype.kind != "U":
        raise error(
            f"{source} must all be strings or all integers; got an array of dtype {array.dtype}. "
            "Fix: convert the ids to str"
        )
    # np.unique first: a million distinct ids need no Python loop.
    repeat = first_repeat(array.tolist()) if len(np.unique(array)) < len(array) else None
    if repeat is not None:
        value, _, again, count = repeat
        raise error(
            f"{source} must be unique; {count} ids are repeated, e.g. {value!r} "
            f"again at row {again}. Fix: de-duplicate the table before embedding (one row "
            "per image)"
        )
    return array


def text_ids(values: Iterable[Any], source: str, error: type = VectorInputError) -> list[str]:
    """The ids of an embeddings file: non-blank one-line text (ints become text), unique.

    Examples
    --------
    >>> text_ids(["a", 7], "emb")
    ['a', '7']
    >>> text_ids(["a", "b", "a"], "emb")
    Traceback (most recent call last):
    ...
    cxrembed.errors.VectorInputError: emb: id 'a' appears at rows 0 and 2 (1 repeated ids in all); ...
    """
    ids: list[str] = []
    for row, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int | np.integer):
            raise error(
                f"{source}: id at row {row} is {value!r} ({type(value).__name__}); expected a "
                "string (or int). Fix: give every vector a text id"
            )
        text = str(value)
        if not text.strip() or "\n" in text or "\r" in text:
            raise error(
                f"{source}: id at row {row} is {text!r}; expected a non-blank id on one line"
            )
        ids.append(text)
    repeat = first_repeat(ids)
    if repeat is not None:
        value, first, again, count = repeat
        raise error(
            f"{source}: id {value!r} appears at rows {first} and {again} ({count} repeated "
            "ids in all); expected one vector per id. Fix: de-duplicate before embedding"
        )
    return ids


def check_table_ids(
    values: Sequence[str | None],
    *,
    column: str,
    error: type,
    repeated: str = "holds",
    allow_blank: bool = False,
) -> list[str | None]:
    """Check a table's id column (None = blank): an id on every row, one row per id.

    ``column`` names the column in messages (``"labels.csv column 'id'"``); ``repeated`` is
    the verb before a repeated value (``holds 'a' on rows 0 and 2``, ``has id 'a' ...``).
    ``allow_blank`` lets blank rows through (they match nothing). Returns ``values``.

    Examples
    --------
    >>> check_table_ids(["a", None], column="t.csv column 'id'", error=ValueError)
    Traceback (most recent call last):
    ...
    ValueError: t.csv column 'id' is blank at row 1 (1 such rows); expected an id on every row. Fix: fill or drop those rows
    """
    blank = [r for r, v in enumerate(values) if v is None]
    if blank and not allow_blank:
        raise error(
            f"{column} is blank at row {blank[0]} ({len(blank)} such rows); expected an id "
            "on every row. Fix: fill or drop those rows"
        )
    repeat = first_repeat(
        [v for v in values if v is not None], [r for r, v in enumerate(values) if v is not None]
    )
    if repeat is not None:
        value, first, again, _ = repeat
        raise error(
            f"{column} {repeated} {value!r} on rows {first} and {again}; expected one row per "
            "image. Fix: de-duplicate the table or choose an image-level id"
        )
    return list(values)


def first_repeat(
    values: Sequence[Hashable], rows: Sequence[int] | None = None
) -> tuple[Any, int, int, int] | None:
    """``(value, its first row, the row it comes again, number of repeated values)`` for the
    first value seen twice, or None when all are distinct. ``rows`` relabels the positions.

    Examples
    --------
    >>> first_repeat(["a", "b", "b", "a"])
    ('b', 1, 2, 2)
    """
    seen: dict[Any, int] = {}
    for position, value in enumerate(values):
        if value in seen:
            count = len(values) - len(set(values))
            label = (lambda i: i) if rows is None else rows.__getitem__
            return value, label(seen[value]), label(position), count
        seen[value] = position
    return None


def _typed(values: list[Any], source: str, error: type) -> np.ndarray:
    """A str or int64 array from Python values, refusing mixed or other types (numpy would
    silently turn ``[1, "a"]`` into ``["1", "a"]``)."""
    kinds = {
        "str"
        if isinstance(v, str)
        else "int"
        if isinstance(v, int | np.integer) and not isinstance(v, bool)
        else type(v).__name__
        for v in values
    }
    if len(kinds) > 1 or not kinds <= {"str", "int"}:
        raise error(
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
    vectors: np.ndarray,
    *,
    name: str = "vectors",
    ids: np.ndarray | None = None,
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
