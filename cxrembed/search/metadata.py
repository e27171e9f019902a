"""Join a metadata table to embedding ids: the columns shown next to each neighbour.

Join rule: an embedding id matches the table row whose id (``id_col``, else the
``image_col`` path) is the same text; failing that, the same path without its file
extension; failing that, the end of that path (embeddings of an images folder are named by
their path below that folder, without extension, while a table's paths may start higher
up). A name shared by several rows matches none of them. Embeddings without a metadata row
keep blank columns; they are counted and listed, never dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cxrembed._vectors import check_table_ids
from cxrlabel.errors import InputError

__all__ = ["join_metadata", "check_metadata_columns", "storable", "SEARCH_FLAGS", "EMBED_FLAGS"]

#: Option names in messages: the Python argument and the ``cxr search`` flag.
SEARCH_FLAGS = {
    "id_col": "id_col / --id-col",
    "image_col": "image_col / --image-col",
    "show_cols": "show / --show",
}
#: The same for ``cxr embed``, where the metadata table is ``--meta``.
EMBED_FLAGS = {
    "id_col": "meta_id_col / --meta-id-col",
    "image_col": "meta_image_col / --meta-image-col",
    "show_cols": "show_cols / --show",
}


def join_metadata(
    ids: Sequence[str],
    metadata: str | os.PathLike[str] | pd.DataFrame,
    *,
    id_col: str | None = None,
    image_col: str | None = None,
    show_cols: Sequence[str] | None = None,
    flags: dict[str, str] = SEARCH_FLAGS,
) -> tuple[pd.DataFrame, list[str]]:
    """Rows of ``metadata`` aligned with ``ids`` (blank where none); and the unmatched ids.

    ``flags`` names the options in error messages (:data:`SEARCH_FLAGS`,
    :data:`EMBED_FLAGS`).

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["a", "b"], "age": [60, 70]})
    >>> frame, missing = join_metadata(["b", "c"], t)
    >>> frame["age"].tolist(), missing
    ([70.0, nan], ['c'])
    """
    from cxrembed.data.table import read_table, row_ids, table_source

    table = read_table(metadata, text_columns=(id_col, image_col))
    source = table_source(table)
    id_col, image_col = check_metadata_columns(
        source, list(table.columns), id_col, image_col, show_cols, flags
    )
    keys = row_ids(table, image_col=image_col, id_col=id_col)
    key_cols = {c for c in (id_col, image_col) if c}
    wanted = list(show_cols) if show_cols else [c for c in table.columns if c not in key_cols]
    check_table_ids(
        keys,
        column=f"the metadata table {source} column {id_col or image_col!r}",
        error=InputError,
        repeated="has id",
        allow_blank=True,
    )
    levels: list[dict[str, int | None]] = [{}, {}, {}]  # exact, no extension, path tail
    for row, key in enumerate(keys):
        if key is None:
            continue
        levels[0][key] = row
        for level, name in ((1, _stem(key)), *((2, t) for t in _tails(_stem(key)))):
            # None marks a name shared by several rows: ambiguous, never matched.
            levels[level][name] = None if name in levels[level] else row
    rows = [_lookup(i, levels) for i in ids]
    unmatched = [i for i, r in zip(ids, rows, strict=True) if r is None]
    if ids and len(unmatched) == len(ids):
        raise InputError(
            f"no embedding id matches a row of the metadata table {source} (e.g. embedding "
            f"{ids[0]!r}, table id {next((k for k in keys if k), None)!r}); expected the "
            f"table's id column to hold the embedding ids. Fix: choose the id column "
            f"({flags['id_col']}, or {flags['image_col']})"
        )
    positions = np.array([-1 if r is None else r for r in rows], dtype=np.int64)
    picked = table[wanted].reset_index(drop=True)
    frame = picked.reindex(positions).reset_index(drop=True) if len(picked) else picked
    return frame, unmatched


def check_metadata_columns(
    source: object,
    columns: Sequence[str],
    id_col: str | None,
    image_col: str | None,
    show_cols: Sequence[str] | None,
    flags: dict[str, str] = SEARCH_FLAGS,
) -> tuple[str | None, str | None]:
    """The metadata table's key columns (default: its id column, found as
    :func:`cxrlabel.columns.find_id_column` does), checked with ``show_cols``; raises naming
    the option to fix."""
    from cxrlabel.columns import find_id_column, missing_column_message

    if id_col is None and image_col is None:
        id_col = find_id_column(columns)
        if id_col is None:
            raise InputError(
                f"name the id column of the metadata table {source} ({flags['id_col']}, or "
                f"{flags['image_col']}); found columns {list(columns)}"
            )
    for name, option in ((id_col, "id_col"), (image_col, "image_col")):
        if name is not None and name not in columns:
            raise InputError(missing_column_message(source, [name], columns, flags[option]))
    absent = [c for c in show_cols or () if c not in columns]
    if absent:
        raise InputError(
            f"the metadata table {source} has no column(s) {absent}; found columns "
            f"{list(columns)}. Fix the names given to {flags['show_cols']}"
        )
    return id_col, image_col


def _stem(key: str) -> str:
    return os.path.splitext(key.replace("\\", "/"))[0]


def _tails(path: str) -> list[str]:
    """``a/b/c`` -> ``["b/c", "c"]``: the path relative to each of its parent folders."""
    parts = path.split("/")
    return ["/".join(parts[i:]) for i in range(1, len(parts))]


def _lookup(image_id: str, levels: list[dict[str, int | None]]) -> int | None:
    for level in levels:
        if image_id in level:
            return level[image_id]
    return None


def storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of one type each (text for mixed object columns), so Parquet can store them."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if column.dtype == object or str(column.dtype).startswith("string"):
            out[name] = column.map(_text).astype("string")
    return out


def _text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return pd.NA
    return str(value)
