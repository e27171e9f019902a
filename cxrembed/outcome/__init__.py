"""Transfer of image embeddings to a clinical outcome (``cxr predict-outcome``).

Modules
-------
predict
    :func:`predict_outcome`: image + clinical columns -> out-of-fold AUROC with intervals.
columns
    Coding a yes/no target and clinical feature columns.
report
    :class:`OutcomeResult` and its Markdown / CSV / JSON outputs.
bootstrap
    AUROC with a cluster-bootstrap interval, vectorised over the draws.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports, names_by_module

# Public names by defining module, imported on first use.
_LAZY = names_by_module(
    {
        "cxrembed.outcome.predict": [
            "predict_outcome",
            "outcome_splits",
            "CvPlan",
            "MODELS",
            "FEATURE_SETS",
        ],
        "cxrembed.outcome.report": ["OutcomeResult"],
    }
)
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_exports("cxrembed.outcome", _LAZY)
