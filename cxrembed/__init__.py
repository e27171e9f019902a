"""cxrembed: image embeddings for chest radiograph retrieval.

Public names are imported lazily so that ``import cxrembed`` works on the light install
(without torch); using an image function without the ``embed`` extra raises an error that
names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["read_image", "VectorIndex", "Retriever"]

_LAZY = {
    "read_image": "cxrembed.io",
    "VectorIndex": "cxrembed.index",
    "Retriever": "cxrembed.retrieval",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cxrembed' has no attribute {name!r}")
