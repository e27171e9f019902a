"""``cxr embed --index``: embed images with a run, then index them for search."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cxrembed.search.gallery import IndexSummary, build_index
from cxrembed.search.metadata import EMBED_FLAGS, check_metadata_columns
from cxrlabel.errors import InputError

__all__ = ["embed_and_index"]


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
    max_memory: int | str | None = None,
    **embed_options: Any,
) -> tuple[Any, IndexSummary | None]:
    """``cxr embed``: :func:`cxrembed.inference.embed.embed_images`, then :func:`build_index` when
    ``index`` is given.

    For a table source without ``metadata``, the table itself gives the display columns
    (joined with its own id / image columns). ``max_memory`` (the index's budget) is
    checked before any image is embedded.

    Returns
    -------
    (EmbedSummary, IndexSummary or None)
    """
    from cxrembed.inference.embed import embed_images
    from cxrembed.search.sizing import parse_memory

    parse_memory(max_memory, name="max_memory (--max-memory)")
    if max_memory is not None and index is None:
        raise InputError(
            "max_memory (--max-memory) is the search index's memory budget; give "
            "the index folder too (--index DIR)"
        )
    if index is None and (metadata is not None or show_cols):
        raise InputError("--meta and --show describe the search index: give --index DIR too")
    _check_source_table(source, embed_options)
    if index is not None:  # every metadata column is checked before any image is embedded
        metadata, meta_id_col, meta_image_col = _plan_metadata(
            source, embed_options, metadata, meta_id_col, meta_image_col, show_cols
        )
    summary = embed_images(run_dir, source, out, **embed_options)
    if index is None:
        return summary, None
    built = build_index(
        out,
        index,
        metadata=metadata,
        id_col=meta_id_col,
        image_col=meta_image_col,
        show_cols=show_cols,
        kind=index_kind,
        flags=EMBED_FLAGS,
        max_memory=max_memory,
    )
    return summary, built


def _is_table_source(source: str | os.PathLike[str], options: dict[str, Any]) -> bool:
    kind = options.get("kind", "auto")
    return kind == "table" or (kind == "auto" and Path(source).is_file())


def _check_source_table(source: str | os.PathLike[str], options: dict[str, Any]) -> None:
    """A table source's image / id columns, checked on its header before the model loads."""
    from cxrembed.data.table import check_image_columns
    from cxrlabel.columns import read_header

    if _is_table_source(source, options) and Path(source).is_file():
        check_image_columns(
            str(source),
            read_header(source),
            image_col=options.get("image_col"),
            id_col=options.get("id_col"),
        )


def _plan_metadata(
    source: str | os.PathLike[str],
    embed_options: dict[str, Any],
    metadata: str | os.PathLike[str] | pd.DataFrame | None,
    id_col: str | None,
    image_col: str | None,
    show_cols: Sequence[str] | None,
) -> tuple[Any, str | None, str | None]:
    """The display table and its key columns, checked on its header alone.

    A table source is its own metadata by default; a ``--meta`` table given without key
    columns is joined on the source table's id / image column when it has them.
    """
    from cxrlabel.columns import read_header

    table_source = _is_table_source(source, embed_options)
    source_keys = (embed_options.get("id_col"), embed_options.get("image_col"))
    if metadata is None:
        if not table_source:
            return None, id_col, image_col
        metadata = source
        id_col = id_col or source_keys[0]
        image_col = image_col or source_keys[1]
    if isinstance(metadata, pd.DataFrame):
        columns = [str(c) for c in metadata.columns]
    else:
        columns = read_header(metadata)
    if id_col is None and image_col is None and table_source:
        id_col, image_col = (k if k in columns else None for k in source_keys)
    id_col, image_col = check_metadata_columns(
        metadata if not isinstance(metadata, pd.DataFrame) else "(DataFrame)",
        columns,
        id_col,
        image_col,
        show_cols,
        EMBED_FLAGS,
    )
    return metadata, id_col, image_col
