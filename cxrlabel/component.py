"""The ``cxr_labeler`` spaCy factory, so any spaCy pipeline can label reports.

The component analyses the Doc it is given (no second tokenisation) and sets:

* ``doc._.cxr_labels``: the report-level labels, observation → 1 / 0 / -1 (observations
  not mentioned are left out);
* ``doc.spans["cxr_mentions"]``: one span per mention, labelled with its observation, with
  ``span._.cxr_observation``, ``span._.cxr_status`` (``positive``, ``negative`` or
  ``uncertain``), ``span._.cxr_rule`` (the deciding cue's rule id, or None),
  ``span._.cxr_excluded`` (why the mention sets no label, e.g. ``section:indication``,
  or None) and negspacy's ``span._.negex`` (True when negated);
* ``doc._.cxr_mentions``: the evidence records of :meth:`~cxrlabel.labeler.Labeler.mentions`.

Its config takes the :class:`~cxrlabel.labeler.Labeler` options (``schema``,
``lexicon_dir``, ``sections``, and ``borderline`` / ``probable`` / ``versus``: ``uncertain``
or ``positive``). Adding it also puts :func:`cxrlabel.text.tokenize` behind the pipeline's
tokenizer, so that ``nlp(text)`` accepts any string (UTF-16 surrogates become U+FFFD, one
for one) and tokenises very long symbol runs in linear time; the tokens are otherwise the
tokenizer's own.

Examples
--------
>>> import spacy, cxrlabel.component
>>> nlp = spacy.blank("en")
>>> _ = nlp.add_pipe("cxr_labeler", config={"schema": "chexpert"})
>>> doc = nlp("Mild cardiomegaly. No pneumothorax.")
>>> doc._.cxr_labels
{'Cardiomegaly': 1.0, 'Pneumothorax': 0.0}
>>> [(s.text, s._.cxr_status, s._.negex) for s in doc.spans["cxr_mentions"]]
[('cardiomegaly', 'positive', False), ('pneumothorax', 'negative', True)]
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span

from cxrlabel.aggregate import NEGATIVE
from cxrlabel.errors import ReplacedCharactersWarning
from cxrlabel.labeler import Labeler
from cxrlabel.text import has_surrogates, repair_surrogates, tokenize

__all__ = ["CxrLabelerComponent", "SPANS_KEY"]

#: The ``doc.spans`` key of the mentions.
SPANS_KEY = "cxr_mentions"

for _attr in ("cxr_labels", "cxr_mentions"):
    if not Doc.has_extension(_attr):
        Doc.set_extension(_attr, default=None)
for _attr in ("cxr_observation", "cxr_status", "cxr_rule", "cxr_excluded"):
    if not Span.has_extension(_attr):
        Span.set_extension(_attr, default=None)
if not Span.has_extension("negex"):  # negspacy registers the same name, same meaning
    Span.set_extension("negex", default=False)


class CxrLabelerComponent:
    """spaCy component around :class:`~cxrlabel.labeler.Labeler`."""

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
        self._row = np.empty((1, len(self.labeler.names)), dtype=np.float32)
        if not isinstance(nlp.tokenizer, AnyTextTokenizer):
            nlp.tokenizer = AnyTextTokenizer(nlp.tokenizer)
        self._nlp = nlp

    def _text(self, doc: Doc) -> str:
        """The Doc's text: the string the pipeline's tokenizer was given, when it was ours
        (``doc.text`` joins a Token object per word, a third of the component's time)."""
        tokenizer = self._nlp.tokenizer
        text = tokenizer.texts.get(doc) if isinstance(tokenizer, AnyTextTokenizer) else None
        return doc.text if text is None else text

    def __call__(self, doc: Doc) -> Doc:
        lab = self.labeler
        text = self._text(doc)
        if not text.strip():  # no report: nothing labelled (Labeler.label gives NaN)
            doc._.cxr_labels, doc._.cxr_mentions = {}, []
            doc.spans[SPANS_KEY] = []
            return doc
        analysis = lab._analyze(doc, text)
        row = self._row
        row.fill(np.nan)
        lab._fill_row(row, 0, analysis.best)
        doc._.cxr_labels = {
            name: float(v)
            for name, v in zip(lab.names, row[0].tolist(), strict=True)
            if not math.isnan(v)
        }
        results = lab._mention_results(analysis)
        spans = []
        for r in results:
            observation = lab.observations[r.observation]
            span = Span(doc, r.start, r.end, label=observation)
            ext = span._
            ext.cxr_observation = observation
            ext.cxr_status = r.status
            ext.cxr_rule = r.cue.cue.rule_id if r.cue else None
            ext.cxr_excluded = r.excluded
            ext.negex = r.status == NEGATIVE
            spans.append(span)
        doc.spans[SPANS_KEY] = spans
        doc._.cxr_mentions = lab._records(analysis, None, results, spans)
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for doc in stream:
            yield self(doc)


class AnyTextTokenizer:
    """A pipeline's tokenizer that accepts any ``str`` and splits long runs in linear time.

    Surrogates are replaced by U+FFFD one for one (counted in a
    :class:`~cxrlabel.errors.ReplacedCharactersWarning`), then
    :func:`cxrlabel.text.tokenize` runs the wrapped tokenizer. Everything else (its
    settings, serialisation) is the wrapped tokenizer's.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        #: Doc -> the text it was made from (held weakly: gone with the Doc)
        self.texts: weakref.WeakKeyDictionary[Doc, str] = weakref.WeakKeyDictionary()

    def __call__(self, text: str) -> Doc:
        if has_surrogates(text):
            text, replaced = repair_surrogates(text)
            warnings.warn(
                f"{replaced} character(s) that UTF-8 cannot encode (unpaired UTF-16 "
                "surrogates) were replaced by U+FFFD",
                ReplacedCharactersWarning,
                stacklevel=3,
            )
        doc = tokenize(self.tokenizer, text)
        self.texts[doc] = text
        return doc

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[Doc]:
        for text in texts:
            yield self(text)

    def __getattr__(self, name: str) -> Any:
        if name in ("tokenizer", "texts"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.tokenizer, name)

    def __reduce__(self) -> tuple[type, tuple[Any]]:
        return (AnyTextTokenizer, (self.tokenizer,))


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
    assigns=["doc._.cxr_labels", "doc._.cxr_mentions", "doc.spans"],
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
