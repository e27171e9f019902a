"""Similar-image search: the vector index, galleries with display columns, the retriever.

Modules
-------
index
    :class:`VectorIndex`: FAISS index over unit-norm vectors, saved with ids and metadata.
index_build
    Choosing, creating and tuning the FAISS index.
gallery
    An embeddings folder -> an index with display columns (``cxr embed --index``).
retriever
    :class:`Retriever`: query images -> neighbours with clinical columns (``cxr search``).
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "VectorIndex",
    "build_index",
    "Retriever",
    "search_images",
]

_LAZY = {
    "VectorIndex": "cxrembed.search.index",
    "build_index": "cxrembed.search.gallery",
    "Retriever": "cxrembed.search.retriever",
    "search_images": "cxrembed.search.retriever",
}

__getattr__, __dir__ = lazy_exports("cxrembed.search", _LAZY)
