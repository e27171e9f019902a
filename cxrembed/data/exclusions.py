"""Rows left out, and why: one record type and one file schema for every command.

``cxr prepare`` (the cache), ``cxr train`` (the run), ``cxr embed`` (the embeddings folder)
and ``cxr evaluate`` each write an ``excluded.csv`` with the columns
:data:`EXCLUDED_COLUMNS`: ``row`` is the 0-based position in the input table (blank when the
input is not a table, e.g. an images folder), ``id`` and ``path`` what is known of the row,
``kind`` a short code for counting (``missing``, ``corrupt``, ``duplicate-id``...) and
``reason`` the detail. Every input row is used or listed here exactly once.

Examples
--------
>>> frame = excluded_frame([exclusion(3, "b", "b.png", "missing", "image file not found"),
...                         exclusion(None, "a", None, "no-label-row", "no row in the table")])
>>> frame[["row", "id", "kind"]].values.tolist()
[[3, 'b', 'missing'], [<NA>, 'a', 'no-label-row']]
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cxrlabel.atomic import atomic_path

__all__ = [
    "EXCLUDED_FILE",
    "EXCLUDED_COLUMNS",
    "Exclusion",
    "exclusion",
    "excluded_frame",
    "write_excluded",
    "reasons",
    "CountsExcluded",
]

#: The file every output folder lists its left-out rows in.
EXCLUDED_FILE = "excluded.csv"
#: Columns of every ``excluded`` table.
EXCLUDED_COLUMNS: list[str] = ["row", "id", "path", "kind", "reason"]


@dataclass(frozen=True)
class Exclusion(Mapping[str, Any]):
    """One row left out: where it was, what it was, and why (see the module docstring).

    Also a read-only mapping of :data:`EXCLUDED_COLUMNS` (``record["row"]``), as the
    records were plain dicts before.

    Examples
    --------
    >>> record = exclusion(-1, "a", None, "missing", "image file not found")
    >>> record.row, record["kind"], dict(record)["id"]
    (None, 'missing', 'a')
    """

    row: int | None
    id: str | None
    path: str | None
    kind: str
    reason: str

    def __post_init__(self) -> None:
        # -1 (or None) means "not a table row"; paths are kept as text.
        row = None if self.row is None or pd.isna(self.row) or int(self.row) < 0 else int(self.row)
        object.__setattr__(self, "row", row)
        for name in ("id", "path"):  # a blank read back from a table is None, not "nan"
            value = getattr(self, name)
            if value is not None and not isinstance(value, str) and pd.isna(value):
                object.__setattr__(self, name, None)
        if self.path is not None:
            object.__setattr__(self, "path", str(self.path))

    def __getitem__(self, key: str) -> Any:
        if key not in EXCLUDED_COLUMNS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(EXCLUDED_COLUMNS)

    def __len__(self) -> int:
        return len(EXCLUDED_COLUMNS)


def exclusion(row: int | None, row_id: str | None, path: Any, kind: str, reason: str) -> Exclusion:
    """One :class:`Exclusion` (``row`` -1 or None: not a table row)."""
    return Exclusion(row, row_id, path, kind, reason)


def excluded_frame(
    records: Iterable[Exclusion | Mapping[str, Any]] | pd.DataFrame,
) -> pd.DataFrame:
    """Exclusions as a DataFrame with :data:`EXCLUDED_COLUMNS`, sorted by row (blank last).

    ``row`` is a nullable integer column (blank for rows that are not table rows).
    """
    if isinstance(records, pd.DataFrame):
        frame = records.reindex(columns=EXCLUDED_COLUMNS)
    else:
        rows = [
            asdict(r)
            if isinstance(r, Exclusion)
            else asdict(Exclusion(**{c: r.get(c) for c in EXCLUDED_COLUMNS}))
            for r in records
        ]
        frame = pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)
    row = pd.to_numeric(frame["row"], errors="coerce")
    frame["row"] = row.mask(row < 0).astype("Int64")
    return frame.sort_values("row", kind="stable", na_position="last").reset_index(drop=True)


def write_excluded(
    folder: str | os.PathLike[str],
    records: Iterable[Exclusion | Mapping[str, Any]] | pd.DataFrame,
) -> pd.DataFrame:
    """Write ``folder/excluded.csv`` atomically (the folder is created); return the frame."""
    frame = excluded_frame(records)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / EXCLUDED_FILE) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def reasons(frame: pd.DataFrame) -> dict[str, int]:
    """Excluded rows by kind (``missing``, ``corrupt``...), most frequent first.

    Examples
    --------
    >>> reasons(excluded_frame([exclusion(1, "a", None, "missing", "gone"),
    ...                         exclusion(2, "b", None, "corrupt", "cut"),
    ...                         exclusion(3, "c", None, "missing", "gone")]))
    {'missing': 2, 'corrupt': 1}
    """
    return dict(Counter(frame["kind"].tolist()).most_common())


class CountsExcluded:
    """Mixin for run summaries with an ``excluded`` frame: :attr:`reasons` counts it."""

    excluded: pd.DataFrame

    @property
    def reasons(self) -> dict[str, int]:
        """Excluded rows by kind (``missing``, ``corrupt``...), most frequent first."""
        return reasons(self.excluded)
