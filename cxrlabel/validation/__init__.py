"""Validation of labels against curated (gold) labels: ``cxr validate``.

Names are imported lazily (scoring needs pandas and scikit-learn-free numpy only; plots
need matplotlib).

Modules
-------
labels
    :func:`validate`: labels table + gold table -> metrics, ``noise.json``, errors, plot.
alignment
    Reading both tables, joining on id, label maps, combining many-to-one labels.
metrics
    Precision / recall / F1, kappa, confusion matrices, bootstrap intervals (numpy only).
noise
    ``noise.json``: per-observation reliability, read by the trainer.
assertions
    Scoring the negation / uncertainty step alone on (sentence, target, status) rows.
evidence_lookup
    The mention behind a predicted label, from ``cxr label --evidence``.
report, plots
    The Markdown report and ``f1.png``.
"""

from __future__ import annotations

from cxrlabel._lazy import lazy_exports

__all__ = [
    "validate",
    "ValidationResult",
    "validate_assertions",
    "score_assertions",
    "read_noise",
    "write_noise",
    "NoiseReport",
    "NoiseEstimate",
]

_LAZY = {
    "validate": "cxrlabel.validation.labels",
    "ValidationResult": "cxrlabel.validation.labels",
    "validate_assertions": "cxrlabel.validation.assertions",
    "score_assertions": "cxrlabel.validation.assertions",
    "read_noise": "cxrlabel.validation.noise",
    "write_noise": "cxrlabel.validation.noise",
    "NoiseReport": "cxrlabel.validation.noise",
    "NoiseEstimate": "cxrlabel.validation.noise",
}

__getattr__, __dir__ = lazy_exports("cxrlabel.validation", _LAZY)
