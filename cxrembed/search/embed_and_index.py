"""``cxr embed --index``: embed images with a run, then index them for search."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from cxrembed.search.gallery import IndexSummary, build_index

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
    built = build_index(
        out,
        index,
        metadata=metadata,
        id_col=meta_id_col,
        image_col=meta_image_col,
        show_cols=show_cols,
        kind=index_kind,
    )
    return summary, built
