"""cxrlabel: lexicon-driven labelling of chest radiograph reports.

>>> from cxrlabel import Labeler
>>> Labeler().label(["No pneumothorax."])["Pneumothorax"].tolist()
[0.0]
"""

from __future__ import annotations

from cxrlabel import component as _component  # noqa: F401  (registers the spaCy factory)
from cxrlabel.errors import CxrError, GoldError, InputError, LexiconError
from cxrlabel.labeler import Labeler
from cxrlabel.labelfile import LabelSummary, label_file
from cxrlabel.lexicon import load_label_map, load_schema

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
