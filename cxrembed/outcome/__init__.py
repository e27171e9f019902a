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

from cxrlabel._lazy import lazy_exports

__all__ = [
    "predict_outcome",
    "outcome_splits",
    "CvPlan",
    "MODELS",
    "FEATURE_SETS",
    "OutcomeResult",
]

_LAZY = {
    "predict_outcome": "cxrembed.outcome.predict",
    "outcome_splits": "cxrembed.outcome.predict",
    "CvPlan": "cxrembed.outcome.predict",
    "MODELS": "cxrembed.outcome.predict",
    "FEATURE_SETS": "cxrembed.outcome.predict",
    "OutcomeResult": "cxrembed.outcome.report",
}

__getattr__, __dir__ = lazy_exports("cxrembed.outcome", _LAZY)
