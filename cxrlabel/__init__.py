"""cxrlabel: lexicon-driven labelling of chest radiograph reports.

Public names are imported on first use, so ``import cxrlabel.errors`` (used by cxrembed)
stays light. The ``cxr_labeler`` spaCy factory is registered through spaCy's
``spacy_factories`` entry point, so ``nlp.add_pipe("cxr_labeler")`` works without importing
this package first.

>>> from cxrlabel import Labeler
>>> Labeler().label(["No pneumothorax."])["Pneumothorax"].tolist()
[0.0]
"""

from __future__ import annotations

from cxrlabel._lazy import alias_moved_modules, lazy_exports

__all__ = [
    "Labeler",
    "label_file",
    "LabelSummary",
    "load_schema",
    "load_label_map",
    "CxrError",
    "InputError",
    "LexiconError",
    "GoldError",
]
__version__ = "0.1.0"

_LAZY = {
    "Labeler": "cxrlabel.labeler",
    "label_file": "cxrlabel.labelfile",
    "LabelSummary": "cxrlabel.labelfile",
    "load_schema": "cxrlabel.lexicon",
    "load_label_map": "cxrlabel.lexicon",
    "CxrError": "cxrlabel.errors",
    "InputError": "cxrlabel.errors",
    "LexiconError": "cxrlabel.errors",
    "GoldError": "cxrlabel.errors",
}

__getattr__, __dir__ = lazy_exports("cxrlabel", _LAZY)

# Validation modules moved into cxrlabel.validation; old imports keep working.
alias_moved_modules(
    {
        "cxrlabel.validate": "cxrlabel.validation.labels",
        "cxrlabel.alignment": "cxrlabel.validation.alignment",
        "cxrlabel.assertion_eval": "cxrlabel.validation.assertions",
        "cxrlabel.metrics": "cxrlabel.validation.metrics",
        "cxrlabel.noise": "cxrlabel.validation.noise",
        "cxrlabel.validation_report": "cxrlabel.validation.report",
        "cxrlabel.plots": "cxrlabel.validation.plots",
        "cxrlabel.evidence_lookup": "cxrlabel.validation.evidence_lookup",
    }
)
