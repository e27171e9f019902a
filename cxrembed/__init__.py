"""cxrembed: image embeddings for chest radiograph retrieval.

Public names are imported lazily so that ``import cxrembed`` works on the light install
(without torch); using an image function without the ``embed`` extra raises an error that
names the extra to install.
"""

from __future__ import annotations

from cxrlabel._lazy import alias_moved_modules, lazy_exports

__all__ = ["read_image", "VectorIndex", "Retriever"]

_LAZY = {
    "read_image": "cxrembed.io.image",
    "VectorIndex": "cxrembed.search.index",
    "Retriever": "cxrembed.search.retriever",
}

__getattr__, __dir__ = lazy_exports("cxrembed", _LAZY)

# Modules that moved when the package was laid out by concept; old imports keep working.
alias_moved_modules(
    {
        "cxrembed.covid_collection": "cxrembed.collections.covid",
        "cxrembed.synthetic": "cxrembed.collections.synthetic",
        "cxrembed.explain": "cxrembed.models.explain",
        "cxrembed.train.run": "cxrembed.inference.run",
        "cxrembed.encoder": "cxrembed.inference.encoder",
        "cxrembed.embed": "cxrembed.inference.embed",
        "cxrembed.embedding_writer": "cxrembed.embeddings.writer",
        "cxrembed.join": "cxrembed.embeddings.join",
        "cxrembed.index": "cxrembed.search.index",
        "cxrembed.index_build": "cxrembed.search.index_build",
        "cxrembed.gallery": "cxrembed.search.gallery",
        "cxrembed.retrieval": "cxrembed.search.retriever",
        "cxrembed.evaluate": "cxrembed.evaluation.evaluate",
        "cxrembed.evaluate_files": "cxrembed.evaluation.files",
        "cxrembed.embedding_map": "cxrembed.evaluation.embedding_map",
        "cxrembed.metrics": "cxrembed.evaluation.metrics",
        "cxrembed.outcome_columns": "cxrembed.outcome.columns",
        "cxrembed.outcome_report": "cxrembed.outcome.report",
        "cxrembed.bootstrap_auroc": "cxrembed.outcome.bootstrap",
    }
)
