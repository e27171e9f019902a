"""The embeddings contract: ids + float32 vectors + the run's config hash, on disk.

This package owns the layout of an embeddings folder (manifest, shards, ids) and of the
single-file forms (``.npy`` + ids, Parquet).

Modules
-------
embedding_set
    :class:`EmbeddingSet`: load and save embeddings.
writer
    :class:`EmbeddingWriter`: incremental, resumable writing, shard by shard.
join
    :func:`join_embeddings`: embeddings matched to a table's rows by id.
sources
    ``sources.csv``: the image file of each embedding; clearing a folder.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.embeddings.embedding_set": [
            "EmbeddingSet",
            "MANIFEST",
            "FORMAT",
            "FORMAT_VERSION",
        ],
        "cxrembed.embeddings.writer": ["EmbeddingWriter"],
        "cxrembed.embeddings.join": ["join_embeddings", "IdJoin"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.embeddings", _LAZY)
