"""Turn an embeddings folder into a searchable gallery: a vector index with display columns.

:func:`build_index` reads the embeddings (``cxr embed`` output), joins a metadata table
(the columns to show next to each neighbour: finding, survival, the report id...) by id,
adds each image's file (``image_path``, from the embeddings' ``sources.csv``, for the
search grid) and saves a :class:`~cxrembed.search.index.VectorIndex` folder carrying the run's
config hash, so ``cxr search`` can refuse to mix models.

The metadata join is :func:`cxrembed.search.metadata.join_metadata` (its rule is described
there); embeddings without a metadata row keep blank columns and are listed, never dropped.
``cxr embed --index`` (embed, then index) is :mod:`cxrembed.search.embed_and_index`.

Examples
--------
>>> import tempfile
>>> import numpy as np
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

import pandas as pd

from cxrembed.embeddings.embedding_set import EmbeddingSet
from cxrembed.embeddings.sources import read_sources
from cxrembed.search.metadata import (
    EMBED_FLAGS,
    SEARCH_FLAGS,
    check_metadata_columns,
    join_metadata,
    storable,
)
from cxrlabel._lazy import lazy_exports

__all__ = [
    "IndexSummary",
    "build_index",
    "join_metadata",
    "check_metadata_columns",
    "IMAGE_PATH_COLUMN",
    "SEARCH_FLAGS",
    "EMBED_FLAGS",
]

# embed_and_index imports this module: resolved on first use (old imports keep working).
__getattr__, _ = lazy_exports(__name__, {"embed_and_index": "cxrembed.search.embed_and_index"})

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
    flags: dict[str, str] = SEARCH_FLAGS,
    max_memory: int | str | None = None,
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
    kind : {"auto", "exact", "ivf", "hnsw", "ivfpq"}
        Index type (:meth:`cxrembed.search.index.VectorIndex.build`).
    seed : int
        Seeds the approximate index's training sample.
    flags : dict
        Option names for error messages (see :func:`join_metadata`).
    max_memory : int or str, optional
        Memory budget of the index (e.g. ``"4GB"``): ``auto`` compresses the vectors
        (IVF-PQ) when they do not fit in full.

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
        joined, unmatched = join_metadata(
            emb.ids, metadata, id_col=id_col, image_col=image_col, show_cols=show_cols, flags=flags
        )
        frame = joined
        columns = list(joined.columns)
    if not isinstance(embeddings, EmbeddingSet):
        sources = read_sources(embeddings)
        where = dict(zip(sources["id"].tolist(), sources["source"].tolist(), strict=True))
        frame[IMAGE_PATH_COLUMN] = [where.get(i, "") for i in emb.ids]
    index = VectorIndex.build(
        emb.vectors,
        emb.ids,
        kind,
        config_hash=emb.config_hash,
        weights_sha256=emb.weights_sha256,
        metadata=storable(frame) if len(frame.columns) else None,
        normalize=True,
        seed=seed,
        max_memory=max_memory,
    )
    index.save(out)
    if unmatched:
        warnings.warn(
            f"{len(unmatched)} of {len(emb)} embeddings have no row in the metadata table "
            f"(e.g. {unmatched[0]!r}); their display columns are blank",
            stacklevel=2,
        )
    return IndexSummary(Path(out), len(index), index.kind, index.config_hash, columns, unmatched)
