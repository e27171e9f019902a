"""cxrembed: image embeddings for chest radiograph retrieval.

Public names are imported lazily so that ``import cxrembed`` works on the light install
(without torch); using an image function without the ``embed`` extra raises an error that
names the extra to install.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = ["read_image", "VectorIndex", "Retriever"]

_LAZY = {
    "read_image": "cxrembed.io",
    "VectorIndex": "cxrembed.index",
    "Retriever": "cxrembed.retrieval",
}

__getattr__, __dir__ = lazy_exports("cxrembed", _LAZY)
