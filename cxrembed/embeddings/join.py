"""Join embeddings with a table (labels, clinical columns) by id, listing what does not match.

Ids are compared as text (a table id ``00012`` stays ``00012``; a float ``12.0`` read from a
CSV becomes ``12``). Nothing is dropped silently: table rows without an embedding and
embeddings without a table row are listed in :attr:`IdJoin.missing` (columns ``id``,
``row``, ``side``, ``reason``), counted in :meth:`IdJoin.summary` and written by
:meth:`IdJoin.write_missing`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cxrembed._vectors import check_table_ids
from cxrembed.data.table import row_ids, table_source
from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.errors import IdJoinError
from cxrlabel.atomic import atomic_open

__all__ = ["IdJoin", "join_embeddings", "MISSING_COLUMNS"]

#: Columns of :attr:`IdJoin.missing`.
MISSING_COLUMNS: list[str] = ["id", "row", "side", "reason"]
_NO_EMBEDDING = "table row without an embedding"
_NO_ROW = "embedding without a table row"


@dataclass(frozen=True)
class IdJoin:
    """Table rows matched to embedding rows, in table order.

    Attributes
    ----------
    ids : list of str
        The matched ids.
    rows : numpy.ndarray
        int64 positions of the matched rows in the table.
    vector_rows : numpy.ndarray
        int64 positions of their vectors in the embeddings.
    missing : pandas.DataFrame
        Unmatched ids, with :data:`MISSING_COLUMNS`; ``side`` is ``table`` (a table row with
        no embedding; ``row`` is its table position) or ``embeddings`` (a vector with no
        table row; ``row`` is its embedding position).
    """

    ids: list[str]
    rows: np.ndarray
    vector_rows: np.ndarray
    missing: pd.DataFrame

    def summary(self) -> dict[str, int]:
        """Counts: matched, table rows without an embedding, embeddings without a row."""
        side = self.missing["side"]
        return {
            "matched": len(self.ids),
            "table_without_embedding": int((side == "table").sum()),
            "embeddings_without_row": int((side == "embeddings").sum()),
        }

    def write_missing(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`missing` as CSV (atomically) and return the path."""
        with atomic_open(path) as fh:
            self.missing.to_csv(fh, index=False)
        return Path(path)


def join_embeddings(
    embeddings: EmbeddingSet,
    table: pd.DataFrame,
    id_col: str,
    *,
    missing: Literal["exclude", "error"] = "exclude",
) -> IdJoin:
    """Match each table row to the embedding with the same id.

    Parameters
    ----------
    embeddings : EmbeddingSet
    table : pandas.DataFrame
        Read with :func:`cxrembed.data.table.read_table` so errors name its file.
    id_col : str
        The table's id column, holding the ids the embeddings were written with.
    missing : {"exclude", "error"}
        Table rows without an embedding: listed and left out, or an error.

    Returns
    -------
    IdJoin

    Examples
    --------
    >>> emb = EmbeddingSet(["a", "b", "c"], np.eye(3, dtype=np.float32))
    >>> j = join_embeddings(emb, pd.DataFrame({"id": ["c", "x", "a"]}), "id")
    >>> j.ids, j.vector_rows.tolist(), j.summary()
    (['c', 'a'], [2, 0], {'matched': 2, 'table_without_embedding': 1, 'embeddings_without_row': 1})
    """
    source = table_source(table)
    if missing not in ("exclude", "error"):
        raise IdJoinError(f"missing must be 'exclude' or 'error'; got {missing!r}")
    if id_col not in table.columns:
        raise IdJoinError(
            f"{source} has no id column {id_col!r}; found columns {list(table.columns)}. Fix: "
            "name the column holding the image ids (--id-col)"
        )
    table_ids = row_ids(table, image_col=None, id_col=id_col)
    check_table_ids(table_ids, column=f"{source} column {id_col!r}", error=IdJoinError)
    position = {name: i for i, name in enumerate(embeddings.ids)}
    rows = [r for r, name in enumerate(table_ids) if name in position]
    absent = [r for r, name in enumerate(table_ids) if name not in position]
    if not rows:
        raise IdJoinError(
            f"no id of {source} column {id_col!r} matches an embedding id: table ids look like "
            f"{_examples([str(i) for i in table_ids])}, embedding ids like "
            f"{_examples(embeddings.ids)}. Fix: choose the id column that holds the ids the "
            "images were embedded with"
        )
    if absent and missing == "error":
        raise IdJoinError(
            f"{len(absent)} rows of {source} have no embedding, e.g. id {table_ids[absent[0]]!r} "
            f"(row {absent[0]}). Fix: embed those images, or leave them out (they are listed "
            "in the missing-ids file)"
        )
    in_table = set(table_ids)
    records = [(table_ids[r], r, "table", _NO_EMBEDDING) for r in absent]
    records += [
        (name, i, "embeddings", _NO_ROW)
        for i, name in enumerate(embeddings.ids)
        if name not in in_table
    ]
    frame = pd.DataFrame(records, columns=MISSING_COLUMNS)
    return IdJoin(
        ids=[str(table_ids[r]) for r in rows],
        rows=np.asarray(rows, dtype=np.int64),
        vector_rows=np.asarray([position[table_ids[r]] for r in rows], dtype=np.int64),
        missing=frame,
    )


def _examples(ids: Sequence[str], n: int = 2) -> str:
    return ", ".join(repr(i) for i in list(ids)[:n]) or "(none)"
