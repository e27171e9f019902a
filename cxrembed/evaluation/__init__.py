"""Evaluation of embeddings: retrieval, diagnosis by retrieval, clustering, a 2-D map.

Modules
-------
evaluate
    :func:`evaluate_embeddings` / :func:`evaluate_table`.
files
    :func:`evaluate_files`: ``cxr evaluate`` as one library call.
run_split
    The split of the run that made the embeddings (held-out queries vs training gallery).
metrics
    The metric functions (numpy and scikit-learn only).
embedding_map
    A t-SNE / UMAP map coloured by label (PNG, SVG or PDF).
curves
    ROC and precision-recall curves of diagnosis by retrieval, one per finding.
baselines
    The floors a trained embedding must beat: the untrained network, raw pixels.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.evaluation.evaluate": ["evaluate_embeddings", "evaluate_table"],
        "cxrembed.evaluation.files": ["evaluate_files"],
        "cxrembed.evaluation.embedding_map": ["plot_embedding_map"],
        "cxrembed.evaluation.baselines": ["embed_listing", "pixel_vectors", "untrained_encoder"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.evaluation", _LAZY)
