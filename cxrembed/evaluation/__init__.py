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
baselines
    The floors a trained embedding must beat: the untrained network, raw pixels.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "evaluate_embeddings",
    "evaluate_table",
    "evaluate_files",
    "plot_embedding_map",
    "pixel_vectors",
    "untrained_encoder",
]

_LAZY = {
    "evaluate_embeddings": "cxrembed.evaluation.evaluate",
    "evaluate_table": "cxrembed.evaluation.evaluate",
    "evaluate_files": "cxrembed.evaluation.files",
    "plot_embedding_map": "cxrembed.evaluation.embedding_map",
    "pixel_vectors": "cxrembed.evaluation.baselines",
    "untrained_encoder": "cxrembed.evaluation.baselines",
}

__getattr__, __dir__ = lazy_exports("cxrembed.evaluation", _LAZY)
