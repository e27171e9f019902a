"""The ``cxr_labeler`` spaCy factory, so any spaCy pipeline can label reports.

The component stores the report-level labels in ``doc._.cxr_labels`` (observation → 1 / 0 /
-1, not-mentioned observations left out) and the evidence records in ``doc._.cxr_mentions``.
Its config takes the :class:`~cxrlabel.labeler.Labeler` options (``schema``,
``lexicon_dir``, ``sections``, and ``borderline`` / ``probable`` / ``versus``: ``uncertain``
or ``positive``).

Examples
--------
>>> import spacy, cxrlabel.component
>>> nlp = spacy.blank("en")
>>> _ = nlp.add_pipe("cxr_labeler", config={"schema": "chexpert"})
>>> nlp("Mild cardiomegaly. No pneumothorax.")._.cxr_labels
{'Cardiomegaly': 1.0, 'Pneumothorax': 0.0}
"""

from __future__ import annotations

import math

from spacy.language import Language
from spacy.tokens import Doc

from cxrlabel.labeler import Labeler

__all__ = ["CxrLabelerComponent"]

for _attr in ("cxr_labels", "cxr_mentions"):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)


class CxrLabelerComponent:
    """Thin spaCy wrapper around :class:`~cxrlabel.labeler.Labeler`."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        schema: str,
        lexicon_dir: str | None,
        sections: list[str] | None,
        borderline: str = "uncertain",
        probable: str = "uncertain",
        versus: str = "uncertain",
    ) -> None:
        self.name = name
        self.labeler = Labeler(
            schema,
            lexicon_dir,
            sections=sections,
            borderline=borderline,
            probable=probable,
            versus=versus,
            nlp=nlp,
        )

    def __call__(self, doc: Doc) -> Doc:
        row = self.labeler.label([doc.text]).iloc[0]
        doc._.cxr_labels = {k: float(v) for k, v in row.items() if not math.isnan(v)}
        doc._.cxr_mentions = self.labeler.mentions(doc.text)
        return doc


@Language.factory(
    "cxr_labeler",
    default_config={
        "schema": "chexpert",
        "lexicon_dir": None,
        "sections": None,
        "borderline": "uncertain",
        "probable": "uncertain",
        "versus": "uncertain",
    },
    assigns=["doc._.cxr_labels", "doc._.cxr_mentions"],
)
def make_cxr_labeler(
    nlp: Language,
    name: str,
    schema: str,
    lexicon_dir: str | None,
    sections: list[str] | None,
    borderline: str,
    probable: str,
    versus: str,
) -> CxrLabelerComponent:
    return CxrLabelerComponent(
        nlp,
        name,
        schema=schema,
        lexicon_dir=lexicon_dir,
        sections=sections,
        borderline=borderline,
        probable=probable,
        versus=versus,
    )
