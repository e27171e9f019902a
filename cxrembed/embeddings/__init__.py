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
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "EmbeddingSet",
    "EmbeddingWriter",
    "join_embeddings",
    "MANIFEST",
    "FORMAT",
    "FORMAT_VERSION",
    "IdJoin",
]

_LAZY = {
    "EmbeddingSet": "cxrembed.embeddings.embedding_set",
    "EmbeddingWriter": "cxrembed.embeddings.writer",
    "join_embeddings": "cxrembed.embeddings.join",
    "MANIFEST": "cxrembed.embeddings.embedding_set",
    "FORMAT": "cxrembed.embeddings.embedding_set",
    "FORMAT_VERSION": "cxrembed.embeddings.embedding_set",
    "IdJoin": "cxrembed.embeddings.join",
}

__getattr__, __dir__ = lazy_exports("cxrembed.embeddings", _LAZY)
