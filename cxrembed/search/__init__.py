"""Similar-image search: the vector index, galleries with display columns, the retriever.

Modules
-------
index
    :class:`VectorIndex`: FAISS index over unit-norm vectors, saved with ids and metadata.
index_build
    Choosing, creating and tuning the FAISS index.
gallery
    An embeddings folder -> an index with display columns.
metadata
    A metadata table joined to embedding ids (the display columns).
embed_and_index
    ``cxr embed --index``: embed images, then build the gallery index.
retriever
    :class:`Retriever`: query images -> neighbours with clinical columns (``cxr search``).
grid
    The figure of ``cxr search --grid``: thumbnails, heatmaps, captions, colour bar.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.search.index": ["VectorIndex"],
        "cxrembed.search.gallery": ["build_index"],
        "cxrembed.search.retriever": ["Retriever", "search_images"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.search", _LAZY)
