"""Retrieval, diagnosis and clustering metrics for embeddings (numpy and scikit-learn only).

Modules
-------
relevance
    Label sets and the relevance rule (same class, or at least one shared finding).
neighbours
    The exact ranking pass every retrieval metric reads (leave-one-out, query / gallery
    masks, same-patient exclusion).
retrieval
    P@1, R-precision, MAP@R (pytorch-metric-learning's names and values), P@k, HitRate@k,
    mAP@k, Jaccard@k, nDCG@k.
diagnosis
    Diagnosis by retrieval: per-finding AUROC of the neighbour share, F1 of the vote.
clustering
    NMI / AMI of seeded k-means against the classes.
report
    :class:`EvaluationResult` and its Markdown / CSV / JSON / PNG outputs.
intervals
    Query / gallery retrieval metrics of single-label collections with patient-bootstrap
    95% intervals (MAP@R, P@1, R-precision, vote accuracy, binary vote AUROC).
"""

from __future__ import annotations

from cxrembed.evaluation.metrics import relevance
from cxrembed.evaluation.metrics.clustering import clustering_metrics
from cxrembed.evaluation.metrics.diagnosis import DiagnosisReport, diagnosis_by_retrieval
from cxrembed.evaluation.metrics.relevance import RELEVANCE_RULE, RelevanceLabels, label_sets
from cxrembed.evaluation.metrics.report import DEFINITIONS, EvaluationResult
from cxrembed.evaluation.metrics.retrieval import (
    DEFAULT_KS,
    fixed_k_metrics,
    graded_metrics,
    retrieval_metrics,
)


def __getattr__(name: str) -> object:
    if name == "LabelSets":  # the old name, with its warning
        return getattr(relevance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "retrieval_metrics",
    "fixed_k_metrics",
    "graded_metrics",
    "diagnosis_by_retrieval",
    "DiagnosisReport",
    "clustering_metrics",
    "label_sets",
    "RelevanceLabels",
    "RELEVANCE_RULE",
    "EvaluationResult",
    "DEFINITIONS",
    "DEFAULT_KS",
]
