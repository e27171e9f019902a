"""Evaluation of embeddings: retrieval, diagnosis by retrieval, clustering, a 2-D map.

Modules
-------
evaluate
    :func:`evaluate_embeddings` / :func:`evaluate_table`.
files
    :func:`evaluate_files`: ``cxr evaluate`` as one library call.
metrics
    The metric functions (numpy and scikit-learn only).
embedding_map
    A t-SNE / UMAP map coloured by label, as PNG.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "evaluate_embeddings",
    "evaluate_table",
    "evaluate_files",
    "plot_embedding_map",
]

_LAZY = {
    "evaluate_embeddings": "cxrembed.evaluation.evaluate",
    "evaluate_table": "cxrembed.evaluation.evaluate",
    "evaluate_files": "cxrembed.evaluation.files",
    "plot_embedding_map": "cxrembed.evaluation.embedding_map",
}

__getattr__, __dir__ = lazy_exports("cxrembed.evaluation", _LAZY)
