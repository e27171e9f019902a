"""Turn an embeddings folder into a searchable gallery: a vector index with display columns.

:func:`build_index` reads the embeddings (``cxr embed`` output), joins a metadata table
(the columns to show next to each neighbour: finding, survival, the report id...) by id,
adds each image's file (``image_path``, from the embeddings' ``sources.csv``, for the
search grid) and saves a :class:`~cxrembed.search.index.VectorIndex` folder carrying the run's
config hash, so ``cxr search`` can refuse to mix models.

Join rule: an embedding id matches the table row whose id (``id_col``, else the
``image_col`` path) is the same text; failing that, the same path without its file
extension; failing that, the end of that path (embeddings of an images folder are named by
their path below that folder, without extension, while a table's paths may start higher
up). A name shared by several rows matches none of them. Embeddings without a metadata row
keep blank columns; they are counted and listed, never dropped.

Examples
--------
>>> import tempfile
>>> from cxrembed.embeddings.embedding_set import EmbeddingSet
>>> d = Path(tempfile.mkdtemp())
>>> EmbeddingSet(["a", "b"], np.eye(2, 4, dtype=np.float32), "h1").save(d / "emb")
>>> pd.DataFrame({"id": ["a.png", "b.png"], "finding": ["x", "y"]}).to_csv(d / "m.csv")
>>> s = build_index(d / "emb", d / "index", metadata=d / "m.csv", image_col="id",
...                 show_cols=["finding"])
>>> s.count, s.columns, s.unmatched
(2, ['finding'], [])
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.inference.embed import read_sources
from cxrlabel.errors import InputError

__all__ = ["IndexSummary", "build_index", "embed_and_index", "join_metadata", "IMAGE_PATH_COLUMN"]

#: Index metadata column holding each embedding's image file (read by the search grid).
IMAGE_PATH_COLUMN = "image_path"


@dataclass(frozen=True)
class IndexSummary:
    """What :func:`build_index` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The index folder.
    count : int
        Vectors indexed (every embedding).
    kind : str
        ``exact``, ``ivf`` or ``hnsw`` (see :mod:`cxrembed.search.index`).
    config_hash : str or None
    columns : list of str
        Metadata columns stored for display (besides ``image_path``).
    unmatched : list of str
        Embedding ids without a metadata row (their columns are blank).
    """

    path: Path
    count: int
    kind: str
    config_hash: str | None
    columns: list[str]
    unmatched: list[str] = field(default_factory=list)


def build_index(
    embeddings: str | os.PathLike[str] | EmbeddingSet,
    out: str | os.PathLike[str],
    *,
    metadata: str | os.PathLike[str] | pd.DataFrame | None = None,
    id_col: str | None = None,
    image_col: str | None = None,
    show_cols: Sequence[str] | None = None,
    kind: str = "auto",
    seed: int = 0,
) -> IndexSummary:
    """Index the embeddings in ``embeddings`` and save the index folder ``out``.

    Parameters
    ----------
    embeddings : path-like or EmbeddingSet
        An embeddings folder (``cxr embed``), or vectors in memory.
    out : path-like
        Index folder to write (replaced if it exists).
    metadata : path-like or DataFrame, optional
        Table of columns to show with each neighbour, one row per image.
    id_col, image_col : str, optional
        The table's id: ``id_col``, else the ``image_col`` path. Default: ``id`` when the
        table has it.
    show_cols : sequence of str, optional
        Columns to store (default: every column but the id).
    kind : {"auto", "exact", "ivf", "hnsw"}
        Index type (:meth:`cxrembed.search.index.VectorIndex.build`).
    seed : int
        Seeds the approximate index's training sample.

    Returns
    -------
    IndexSummary
    """
    from cxrembed.search.index import VectorIndex

    emb = embeddings if isinstance(embeddings, EmbeddingSet) else EmbeddingSet.load(embeddings)
    frame = pd.DataFrame(index=range(len(emb)))
    unmatched: list[str] = []
    columns: list[str] = []
    if metadata is not None:
        joined, unmatched = join_metadata(emb.ids, metadata, id_col=id_col, image_col=image_col,
                                          show_cols=show_cols)
        frame = joined
        columns = list(joined.columns)
    if not isinstance(embeddings, EmbeddingSet):
        sources = read_sources(embeddings)
        where = dict(zip(sources["id"].tolist(), sources["source"].tolist(), strict=True))
        frame[IMAGE_PATH_COLUMN] = [where.get(i, "") for i in emb.ids]
    index = VectorIndex.build(emb.vectors, emb.ids, kind, config_hash=emb.config_hash,
                              metadata=_storable(frame) if len(frame.columns) else None,
                              normalize=True, seed=seed)
    index.save(out)
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} of {len(emb)} embeddings have no row in the metadata table "
            f"(e.g. {unmatched[0]!r}); their display columns are blank",
            stacklevel=2,
        )
    return IndexSummary(Path(out), len(index), index.kind, index.config_hash, columns, unmatched)


def join_metadata(
    ids: Sequence[str],
    metadata: str | os.PathLike[str] | pd.DataFrame,
    *,
    id_col: str | None = None,
    image_col: str | None = None,
    show_cols: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Rows of ``metadata`` aligned with ``ids`` (blank where none); and the unmatched ids.

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
    if id_col is None and image_col is None:
        if "id" not in table.columns:
            raise InputError(
                f"name the id column of the metadata table {source} (id_col / --id-col, or "
                f"image_col / --image-col); found columns {list(table.columns)}"
            )
        id_col = "id"
    keys = row_ids(table, image_col=image_col, id_col=id_col)
    key_cols = {c for c in (id_col, image_col) if c}
    wanted = list(show_cols) if show_cols else [c for c in table.columns if c not in key_cols]
    absent = [c for c in wanted if c not in table.columns]
    if absent:
        raise InputError(
            f"the metadata table {source} has no column(s) {absent}; found columns "
            f"{list(table.columns)}. Fix the names given to show_cols / --show-cols"
        )
    levels: list[dict[str, int | None]] = [{}, {}, {}]  # exact, no extension, path tail
    for row, key in enumerate(keys):
        if key is None:
            continue
        if key in levels[0]:
            raise InputError(
                f"the metadata table {source} has id {key!r} on rows {levels[0][key]} and "
                f"{row}; expected one row per image. Fix: de-duplicate it"
            )
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
            "table's id column to hold the embedding ids. Fix: choose the id column (id_col / "
            "--id-col, or image_col / --image-col)"
        )
    positions = np.array([-1 if r is None else r for r in rows], dtype=np.int64)
    picked = table[wanted].reset_index(drop=True)
    frame = picked.reindex(positions).reset_index(drop=True) if len(picked) else picked
    return frame, unmatched


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


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
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


def embed_and_index(
    run_dir: str | os.PathLike[str],
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    index: str | os.PathLike[str] | None = None,
    metadata: str | os.PathLike[str] | pd.DataFrame | None = None,
    meta_id_col: str | None = None,
    meta_image_col: str | None = None,
    show_cols: Sequence[str] | None = None,
    index_kind: str = "auto",
    **embed_options: Any,
) -> tuple[Any, IndexSummary | None]:
    """``cxr embed``: :func:`cxrembed.inference.embed.embed_images`, then :func:`build_index` when
    ``index`` is given.

    For a table source without ``metadata``, the table itself gives the display columns
    (joined with its own id / image columns).

    Returns
    -------
    (EmbedSummary, IndexSummary or None)
    """
    from cxrembed.inference.embed import embed_images

    summary = embed_images(run_dir, source, out, **embed_options)
    if index is None:
        return summary, None
    if metadata is None and summary.kind == "table":
        metadata = source
        meta_id_col = meta_id_col or embed_options.get("id_col")
        meta_image_col = meta_image_col or embed_options.get("image_col")
    built = build_index(out, index, metadata=metadata, id_col=meta_id_col,
                        image_col=meta_image_col, show_cols=show_cols, kind=index_kind)
    return summary, built
