"""Leave vectors out of a query's neighbours (its own id, its own group) and refill to ``k``.

A query's excluded vectors are known before searching: given ids, and every vector whose
group (a metadata column such as a patient id) equals the query's group. So each query is
searched ``k + excluded`` deep (rounded up to a power of two, so a batch makes a few FAISS
calls) and its first ``k`` vectors that are not excluded are kept: every list is full, in
the order of the search, and nothing is searched twice.

Groups are compared as text, so ``123``, ``123.0`` and ``"123"`` are the same patient; a
blank group (None, NaN, "") excludes nothing.

Examples
--------
>>> codes, names = code_groups(["p1", "p1", "p2", None])
>>> rule = Exclusion.build([None, [3]], codes=codes, query_codes=query_codes(names, ["p1", "p3"]))
>>> rule.counts.tolist()
[2, 1]
>>> rule.banned(np.array([0, 1]), np.array([[1, 2], [3, 2]])).tolist()
[[True, False], [True, False]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.errors import VectorInputError

__all__ = [
    "Exclusion",
    "group_key",
    "code_groups",
    "query_codes",
    "exclusion_rule",
    "search_excluding",
    "check_fill",
]


def group_key(value: Any) -> str | None:
    """The text a group value is compared by (None: no group).

    Examples
    --------
    >>> group_key(123.0), group_key(" p7 "), group_key(float("nan"))
    ('123', 'p7', None)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def code_groups(values: Sequence[Any]) -> tuple[np.ndarray, pd.Index]:
    """One int code per value (-1: no group) and the group names the codes index."""
    codes, names = pd.factorize(
        pd.Series([group_key(v) for v in values], dtype=object), use_na_sentinel=True
    )
    return np.asarray(codes, dtype=np.int64), pd.Index(names)


def query_codes(names: pd.Index, groups: Sequence[Any]) -> np.ndarray:
    """The code of each query's group among ``names`` (-1: blank or no such group)."""
    keys = pd.Index([group_key(v) for v in groups], dtype=object)
    return np.asarray(names.get_indexer(keys), dtype=np.int64).reshape(len(keys))


class Exclusion:
    """Which indexed rows each query must skip.

    Build with :meth:`build`; ``counts[i]`` is the exact number of rows query ``i`` skips.
    """

    def __init__(
        self,
        counts: np.ndarray,
        rows: list[np.ndarray] | None,
        codes: np.ndarray | None,
        queries: np.ndarray | None,
    ) -> None:
        self.counts = counts
        self._rows = rows
        self._codes = codes
        self._queries = queries

    @classmethod
    def build(
        cls,
        rows: Sequence[Sequence[int] | np.ndarray | None],
        *,
        codes: np.ndarray | None = None,
        query_codes: np.ndarray | None = None,
    ) -> Exclusion:
        """``rows[i]``: index rows query ``i`` skips (or None); ``codes``: each indexed row's
        group code and ``query_codes`` each query's (see :func:`code_groups`)."""
        counts = np.zeros(len(rows), dtype=np.int64)
        if codes is not None and query_codes is not None:
            sizes = np.bincount(codes[codes >= 0], minlength=1)
            known = query_codes >= 0
            counts[known] = sizes[query_codes[known]]
        else:
            codes = query_codes = None
        kept: list[np.ndarray] | None = None
        if any(r is not None and len(r) for r in rows):
            kept = []
            for i, r in enumerate(rows):
                r = np.unique(np.asarray([] if r is None else r, dtype=np.int64))
                if query_codes is not None and query_codes[i] >= 0:
                    r = r[codes[r] != query_codes[i]]  # already counted with the group
                kept.append(r)
                counts[i] += len(r)
        return cls(counts, kept, codes, query_codes)

    def part(self, start: int, stop: int) -> Exclusion:
        """The rule for queries ``start:stop``."""
        return Exclusion(
            self.counts[start:stop],
            None if self._rows is None else self._rows[start:stop],
            self._codes,
            None if self._queries is None else self._queries[start:stop],
        )

    def banned(self, queries: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Boolean mask of ``found`` (rows found for ``queries``) that must be skipped."""
        mask = np.zeros(found.shape, dtype=bool)
        if self._queries is not None:
            mine = self._queries[queries][:, None]
            mask |= (self._codes[np.maximum(found, 0)] == mine) & (mine >= 0)
        if self._rows is not None:
            for line, query in enumerate(queries.tolist()):
                if len(self._rows[query]):
                    mask[line] |= np.isin(found[line], self._rows[query])
        return mask


def search_excluding(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    batch: np.ndarray,
    k: int,
    rule: Exclusion,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows of each query of ``batch`` that ``rule`` does not skip.

    ``search(queries, depth)`` returns ``depth`` complete rows per query; ``size`` is the
    number of indexed vectors. The caller checks first that ``size - rule.counts >= k``.
    """
    need = k + rule.counts
    depth = np.minimum(size, 2 ** np.ceil(np.log2(need)).astype(np.int64))
    scores = np.empty((len(batch), k), dtype=np.float32)
    rows = np.empty((len(batch), k), dtype=np.int64)
    for value in np.unique(depth).tolist():
        queries = np.flatnonzero(depth == value)
        found_scores, found = search(batch[queries], int(value))
        skip = rule.banned(queries, found) | (found < 0)
        first = np.argsort(skip, axis=1, kind="stable")[:, :k]  # kept rows, in search order
        scores[queries] = np.take_along_axis(found_scores, first, axis=1)
        rows[queries] = np.take_along_axis(found, first, axis=1)
    return scores, rows


def exclusion_rule(
    count: int,
    k: int,
    size: int,
    *,
    exclude_ids: Sequence[Any] | None,
    exclude_groups: Sequence[Any] | None,
    group_column: str | None,
    rows_of: Callable[[np.ndarray], np.ndarray],
    integer_ids: bool,
    group_codes: Callable[[str], tuple[np.ndarray, pd.Index]],
) -> Exclusion | None:
    """The rule of a search's ``exclude_*`` arguments, checked (None: nothing excluded).

    ``rows_of`` maps ids to index rows (-1: not indexed) and ``group_codes`` a metadata
    column to :func:`code_groups`; ``count`` queries, ``size`` indexed vectors.
    """
    if exclude_ids is None and exclude_groups is None and group_column is None:
        return None
    if (exclude_groups is None) != (group_column is None):
        raise VectorInputError(
            "exclude_groups (one group per query) and group_column (the metadata column of "
            "each vector's group) go together; give both or neither"
        )
    rows: list[np.ndarray | None] = [None] * count
    if exclude_ids is not None:
        rows = _excluded_rows(_per_query(exclude_ids, count, "exclude_ids"), rows_of, integer_ids)
    codes = mine = None
    if group_column is not None:
        codes, names = group_codes(group_column)
        mine = query_codes(names, _per_query(exclude_groups, count, "exclude_groups"))
    rule = Exclusion.build(rows, codes=codes, query_codes=mine)
    check_fill(rule, k, size, lambda q: f"row {q}")
    return rule


def _excluded_rows(
    entries: list[Any], rows_of: Callable[[np.ndarray], np.ndarray], integer: bool
) -> list[np.ndarray | None]:
    """Index rows of each query's ``exclude_ids`` entry (an id, a list of ids or None)."""
    owner: list[int] = []
    flat: list[Any] = []
    for i, entry in enumerate(entries):
        values = (
            []
            if entry is None
            else ([entry] if isinstance(entry, str | int | np.integer) else list(entry))
        )
        flat += values
        owner += [i] * len(values)
    wrong = [
        v
        for v in flat
        if (isinstance(v, int | np.integer) and not isinstance(v, bool)) != integer
        or not isinstance(v, str | int | np.integer)
    ]
    if wrong:
        raise VectorInputError(
            f"exclude_ids must hold {'int' if integer else 'str'} ids like the index's; got "
            f"{wrong[0]!r} ({type(wrong[0]).__name__}). Fix: convert the ids"
        )
    found = rows_of(np.asarray(flat, dtype=np.int64 if integer else str))
    rows: list[list[int]] = [[] for _ in entries]
    for i, row in zip(owner, found.tolist(), strict=True):
        if row >= 0:
            rows[i].append(row)
    return [np.asarray(r, dtype=np.int64) if r else None for r in rows]


def _per_query(values: Any, count: int, name: str) -> list[Any]:
    """``values`` as one entry per query; a mismatched length is refused."""
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise VectorInputError(
            f"{name} must be a sequence with one entry per query ({count}); got "
            f"{type(values).__name__}"
        )
    entries = list(values.tolist() if hasattr(values, "tolist") else values)
    if len(entries) != count:
        raise VectorInputError(
            f"{name} has {len(entries)} entries for {count} queries; expected one per query, "
            "in the same order"
        )
    return entries


def check_fill(rule: Exclusion, k: int, size: int, describe: Callable[[int], str]) -> None:
    """Refuse a query that leaves fewer than ``k`` vectors once its exclusions are skipped."""
    short = np.flatnonzero(size - rule.counts < k)
    if len(short):
        q = int(short[0])
        left = size - int(rule.counts[q])
        raise VectorInputError(
            f"query {describe(q)} excludes {int(rule.counts[q])} of the {size} indexed vectors, "
            f"leaving {left}, fewer than k={k} ({len(short)} such queries). Fix: ask for at "
            f"most {left} neighbours"
        )
